"""POST /v1/directory/import: the workforce directory from a CSV file, all rows or none."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from huddle_intake.application.workforce_directory import reporting_line, resolve
from huddle_local.issuer import LocalIssuer
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.tenancy import Tenant

pytestmark = pytest.mark.integration

HEADER = "staff_ref,hospital_id,unit_id,discipline,manager_ref,email,phone,display_name"


def new_network() -> str:
    return f"net-{uuid.uuid4().hex[:10]}"


def csv_headers(
    issuer: LocalIssuer, network: str, *, role: str = "coordinator", hospital: str | None = None
) -> dict[str, str]:
    minted = issuer.mint(role=role, network=network, hospital=hospital, subject="coord-1")
    return {"Authorization": f"Bearer {minted}", "Content-Type": "text/csv; charset=utf-8"}


def refs(n: int) -> list[str]:
    return [f"E{uuid.uuid4().int % 10**8:08d}" for _ in range(n)]


async def staff_rows(app: FastAPI, network: str) -> list[dict[str, Any]]:
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        return [dict(r) for r in await uow.conn.fetch("SELECT * FROM staff")]


async def test_a_coordinator_imports_staff_and_the_directory_resolves_them(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network = new_network()
    director, matron, nurse = refs(3)
    text = (
        f"{HEADER}\r\n"
        f"{director},st-mary,management,administrator,,dir@st-mary.example.org,,Dana Director\r\n"
        f"{matron},st-mary,icu,Nurse,{director},,+44 7700 900111,\r\n"
        f'{nurse},st-mary,icu,nurse,{matron},n.ightingale@st-mary.example.org,+44 7700 900222,"Nightingale, Flo"\r\n'
    )
    headers = csv_headers(local_issuer, network)
    imported = await client.post("/v1/directory/import", content=text, headers=headers)
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"created": 3, "updated": 0}

    key = app.state.settings.pseudonym_key
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        member = await resolve(uow.conn, pseudonym_key=key, network_id=network, staff_ref=nurse)
        assert member is not None
        assert (member.hospital_id, member.unit_id, member.discipline.value, member.active) == (
            "st-mary",
            "icu",
            "nurse",
            True,
        )
        line = await reporting_line(uow.conn, network_id=network, pseudonym=member.pseudonym)
        stranger = await resolve(uow.conn, pseudonym_key=key, network_id=network, staff_ref="E0")
    assert line == (pseudonym_for(key, network, matron), pseudonym_for(key, network, director))
    assert stranger is None

    # Sealed, not lost: the contact and name are there for the peer, and nothing is in clear.
    rows = {r["pseudonym"]: r for r in await staff_rows(app, network)}
    sealed = rows[member.pseudonym]
    vault = app.state.contact_vault
    contact = vault.open(sealed["sealed_contact"])
    assert (contact.email, contact.phone) == ("n.ightingale@st-mary.example.org", "+44 7700 900222")
    assert vault.open_text(sealed["sealed_name"]) == "Nightingale, Flo"
    for row in rows.values():
        for column, value in row.items():
            for clear in (director, matron, nurse, "ightingale", "example.org", "900222", "Dana"):
                if isinstance(value, bytes):
                    assert clear.encode() not in value, (column, clear)
                elif value is not None:
                    assert clear.lower() not in str(value).lower(), (column, clear)

    # Importing again updates; a column the header leaves out keeps what the directory holds.
    again = f"staff_ref,hospital_id,unit_id,discipline\r\n{nurse},st-mary,theatres,midwife\r\n"
    updated = await client.post("/v1/directory/import", content=again, headers=headers)
    assert updated.json() == {"created": 0, "updated": 1}
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        moved = await resolve(uow.conn, pseudonym_key=key, network_id=network, staff_ref=nurse)
    assert moved is not None
    assert (moved.unit_id, moved.discipline.value) == ("theatres", "midwife")
    assert moved.manager_pseudonym == pseudonym_for(key, network, matron)
    kept = {r["pseudonym"]: r for r in await staff_rows(app, network)}[moved.pseudonym]
    assert vault.open(kept["sealed_contact"]).email == "n.ightingale@st-mary.example.org"

    # SCIM sees imported staff too, the staff id as their user name.
    admin = local_issuer.mint(role="network_admin", network=network, subject="entra")
    found = await client.get(
        "/scim/v2/Users",
        params={"filter": f'userName eq "{nurse}"'},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert found.status_code == 200, found.text
    [user] = found.json()["Resources"]
    assert user["title"] == "midwife" and user["displayName"] == "Nightingale, Flo"


@pytest.mark.parametrize(
    ("line", "column", "fragment"),
    [
        ("{ref},st-mary,icu,nurse,,not-an-address,,", "email", "email address"),
        ("{ref},St Mary's,icu,nurse,,,,", "hospital_id", "pattern"),
        ("{ref},st-mary,icu,janitor,,,,", "discipline", "discipline must be one of"),
        ("{ref},st-mary,icu,nurse,,,call me,", "phone", "pattern"),
        (",st-mary,icu,nurse,,,,", "staff_ref", "at least 1 character"),
        ("{ref},st-mary,icu,nurse,,,", None, "7 fields where the header has 8"),
        ("{first},st-mary,icu,nurse,,,,", "staff_ref", "same staff_ref is on line 2"),
    ],
)
async def test_a_bad_row_refuses_the_whole_file_naming_its_line_and_column(
    intake: tuple[FastAPI, httpx.AsyncClient],
    local_issuer: LocalIssuer,
    line: str,
    column: str | None,
    fragment: str,
) -> None:
    app, client = intake
    network = new_network()
    first, ref = refs(2)
    text = (
        f"{HEADER}\n"
        f"{first},st-mary,icu,nurse,,first@example.org,,\n"
        f"{ref},st-mary,icu,physician,,,,\n" + line.format(ref=refs(1)[0], first=first) + "\n"
    )
    response = await client.post(
        "/v1/directory/import", content=text, headers=csv_headers(local_issuer, network)
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["line"] == 4 and problem["column"] == column
    assert problem["detail"].startswith("line 4" + (f", column {column}" if column else ""))
    assert fragment in problem["detail"]
    assert "not-an-address" not in response.text and "call me" not in response.text
    assert await staff_rows(app, network) == []  # the two good rows were not stored either


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("staff_ref,hospital_id,unit_id,discipline,shoe_size\n", "shoe_size", "unknown column"),
        ("staff_ref,hospital_id,discipline\n", "unit_id", "column is required"),
        ("E1001,st-mary,icu,nurse\n", "e1001", "unknown column"),
        ("", None, "header naming the columns is required"),
    ],
)
async def test_a_file_without_a_proper_header_is_refused(
    intake: tuple[FastAPI, httpx.AsyncClient],
    local_issuer: LocalIssuer,
    text: str,
    column: str | None,
    fragment: str,
) -> None:
    _, client = intake
    response = await client.post(
        "/v1/directory/import", content=text, headers=csv_headers(local_issuer, new_network())
    )
    assert response.status_code == 422, response.text
    assert response.json()["line"] == 1 and response.json()["column"] == column
    assert fragment in response.json()["detail"]


async def test_a_row_violating_a_database_rule_stores_nothing_either(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network = new_network()
    taken, first, second = refs(3)
    admin = local_issuer.mint(role="network_admin", network=network, subject="entra")
    # Someone provisioned by SCIM whose user name is another person's staff id.
    provisioned = await client.post(
        "/scim/v2/Users",
        json={
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ],
            "userName": second,
            "title": "nurse",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": taken,
                "organization": "st-mary",
                "department": "icu",
            },
        },
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert provisioned.status_code == 201, provisioned.text
    text = f"{HEADER}\n{first},st-mary,icu,nurse,,,,\n{second},st-mary,icu,nurse,,,,\n"
    response = await client.post(
        "/v1/directory/import", content=text, headers=csv_headers(local_issuer, network)
    )
    assert response.status_code == 422, response.text
    assert (response.json()["line"], response.json()["column"]) == (3, "staff_ref")
    assert len(await staff_rows(app, network)) == 1  # only the SCIM one; the first row rolled back


async def test_only_coordinators_and_network_admins_import_and_only_csv(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = intake
    network = new_network()
    text = f"{HEADER}\n{refs(1)[0]},st-mary,icu,nurse,,,,\n"
    for role, status in (("worker", 403), ("peer", 403), ("network_admin", 200)):
        response = await client.post(
            "/v1/directory/import",
            content=text,
            headers=csv_headers(local_issuer, network, role=role),
        )
        assert response.status_code == status, (role, response.text)
    as_json = {**csv_headers(local_issuer, network), "Content-Type": "application/json"}
    response = await client.post("/v1/directory/import", content=text, headers=as_json)
    assert response.status_code == 415
    other_hospital = await client.post(
        "/v1/directory/import",
        content=text,
        headers=csv_headers(local_issuer, network, hospital="st-john"),
    )
    assert other_hospital.status_code == 403
    assert other_hospital.json()["line"] == 2


async def test_a_reporting_cycle_in_the_directory_ends_the_reporting_line(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network = new_network()
    a, b, c = refs(3)
    text = f"{HEADER}\n{a},st-mary,icu,nurse,{b},,,\n{b},st-mary,icu,nurse,{c},,,\n{c},st-mary,icu,nurse,{a},,,\n"
    response = await client.post(
        "/v1/directory/import", content=text, headers=csv_headers(local_issuer, network)
    )
    assert response.json() == {"created": 3, "updated": 0}
    key = app.state.settings.pseudonym_key
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        line = await reporting_line(
            uow.conn, network_id=network, pseudonym=pseudonym_for(key, network, a)
        )
    assert line == (pseudonym_for(key, network, b), pseudonym_for(key, network, c))
