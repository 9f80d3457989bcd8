"""SCIM 2.0 provisioning at /scim/v2 against the real database (RFC 7643/7644)."""

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

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
UNIT = "urn:huddle:params:scim:schemas:extension:unit:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"


def new_network() -> str:
    return f"net-{uuid.uuid4().hex[:10]}"


def token(
    issuer: LocalIssuer, network: str, *, role: str = "network_admin", hospital: str | None = None
) -> dict[str, str]:
    minted = issuer.mint(role=role, network=network, hospital=hospital, subject="entra-client")
    return {"Authorization": f"Bearer {minted}", "Content-Type": SCIM_JSON}


def staff_user(
    staff_ref: str,
    *,
    unit: str = "icu",
    title: str = "nurse",
    manager: str | None = None,
    given: str = "Samira",
    family: str = "Okonkwo",
    email: str | None = None,
    phone: str = "+44 7700 900456",
    external_id: str | None = None,
) -> dict[str, Any]:
    enterprise: dict[str, Any] = {
        "employeeNumber": staff_ref,
        "organization": "st-mary",
        "department": unit,
    }
    if manager:
        enterprise["manager"] = {"value": manager}
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": f"{staff_ref.lower()}@st-mary.example.org",
        "externalId": external_id or f"entra-{staff_ref}",
        "name": {"givenName": given, "familyName": family},
        "displayName": f"{given} {family}",
        "title": title,
        "active": True,
        "emails": [
            {"value": email or f"{given}.{family}@st-mary.example.org".lower(), "primary": True}
        ],
        "phoneNumbers": [{"value": phone, "type": "work"}],
        ENTERPRISE: enterprise,
    }


def staff_ref() -> str:
    return f"E{uuid.uuid4().int % 10**8:08d}"


async def provision(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    created = await client.post("/scim/v2/Users", json=body, headers=headers)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


async def directory_rows(app: FastAPI, network: str) -> list[dict[str, Any]]:
    """Every staff and unit row of the network, every column."""
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        staff = await uow.conn.fetch("SELECT * FROM staff")
        units = await uow.conn.fetch("SELECT * FROM unit")
    return [dict(r) for r in [*staff, *units]]


def assert_stored_nowhere(rows: list[dict[str, Any]], clear: list[str]) -> None:
    """No column holds any of ``clear``: text compared without case, sealed bytes as they are."""
    for row in rows:
        for column, value in row.items():
            for secret in clear:
                if isinstance(value, bytes):
                    assert secret.encode() not in value, (column, secret)
                elif value is not None:
                    assert secret.lower() not in str(value).lower(), (column, secret)


def assert_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == SCIM_JSON
    body = response.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    if scim_type:
        assert body["scimType"] == scim_type


async def test_the_identity_provider_creates_a_user_and_reads_it_back(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network, ref = new_network(), staff_ref()
    headers = token(local_issuer, network)
    created = await client.post("/scim/v2/Users", json=staff_user(ref), headers=headers)
    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == SCIM_JSON
    user = created.json()
    assert created.headers["location"] == user["meta"]["location"]
    assert user["meta"]["location"].endswith(f"/scim/v2/Users/{user['id']}")
    assert user["meta"]["resourceType"] == "User"
    assert user["userName"] == f"{ref.lower()}@st-mary.example.org"
    assert user["active"] is True and user["title"] == "nurse"
    assert user["emails"][0]["value"] == "samira.okonkwo@st-mary.example.org"
    assert user[ENTERPRISE] == {
        "employeeNumber": ref,
        "organization": "st-mary",
        "department": "icu",
    }

    read = await client.get(f"/scim/v2/Users/{user['id']}", headers=headers)
    assert read.status_code == 200 and read.json() == user

    # The employee number is the staff id: the same pseudonym as a token subject would get.
    settings = app.state.settings
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        member = await resolve(
            uow.conn, pseudonym_key=settings.pseudonym_key, network_id=network, staff_ref=ref
        )
    assert member is not None
    assert member.pseudonym == pseudonym_for(settings.pseudonym_key, network, ref)
    assert (member.hospital_id, member.unit_id, member.discipline.value) == (
        "st-mary",
        "icu",
        "nurse",
    )
    assert member.active and member.manager_pseudonym is None


async def test_users_are_found_by_user_name_or_external_id_and_listed_by_pages(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = intake
    network = new_network()
    headers = token(local_issuer, network)
    refs = [staff_ref() for _ in range(3)]
    ids = [(await provision(client, headers, staff_user(r)))["id"] for r in refs]

    by_name = await client.get(
        "/scim/v2/Users",
        params={"filter": f'userName eq "{refs[1].upper()}@ST-MARY.example.org"'},
        headers=headers,
    )
    assert by_name.status_code == 200 and by_name.headers["content-type"] == SCIM_JSON
    listed = by_name.json()
    assert listed["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert listed["totalResults"] == 1 and [u["id"] for u in listed["Resources"]] == [ids[1]]

    by_external = await client.get(
        "/scim/v2/Users", params={"filter": f'externalId eq "entra-{refs[2]}"'}, headers=headers
    )
    assert [u["id"] for u in by_external.json()["Resources"]] == [ids[2]]
    # externalId is case-exact (RFC 7643 §3.1).
    other_case = await client.get(
        "/scim/v2/Users", params={"filter": f'externalId eq "ENTRA-{refs[2]}"'}, headers=headers
    )
    assert other_case.json()["totalResults"] == 0

    nobody = await client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "nobody@example.org"'}, headers=headers
    )
    assert nobody.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }

    first = (
        await client.get("/scim/v2/Users", params={"startIndex": 1, "count": 2}, headers=headers)
    ).json()
    rest = (
        await client.get("/scim/v2/Users", params={"startIndex": 3, "count": 2}, headers=headers)
    ).json()
    assert (first["totalResults"], first["itemsPerPage"], first["startIndex"]) == (3, 2, 1)
    assert (rest["totalResults"], rest["itemsPerPage"], rest["startIndex"]) == (3, 1, 3)
    assert [u["id"] for u in first["Resources"] + rest["Resources"]] == ids

    for unsupported in ('title eq "nurse"', 'userName co "e1"', "userName eq"):
        refused = await client.get(
            "/scim/v2/Users", params={"filter": unsupported}, headers=headers
        )
        assert_scim_error(refused, 400, "invalidFilter")


async def test_patch_deactivates_a_user_and_changes_their_manager(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network = new_network()
    headers = token(local_issuer, network)
    first_ref, second_ref, nurse_ref = staff_ref(), staff_ref(), staff_ref()
    first = await provision(client, headers, staff_user(first_ref, title="physician"))
    second = await provision(client, headers, staff_user(second_ref, title="physician"))
    nurse = await provision(client, headers, staff_user(nurse_ref, manager=first["id"]))
    assert nurse[ENTERPRISE]["manager"]["value"] == first["id"]

    # The way Microsoft Entra sends it: capitalised op, a bare manager id, "False" as a string.
    patched = await client.patch(
        f"/scim/v2/Users/{nurse['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": second["id"]},
                {"op": "Replace", "path": "active", "value": "False"},
            ],
        },
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["active"] is False
    assert patched.json()[ENTERPRISE]["manager"]["value"] == second["id"]
    read = (await client.get(f"/scim/v2/Users/{nurse['id']}", headers=headers)).json()
    assert read["active"] is False and read[ENTERPRISE]["manager"]["value"] == second["id"]

    key = app.state.settings.pseudonym_key
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        member = await resolve(uow.conn, pseudonym_key=key, network_id=network, staff_ref=nurse_ref)
        assert member is not None and member.active is False
        line = await reporting_line(uow.conn, network_id=network, pseudonym=member.pseudonym)
    assert line == (pseudonym_for(key, network, second_ref),)

    unknown_manager = await client.patch(
        f"/scim/v2/Users/{nurse['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": str(uuid.uuid4())}
            ],
        },
        headers=headers,
    )
    assert_scim_error(unknown_manager, 400, "invalidValue")


async def test_put_replaces_a_user(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network = new_network()
    headers = token(local_issuer, network)
    manager = await provision(client, headers, staff_user(staff_ref(), title="physician"))
    ref = staff_ref()
    user = await provision(client, headers, staff_user(ref, manager=manager["id"]))

    replacement = staff_user(ref, unit="theatres", title="midwife", email="s.o@example.org")
    replacement["id"] = "ignored-read-only"
    replaced = await client.put(f"/scim/v2/Users/{user['id']}", json=replacement, headers=headers)
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["id"] == user["id"] and body["title"] == "midwife"
    assert body[ENTERPRISE] == {
        "employeeNumber": ref,
        "organization": "st-mary",
        "department": "theatres",
    }  # the manager was left out of the replacement, so it is gone
    assert body["emails"] == [{"value": "s.o@example.org", "primary": True}]
    assert (await client.get(f"/scim/v2/Users/{user['id']}", headers=headers)).json() == body

    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        member = await resolve(
            uow.conn,
            pseudonym_key=app.state.settings.pseudonym_key,
            network_id=network,
            staff_ref=ref,
        )
    assert member is not None
    assert (member.unit_id, member.discipline.value, member.manager_pseudonym) == (
        "theatres",
        "midwife",
        None,
    )


async def test_delete_deprovisions_a_user_but_keeps_their_history(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network = new_network()
    headers = token(local_issuer, network)
    manager_ref, ref = staff_ref(), staff_ref()
    manager = await provision(client, headers, staff_user(manager_ref, title="physician"))
    user = await provision(client, headers, staff_user(ref, manager=manager["id"]))

    deleted = await client.delete(f"/scim/v2/Users/{user['id']}", headers=headers)
    assert deleted.status_code == 204
    assert_scim_error(await client.get(f"/scim/v2/Users/{user['id']}", headers=headers), 404)
    assert_scim_error(await client.delete(f"/scim/v2/Users/{user['id']}", headers=headers), 404)
    gone = await client.get(
        "/scim/v2/Users", params={"filter": f'userName eq "{user["userName"]}"'}, headers=headers
    )
    assert gone.json()["totalResults"] == 0

    key = app.state.settings.pseudonym_key
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        member = await resolve(uow.conn, pseudonym_key=key, network_id=network, staff_ref=ref)
        assert member is not None and member.active is False  # history, not erased
        line = await reporting_line(uow.conn, network_id=network, pseudonym=member.pseudonym)
    assert line == (pseudonym_for(key, network, manager_ref),)

    # Re-hired: the same person comes back under a new SCIM id.
    again = await provision(client, headers, staff_user(ref))
    assert again["id"] != user["id"] and again["active"] is True


async def test_a_second_user_with_the_same_staff_id_or_user_name_is_a_conflict(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = intake
    headers = token(local_issuer, new_network())
    ref = staff_ref()
    await provision(client, headers, staff_user(ref))
    assert_scim_error(
        await client.post("/scim/v2/Users", json=staff_user(ref), headers=headers),
        409,
        "uniqueness",
    )
    same_user_name = staff_user(staff_ref())
    same_user_name["userName"] = f"{ref.lower()}@st-mary.example.org"
    assert_scim_error(
        await client.post("/scim/v2/Users", json=same_user_name, headers=headers),
        409,
        "uniqueness",
    )


@pytest.mark.parametrize(
    ("change", "scim_type", "fragment"),
    [
        ({"title": "Head of Stuff"}, "invalidValue", "discipline must be one of"),
        ({ENTERPRISE: {"organization": "st-mary"}}, "invalidValue", "department"),
        (
            {ENTERPRISE: {"department": "Intensive Care", "organization": "st-mary"}},
            "invalidValue",
            "slug",
        ),
        ({"emails": [{"value": "not-an-address"}]}, "invalidValue", "emails[0].value"),
        ({"favouriteColour": "teal"}, "invalidSyntax", "favouriteColour"),
        ({"userName": None}, "invalidValue", "userName"),
    ],
)
async def test_a_user_the_directory_cannot_hold_is_refused_with_a_scim_error(
    intake: tuple[FastAPI, httpx.AsyncClient],
    local_issuer: LocalIssuer,
    change: dict[str, Any],
    scim_type: str,
    fragment: str,
) -> None:
    app, client = intake
    network = new_network()
    body = {**staff_user(staff_ref(), email="unique.person@example.org"), **change}
    refused = await client.post("/scim/v2/Users", json=body, headers=token(local_issuer, network))
    assert_scim_error(refused, 400, scim_type)
    assert fragment in refused.json()["detail"]
    assert "unique.person" not in refused.text and "not-an-address" not in refused.text
    assert await directory_rows(app, network) == []


async def test_a_body_that_is_not_json_is_a_syntax_error(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = intake
    headers = token(local_issuer, new_network())
    refused = await client.post("/scim/v2/Users", content=b"{not json", headers=headers)
    assert_scim_error(refused, 400, "invalidSyntax")
    not_an_object = await client.post("/scim/v2/Users", json=["a"], headers=headers)
    assert_scim_error(not_an_object, 400, "invalidSyntax")
    bad_page = await client.get("/scim/v2/Users", params={"startIndex": "one"}, headers=headers)
    assert_scim_error(bad_page, 400, "invalidValue")


async def test_a_token_without_network_admin_is_refused(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network = new_network()
    for role in ("coordinator", "worker", "reporter"):
        refused = await client.post(
            "/scim/v2/Users",
            json=staff_user(staff_ref()),
            headers=token(local_issuer, network, role=role),
        )
        assert_scim_error(refused, 403)
        assert "network_admin" in refused.json()["detail"]
    unauthenticated = await client.get("/scim/v2/Users", headers={"Content-Type": SCIM_JSON})
    assert_scim_error(unauthenticated, 401)
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    assert await directory_rows(app, network) == []


async def test_a_hospital_bound_token_provisions_its_own_hospital_only(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = intake
    network = new_network()
    st_mary = token(local_issuer, network, hospital="st-mary")
    st_john = token(local_issuer, network, hospital="st-john")
    user = await provision(client, st_mary, staff_user(staff_ref()))
    assert_scim_error(
        await client.post("/scim/v2/Users", json=staff_user(staff_ref()), headers=st_john), 403
    )
    assert_scim_error(await client.get(f"/scim/v2/Users/{user['id']}", headers=st_john), 404)
    assert (await client.get("/scim/v2/Users", headers=st_john)).json()["totalResults"] == 0


async def test_another_network_cannot_see_the_users(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    north, south = new_network(), new_network()
    user = await provision(client, token(local_issuer, north), staff_user(staff_ref()))
    theirs = token(local_issuer, south)
    assert_scim_error(await client.get(f"/scim/v2/Users/{user['id']}", headers=theirs), 404)
    assert_scim_error(
        await client.patch(
            f"/scim/v2/Users/{user['id']}",
            json={
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
            headers=theirs,
        ),
        404,
    )
    assert_scim_error(await client.delete(f"/scim/v2/Users/{user['id']}", headers=theirs), 404)
    found = await client.get(
        "/scim/v2/Users", params={"filter": f'userName eq "{user["userName"]}"'}, headers=theirs
    )
    assert found.json()["totalResults"] == 0
    # Below the API, row-level security: a query with no network filter sees only its own rows.
    for network, expected in ((north, 1), (south, 0)):
        async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
            seen = await uow.conn.fetchval(
                "SELECT count(*) FROM staff WHERE scim_id = $1", uuid.UUID(user["id"])
            )
        assert seen == expected
    still = await client.get(f"/scim/v2/Users/{user['id']}", headers=token(local_issuer, north))
    assert still.json()["active"] is True


async def test_no_staff_id_email_phone_or_name_is_stored_in_clear(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network = new_network()
    headers = token(local_issuer, network)
    ref = staff_ref()
    body = staff_user(
        ref,
        given="Zebedee",
        family="Quartermaine",
        email="zq.private@mailbox.example",
        phone="+44 7700 900987",
        external_id="zquartermaine",
    )
    user = await provision(client, headers, body)
    await client.patch(
        f"/scim/v2/Users/{user['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "nickName", "value": "Zeb"}],
        },
        headers=headers,
    )
    await client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP, UNIT],
            "displayName": "ICU",
            UNIT: {"hospitalId": "st-mary", "unitId": "icu"},
            "members": [{"value": user["id"]}],
        },
        headers=headers,
    )
    rows = await directory_rows(app, network)
    assert len(rows) == 2  # the person and their unit
    assert_stored_nowhere(
        rows,
        [
            ref,
            "Zebedee",
            "Quartermaine",
            "zq.private",
            "mailbox.example",
            "900987",
            "zquartermaine",
            f"{ref.lower()}@st-mary",
        ],
    )
    # ... and yet the identity provider reads back what it provisioned.
    read = (await client.get(f"/scim/v2/Users/{user['id']}", headers=headers)).json()
    assert read["name"] == {"givenName": "Zebedee", "familyName": "Quartermaine"}
    assert read["phoneNumbers"][0]["value"] == "+44 7700 900987"
    assert read["externalId"] == "zquartermaine" and read["nickName"] == "Zeb"


async def test_groups_are_units_and_their_members_are_the_staff_working_there(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    app, client = intake
    network = new_network()
    headers = token(local_issuer, network)
    first_ref = staff_ref()
    first = await provision(client, headers, staff_user(first_ref, unit="ward-3"))
    second = await provision(client, headers, staff_user(staff_ref(), unit="ward-3"))

    created = await client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP, UNIT],
            "displayName": "Intensive Care 2",
            "externalId": "grp-icu-2",
            UNIT: {"unitId": "icu-2", "hospitalId": "st-mary"},
            "members": [{"value": first["id"]}],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == SCIM_JSON
    group = created.json()
    assert group["displayName"] == "Intensive Care 2" and group["meta"]["resourceType"] == "Group"
    assert group[UNIT] == {"hospitalId": "st-mary", "unitId": "icu-2"}
    assert [m["value"] for m in group["members"]] == [first["id"]]
    assert group["members"][0]["$ref"].endswith(f"/scim/v2/Users/{first['id']}")
    # Joining the unit moved them: their department is the unit's id.
    moved = (await client.get(f"/scim/v2/Users/{first['id']}", headers=headers)).json()
    assert moved[ENTERPRISE]["department"] == "icu-2"
    async with app.state.runtime.unit_of_work(Tenant(network)) as uow:
        member = await resolve(
            uow.conn,
            pseudonym_key=app.state.settings.pseudonym_key,
            network_id=network,
            staff_ref=first_ref,
        )
    assert member is not None and member.unit_id == "icu-2"

    patched = await client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "Add", "path": "members", "value": [{"value": second["id"]}]},
                {"op": "Replace", "path": "displayName", "value": "ICU 2"},
            ],
        },
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["displayName"] == "ICU 2"
    assert {m["value"] for m in patched.json()["members"]} == {first["id"], second["id"]}

    found = await client.get(
        "/scim/v2/Groups",
        params={"filter": 'displayName eq "icu 2"', "excludedAttributes": "members"},
        headers=headers,
    )
    assert found.status_code == 200, found.text
    assert found.json()["totalResults"] == 1
    assert found.json()["Resources"][0]["id"] == group["id"]
    assert "members" not in found.json()["Resources"][0]

    replaced = await client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={"schemas": [GROUP, UNIT], "displayName": "ICU Two", UNIT: {"unitId": "icu-2"}},
        headers=headers,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["displayName"] == "ICU Two"

    renamed_unit = await client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": f"{UNIT}:unitId", "value": "icu-9"}],
        },
        headers=headers,
    )
    assert_scim_error(renamed_unit, 400, "mutability")
    unknown_member = await client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": str(uuid.uuid4())}]}
            ],
        },
        headers=headers,
    )
    assert_scim_error(unknown_member, 400, "invalidValue")
    duplicate = await client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP, UNIT],
            "displayName": "Again",
            UNIT: {"unitId": "icu-2", "hospitalId": "st-mary"},
        },
        headers=headers,
    )
    assert_scim_error(duplicate, 409, "uniqueness")
    theirs = token(local_issuer, new_network())
    assert_scim_error(await client.get(f"/scim/v2/Groups/{group['id']}", headers=theirs), 404)

    assert (
        await client.delete(f"/scim/v2/Groups/{group['id']}", headers=headers)
    ).status_code == 204
    assert_scim_error(await client.get(f"/scim/v2/Groups/{group['id']}", headers=headers), 404)
    # A unit going away moves no one.
    still = (await client.get(f"/scim/v2/Users/{first['id']}", headers=headers)).json()
    assert still[ENTERPRISE]["department"] == "icu-2"


async def test_the_service_describes_itself(
    intake: tuple[FastAPI, httpx.AsyncClient], local_issuer: LocalIssuer
) -> None:
    _, client = intake
    headers = token(local_issuer, new_network())
    config = await client.get("/scim/v2/ServiceProviderConfig", headers=headers)
    assert config.status_code == 200 and config.headers["content-type"] == SCIM_JSON
    assert config.json()["patch"] == {"supported": True}
    assert config.json()["filter"]["supported"] is True
    assert config.json()["bulk"]["supported"] is False

    types = (await client.get("/scim/v2/ResourceTypes", headers=headers)).json()
    by_name = {t["name"]: t for t in types["Resources"]}
    assert by_name["User"]["endpoint"] == "/Users"
    assert by_name["User"]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert by_name["Group"]["schemaExtensions"] == [{"schema": UNIT, "required": True}]
    one = await client.get("/scim/v2/ResourceTypes/User", headers=headers)
    assert one.status_code == 200 and one.json()["schema"] == USER

    schemas = (await client.get("/scim/v2/Schemas", headers=headers)).json()
    assert {s["id"] for s in schemas["Resources"]} == {USER, ENTERPRISE, GROUP, UNIT}
    unit = await client.get(f"/scim/v2/Schemas/{UNIT}", headers=headers)
    assert {a["name"] for a in unit.json()["attributes"]} == {"hospitalId", "unitId"}

    assert_scim_error(await client.get("/scim/v2/Pets", headers=headers), 404)
    assert_scim_error(await client.get("/scim/v2/Schemas/urn:nope:x", headers=headers), 404)
