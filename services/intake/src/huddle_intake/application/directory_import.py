"""The workforce directory from a CSV file, for sites without SCIM: all rows or none.

A row updates the columns the file has; a column the header leaves out keeps what the directory
holds. Errors name the line and the column, never the value (it may be personal).
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from huddle_contracts.vocabulary import Discipline, HospitalId, UnitId
from huddle_runtime.auth import Principal
from huddle_runtime.service import Runtime
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator
from scim2_models import Email, EnterpriseUser, PhoneNumber

from huddle_intake.adapters import directory_repository as repository
from huddle_intake.adapters.scim_resources import StaffUser
from huddle_intake.application.scim_provisioning import staff_entry_from_user
from huddle_intake.application.workforce_directory import DirectoryKeys, staff_record
from huddle_intake.domain.support_request import PHONE_PATTERN
from huddle_intake.domain.workforce_directory import DirectoryRefused, discipline_of

COLUMNS = (
    "staff_ref",
    "hospital_id",
    "unit_id",
    "discipline",
    "manager_ref",
    "email",
    "phone",
    "display_name",
)
REQUIRED_COLUMNS = ("staff_ref", "hospital_id", "unit_id", "discipline")
MAX_ROWS = 50_000

StaffRef = Annotated[str, Field(min_length=1, max_length=64)]


class ImportRefused(DirectoryRefused):
    """A line of the file breaks a rule; nothing of the file is stored."""

    def __init__(self, message: str, *, line: int, column: str | None = None) -> None:
        where = f"line {line}" + (f", column {column}" if column else "")
        super().__init__(f"{where}: {message}")
        self.line = line
        self.column = column


class ImportOutOfScope(ImportRefused):
    """A row is for a hospital the caller's token does not cover."""


@dataclass(frozen=True)
class ImportCounts:
    created: int
    updated: int


class DirectoryRow(BaseModel):
    """One line of the file, checked; optional cells left empty are None."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    staff_ref: StaffRef
    hospital_id: HospitalId
    unit_id: UnitId
    discipline: Discipline
    manager_ref: StaffRef | None = None
    email: EmailStr | None = None
    phone: Annotated[str, Field(pattern=PHONE_PATTERN)] | None = None
    display_name: Annotated[str, Field(max_length=200)] | None = None

    @field_validator("manager_ref", "email", "phone", "display_name", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("discipline", mode="before")
    @classmethod
    def _discipline(cls, value: Any) -> Any:
        return discipline_of(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class DirectoryFile:
    columns: tuple[str, ...]
    rows: tuple[tuple[int, DirectoryRow], ...]
    """Each row with its line in the file (1 is the header)."""


def parse_directory_csv(text: str) -> DirectoryFile:
    """Check the whole file before anything is written."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise ImportRefused("a header naming the columns is required", line=1)
        columns = tuple(cell.strip().lower() for cell in header)
        for name in columns:
            if name not in COLUMNS:
                raise ImportRefused(
                    "unknown column; the columns are " + ",".join(COLUMNS), line=1, column=name
                )
            if columns.count(name) > 1:
                raise ImportRefused("the column appears twice", line=1, column=name)
        for name in REQUIRED_COLUMNS:
            if name not in columns:
                raise ImportRefused("the column is required", line=1, column=name)
        rows: list[tuple[int, DirectoryRow]] = []
        first_line_of: dict[str, int] = {}
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # blank lines carry no one
            if len(rows) >= MAX_ROWS:
                raise ImportRefused(f"a file holds at most {MAX_ROWS} rows", line=line)
            if len(cells) != len(columns):
                raise ImportRefused(
                    f"{len(cells)} fields where the header has {len(columns)}", line=line
                )
            row = _row(dict(zip(columns, cells, strict=True)), line=line)
            if row.staff_ref in first_line_of:
                raise ImportRefused(
                    f"the same staff_ref is on line {first_line_of[row.staff_ref]}",
                    line=line,
                    column="staff_ref",
                )
            first_line_of[row.staff_ref] = line
            rows.append((line, row))
    except csv.Error as exc:
        raise ImportRefused(f"not valid CSV ({exc})", line=reader.line_num) from exc
    return DirectoryFile(columns=columns, rows=tuple(rows))


def _row(cells: dict[str, str], *, line: int) -> DirectoryRow:
    try:
        return DirectoryRow.model_validate(cells)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        column = str(error["loc"][0]) if error["loc"] else None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ImportRefused(message, line=line, column=column) from exc


async def import_directory(
    *, runtime: Runtime, keys: DirectoryKeys, principal: Principal, text: str
) -> ImportCounts:
    """Create or update everyone in the file in one transaction; any refusal stores nothing."""
    parsed = parse_directory_csv(text)
    for line, row in parsed.rows:
        if principal.hospital_id is not None and row.hospital_id != principal.hospital_id:
            raise ImportOutOfScope(
                f"your token is for hospital {principal.hospital_id!r}",
                line=line,
                column="hospital_id",
            )
    created = updated = 0
    async with runtime.unit_of_work(principal.tenant) as uow:
        for line, row in parsed.rows:
            try:
                is_new = await _write(
                    uow.conn,
                    keys=keys,
                    network_id=principal.network_id,
                    row=row,
                    columns=parsed.columns,
                )
            except asyncpg.UniqueViolationError as exc:
                raise ImportRefused(
                    "another person in the directory has this staff_ref as their user name",
                    line=line,
                    column="staff_ref",
                ) from exc
            except DirectoryRefused as exc:
                raise ImportRefused(str(exc), line=line) from exc
            created += is_new
            updated += not is_new
    return ImportCounts(created=created, updated=updated)


async def _write(
    conn: asyncpg.Connection,
    *,
    keys: DirectoryKeys,
    network_id: str,
    row: DirectoryRow,
    columns: tuple[str, ...],
) -> bool:
    """Write one person; True when they were not in the directory (or had been deprovisioned)."""
    pseudonym = keys.pseudonym(network_id, row.staff_ref)
    existing = await repository.staff_by_pseudonym(conn, network_id=network_id, pseudonym=pseudonym)
    user = _as_user(
        row,
        columns=columns,
        existing_profile=keys.vault.open_document(existing.sealed_profile) if existing else None,
    )
    manager = (
        (keys.pseudonym(network_id, row.manager_ref) if row.manager_ref else None)
        if "manager_ref" in columns
        else (existing.member.manager_pseudonym if existing else None)
    )
    entry = staff_entry_from_user(user, manager_pseudonym=manager, default_hospital=None)
    is_new = existing is None or existing.deprovisioned
    record = staff_record(
        entry,
        keys=keys,
        network_id=network_id,
        # A deprovisioned person coming back gets a new SCIM id: the old one stays gone.
        scim_id=uuid.uuid4() if existing is None or existing.deprovisioned else existing.scim_id,
        clinical_area=existing.member.clinical_area if existing else None,
    )
    if existing is None:
        await repository.insert_staff(conn, record)
    else:
        await repository.update_staff(conn, record, previous_pseudonym=pseudonym)
    return is_new


def _as_user(
    row: DirectoryRow,
    *,
    columns: tuple[str, ...],
    existing_profile: dict[str, Any] | None,
) -> StaffUser:
    """The row as the SCIM record it stands for, over what was provisioned before."""
    user = (
        StaffUser.model_validate(existing_profile)
        if existing_profile
        else StaffUser(user_name=row.staff_ref)
    )
    enterprise: EnterpriseUser = user[EnterpriseUser] or EnterpriseUser()
    enterprise.employee_number = row.staff_ref  # the staff id wins over any user name
    enterprise.organization = row.hospital_id
    enterprise.department = row.unit_id
    user[EnterpriseUser] = enterprise
    user.title = row.discipline.value
    user.active = True  # listed in the file means working there
    if "email" in columns:
        user.emails = (
            [Email(value=row.email, type=Email.Type.work, primary=True)] if row.email else None
        )
    if "phone" in columns:
        user.phone_numbers = (
            [PhoneNumber(value=row.phone, type=PhoneNumber.Type.work, primary=True)]
            if row.phone
            else None
        )
    if "display_name" in columns:
        user.display_name = row.display_name
    return user
