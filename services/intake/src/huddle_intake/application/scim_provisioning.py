"""SCIM 2.0 provisioning of the workforce directory (RFC 7644), one unit of work per request.

Users are staff, Groups are units. Every failure is a ``scim2_models.SCIMException``, which the
SCIM edge answers as an RFC 7644 §3.12 Error. Messages never echo what was sent: it may be
personal.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from huddle_contracts.vocabulary import HospitalId, UnitId
from huddle_runtime.auth import Principal
from huddle_runtime.service import Runtime
from pydantic import TypeAdapter, ValidationError
from scim2_models import (
    BaseModel,
    Context,
    EnterpriseUser,
    Error,
    ForbiddenException,
    Group,
    GroupMember,
    InvalidFilterException,
    InvalidValueException,
    ListResponse,
    Manager,
    Meta,
    NotFoundException,
    PatchOp,
    SCIMException,
    ScimFilter,
    UniquenessException,
)
from scim2_models.path import CompareOperator, Comparison, FilterNode, LogicalExpr, LogicalOperator

from huddle_intake.adapters import directory_repository as repository
from huddle_intake.adapters.directory_repository import Page, StaffRecord, UnitRecord
from huddle_intake.adapters.scim_resources import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    POLICY,
    PROVIDER,
    UNIT_GROUP,
    HuddleUnit,
    StaffUser,
)
from huddle_intake.application.workforce_directory import DirectoryKeys, StaffEntry, staff_record
from huddle_intake.domain.support_request import ContactDetails
from huddle_intake.domain.workforce_directory import DirectoryRefused, Unit, discipline_of

_Model = TypeVar("_Model", bound=BaseModel)

_ENTERPRISE = str(EnterpriseUser.__schema__)
_MANAGER_PATH = f"{_ENTERPRISE}:manager".casefold()
_HOSPITAL_ID: TypeAdapter[str] = TypeAdapter(HospitalId)
_UNIT_ID: TypeAdapter[str] = TypeAdapter(UnitId)


def page_of(start_index: int | None, count: int | None) -> Page:
    """RFC 7644 §3.4.2.4: a start below 1 means 1, a negative count means 0; capped in size."""
    start = max(start_index or 1, 1)
    size = DEFAULT_PAGE_SIZE if count is None else min(max(count, 0), MAX_PAGE_SIZE)
    return Page(offset=start - 1, limit=size)


@dataclass(frozen=True)
class ScimProvisioning:
    """The SCIM use cases for one caller: the network comes from their token, never the body."""

    runtime: Runtime
    keys: DirectoryKeys
    principal: Principal
    base_url: str
    """Where ``/scim/v2`` is served, for ``meta.location`` and references."""

    # --- Users -------------------------------------------------------------------------------

    async def create_user(self, payload: Any) -> StaffUser:
        user = _validated(
            StaffUser, self._with_manager_ref(payload), Context.RESOURCE_CREATION_REQUEST
        )
        async with self._work() as conn:
            record = await self._store(conn, user, current=None)
            return await self._user(conn, record)

    async def get_user(self, user_id: str) -> StaffUser:
        async with self._work() as conn:
            return await self._user(conn, await self._find_user(conn, user_id))

    async def list_users(self, *, filter_: str | None, page: Page) -> ListResponse[StaffUser]:
        lookups = _equalities(
            filter_, StaffUser, {"username": "userName", "externalid": "externalId"}
        )
        async with self._work() as conn:
            total, records = 0, list[StaffRecord]()
            if lookups is not None:
                total, records = await repository.find_staff(
                    conn,
                    user_name_digest=(
                        self.keys.user_name_digest(self._network, lookups["userName"])
                        if "userName" in lookups
                        else None
                    ),
                    external_id_digest=(
                        self.keys.external_id_digest(self._network, lookups["externalId"])
                        if "externalId" in lookups
                        else None
                    ),
                    hospital_id=self._scope,
                    page=page,
                )
            users = await self._users(conn, records)
        return ListResponse[StaffUser](
            total_results=total,
            start_index=page.offset + 1,
            items_per_page=len(users),
            resources=users,
        )

    async def replace_user(self, user_id: str, payload: Any) -> StaffUser:
        wanted = _validated(
            StaffUser, self._with_manager_ref(payload), Context.RESOURCE_REPLACEMENT_REQUEST
        )
        async with self._work() as conn:
            current = await self._find_user(conn, user_id, for_update=True)
            wanted.replace(await self._user(conn, current))
            return await self._user(conn, await self._store(conn, wanted, current=current))

    async def patch_user(self, user_id: str, payload: Any) -> StaffUser:
        patch = _validated(
            PatchOp[StaffUser],
            _manager_values_as_objects(payload),
            Context.RESOURCE_PATCH_REQUEST,
        )
        async with self._work() as conn:
            current = await self._find_user(conn, user_id, for_update=True)
            user = await self._user(conn, current)
            patch.patch(user, scim_policy=POLICY)
            return await self._user(conn, await self._store(conn, user, current=current))

    async def deprovision_user(self, user_id: str) -> None:
        """SCIM DELETE: inactive and 404 from then on; the row stays (reporting lines, history)."""
        async with self._work() as conn:
            current = await self._find_user(conn, user_id, for_update=True)
            user = await self._user(conn, current)
            user.active = False
            await repository.deprovision(
                conn,
                scim_id=current.scim_id,
                sealed_profile=self.keys.vault.seal_document(profile_of(user)),
            )

    # --- Groups (units) ----------------------------------------------------------------------

    async def create_group(self, payload: Any) -> Group:
        group = _validated(UNIT_GROUP, payload, Context.RESOURCE_CREATION_REQUEST)
        unit_ids: HuddleUnit = group[HuddleUnit]
        with _refusals_as_invalid_values():
            hospital = _slug("hospitalId", unit_ids.hospital_id or self._scope)
            unit = _slug("unitId", unit_ids.unit_id, _UNIT_ID)
        self._within(hospital)
        record = UnitRecord(
            unit=Unit(self._network, hospital, unit, display_name=group.display_name or unit),
            scim_id=uuid.uuid4(),
            external_id=group.external_id,
        )
        async with self._work() as conn:
            try:
                await repository.insert_unit(conn, record)
            except asyncpg.UniqueViolationError as exc:
                raise UniquenessException(
                    detail="a group for this hospital and unit already exists"
                ) from exc
            await self._add_members(conn, record.unit, group.members or [], already=set())
            return await self._group(conn, await self._find_group(conn, str(record.scim_id)))

    async def get_group(self, group_id: str, *, with_members: bool = True) -> Group:
        async with self._work() as conn:
            record = await self._find_group(conn, group_id)
            return await self._group(conn, record, with_members=with_members)

    async def list_groups(
        self, *, filter_: str | None, page: Page, with_members: bool = True
    ) -> ListResponse[Group]:
        lookups = _equalities(
            filter_, UNIT_GROUP, {"displayname": "displayName", "externalid": "externalId"}
        )
        async with self._work() as conn:
            total, records = 0, list[UnitRecord]()
            if lookups is not None:
                total, records = await repository.find_units(
                    conn,
                    display_name=lookups.get("displayName"),
                    external_id=lookups.get("externalId"),
                    hospital_id=self._scope,
                    page=page,
                )
            groups = [await self._group(conn, r, with_members=with_members) for r in records]
        return ListResponse[UNIT_GROUP](  # type: ignore[valid-type]
            total_results=total,
            start_index=page.offset + 1,
            items_per_page=len(groups),
            resources=groups,
        )

    async def replace_group(self, group_id: str, payload: Any) -> Group:
        wanted = _validated(UNIT_GROUP, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
        async with self._work() as conn:
            current = await self._find_group(conn, group_id, for_update=True)
            before = await self._group(conn, current)
            wanted.replace(before)
            return await self._save_group(conn, current, wanted, before=before)

    async def patch_group(self, group_id: str, payload: Any) -> Group:
        patch = _validated(
            PatchOp[UNIT_GROUP],  # type: ignore[valid-type]
            payload,
            Context.RESOURCE_PATCH_REQUEST,
        )
        async with self._work() as conn:
            current = await self._find_group(conn, group_id, for_update=True)
            group = await self._group(conn, current)
            before = group.model_copy(deep=True)
            patch.patch(group, scim_policy=POLICY)
            return await self._save_group(conn, current, group, before=before)

    async def delete_group(self, group_id: str) -> None:
        """A unit is not a person: its row goes; its staff keep their unit id."""
        async with self._work() as conn:
            record = await self._find_group(conn, group_id, for_update=True)
            await repository.delete_unit(conn, record.scim_id)

    # --- the mapping between SCIM and the directory ------------------------------------------

    @property
    def _network(self) -> str:
        return self.principal.network_id

    @property
    def _scope(self) -> str | None:
        """A token bound to a hospital provisions that hospital only."""
        return self.principal.hospital_id

    def _within(self, hospital_id: str) -> None:
        if self._scope is not None and hospital_id != self._scope:
            raise ForbiddenException(
                detail=f"your token is for hospital {self._scope!r}, not {hospital_id!r}"
            )

    def _location(self, endpoint: str, scim_id: UUID) -> str:
        return f"{self.base_url}/{endpoint}/{scim_id}"

    @asynccontextmanager
    async def _work(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.runtime.unit_of_work(self.principal.tenant) as uow:
            yield uow.conn

    async def _find_user(
        self, conn: asyncpg.Connection, user_id: str, *, for_update: bool = False
    ) -> StaffRecord:
        scim_id = _uuid(user_id)
        record = (
            await repository.staff_by_scim_id(
                conn, scim_id, hospital_id=self._scope, for_update=for_update
            )
            if scim_id
            else None
        )
        if record is None:
            raise NotFoundException(detail=f"no user {user_id}")
        return record

    async def _find_group(
        self, conn: asyncpg.Connection, group_id: str, *, for_update: bool = False
    ) -> UnitRecord:
        scim_id = _uuid(group_id)
        record = (
            await repository.unit_by_scim_id(
                conn, scim_id, hospital_id=self._scope, for_update=for_update
            )
            if scim_id
            else None
        )
        if record is None:
            raise NotFoundException(detail=f"no group {group_id}")
        return record

    async def _store(
        self, conn: asyncpg.Connection, user: StaffUser, *, current: StaffRecord | None
    ) -> StaffRecord:
        """Write a user as a directory row (insert, update or bring back) and read it back."""
        manager_pseudonym = await self._manager_pseudonym(conn, user)
        with _refusals_as_invalid_values():
            entry = staff_entry_from_user(
                user, manager_pseudonym=manager_pseudonym, default_hospital=self._scope
            )
        self._within(entry.hospital_id)
        pseudonym = self.keys.pseudonym(self._network, entry.staff_ref)
        same_person = await repository.staff_by_pseudonym(
            conn, network_id=self._network, pseudonym=pseudonym
        )
        if current is None and same_person is not None and not same_person.deprovisioned:
            raise UniquenessException(detail="a user with this staff identifier already exists")
        if (
            current is not None
            and same_person is not None
            and same_person.scim_id != current.scim_id
        ):
            raise UniquenessException(detail="another user has this staff identifier")
        kept = current or same_person
        with _refusals_as_invalid_values():
            record = staff_record(
                entry,
                keys=self.keys,
                network_id=self._network,
                # A deprovisioned person coming back gets a new id: the old one stays gone (§3.6).
                scim_id=current.scim_id if current else uuid.uuid4(),
                clinical_area=kept.member.clinical_area if kept else None,
            )
        try:
            if kept is None:
                await repository.insert_staff(conn, record)
            else:
                await repository.update_staff(
                    conn, record, previous_pseudonym=kept.member.pseudonym
                )
        except asyncpg.UniqueViolationError as exc:
            raise UniquenessException(detail="another user has this userName") from exc
        stored = await repository.staff_by_scim_id(conn, record.scim_id)
        assert stored is not None
        return stored

    async def _manager_pseudonym(self, conn: asyncpg.Connection, user: StaffUser) -> str | None:
        enterprise: EnterpriseUser | None = user[EnterpriseUser]
        if enterprise is None or enterprise.manager is None or not enterprise.manager.value:
            return None
        scim_id = _uuid(enterprise.manager.value)
        manager = await repository.staff_by_scim_id(conn, scim_id) if scim_id else None
        if manager is None:
            raise InvalidValueException(detail="manager.value names no user of this network")
        return manager.member.pseudonym

    async def _user(self, conn: asyncpg.Connection, record: StaffRecord) -> StaffUser:
        return (await self._users(conn, [record]))[0]

    async def _users(
        self, conn: asyncpg.Connection, records: Iterable[StaffRecord]
    ) -> list[StaffUser]:
        records = list(records)
        managers = await repository.scim_ids(
            conn,
            network_id=self._network,
            pseudonyms=[r.member.manager_pseudonym for r in records if r.member.manager_pseudonym],
        )
        users = []
        for record in records:
            user = StaffUser.model_validate(self.keys.vault.open_document(record.sealed_profile))
            user.id = str(record.scim_id)
            user.active = record.member.active
            user.meta = Meta(
                resource_type="User",
                created=record.created_at,
                last_modified=record.updated_at,
                location=self._location("Users", record.scim_id),
            )
            manager_id = managers.get(record.member.manager_pseudonym or "")
            if manager_id is not None:
                enterprise: EnterpriseUser = user[EnterpriseUser] or EnterpriseUser()
                enterprise.manager = Manager.model_validate(
                    {"value": str(manager_id), "$ref": self._location("Users", manager_id)}
                )
                user[EnterpriseUser] = enterprise
            users.append(user)
        return users

    async def _group(
        self, conn: asyncpg.Connection, record: UnitRecord, *, with_members: bool = True
    ) -> Group:
        unit = record.unit
        members = (
            await repository.scim_ids_in_unit(
                conn, network_id=unit.network_id, hospital_id=unit.hospital_id, unit_id=unit.unit_id
            )
            if with_members
            else []
        )
        group = UNIT_GROUP(
            id=str(record.scim_id),
            external_id=record.external_id,
            display_name=unit.display_name,
            members=[
                GroupMember.model_validate(
                    {"value": str(m), "$ref": self._location("Users", m), "type": "User"}
                )
                for m in members
            ]
            or None,
            meta=Meta(
                resource_type="Group",
                created=record.created_at,
                last_modified=record.updated_at,
                location=self._location("Groups", record.scim_id),
            ),
        )
        group[HuddleUnit] = HuddleUnit(hospital_id=unit.hospital_id, unit_id=unit.unit_id)
        return group

    async def _save_group(
        self, conn: asyncpg.Connection, current: UnitRecord, group: Group, *, before: Group
    ) -> Group:
        if not group.display_name:
            raise InvalidValueException(detail="displayName is required")
        unit = Unit(
            current.unit.network_id,
            current.unit.hospital_id,
            current.unit.unit_id,
            display_name=group.display_name,
        )
        await repository.update_unit(
            conn,
            UnitRecord(unit=unit, scim_id=current.scim_id, external_id=group.external_id),
        )
        already = {m.value for m in before.members or [] if m.value}
        await self._add_members(conn, unit, group.members or [], already=already)
        return await self._group(conn, await self._find_group(conn, str(current.scim_id)))

    async def _add_members(
        self,
        conn: asyncpg.Connection,
        unit: Unit,
        members: Iterable[GroupMember],
        *,
        already: set[str],
    ) -> None:
        """Adding a member moves them to the unit; a unit's members are the staff working there.

        Removing a member is accepted but moves no one: a person always has a unit, and their
        next one comes with their next ``department`` or group.
        """
        for member in members:
            if not member.value or member.value in already:
                continue
            if member.type is not None and member.type != "User":
                raise InvalidValueException(detail="the members of a unit are users")
            scim_id = _uuid(member.value)
            record = (
                await repository.staff_by_scim_id(
                    conn, scim_id, hospital_id=self._scope, for_update=True
                )
                if scim_id
                else None
            )
            if record is None:
                raise InvalidValueException(detail="members[].value names no user of this network")
            if (record.member.hospital_id, record.member.unit_id) == (
                unit.hospital_id,
                unit.unit_id,
            ):
                continue
            user = await self._user(conn, record)
            enterprise: EnterpriseUser = user[EnterpriseUser] or EnterpriseUser()
            enterprise.organization = unit.hospital_id
            enterprise.department = unit.unit_id
            user[EnterpriseUser] = enterprise
            await self._store(conn, user, current=record)

    def _with_manager_ref(self, payload: Any) -> Any:
        """Fill ``manager.$ref`` (required by the schema) from ``manager.value`` when left out."""
        if not isinstance(payload, dict):
            return payload
        enterprise = payload.get(_ENTERPRISE)
        if not isinstance(enterprise, dict):
            return payload
        manager = enterprise.get("manager")
        if isinstance(manager, str):
            manager = {"value": manager}
        if isinstance(manager, dict) and manager.get("value") and not manager.get("$ref"):
            manager = {**manager, "$ref": f"{self.base_url}/Users/{manager['value']}"}
            return {**payload, _ENTERPRISE: {**enterprise, "manager": manager}}
        return payload


def _manager_values_as_objects(payload: Any) -> Any:
    """Microsoft Entra replaces the manager with a bare id; the schema wants ``{"value": id}``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Operations"), list):
        return payload
    operations = []
    for operation in payload["Operations"]:
        if (
            isinstance(operation, dict)
            and str(operation.get("path", "")).casefold() == _MANAGER_PATH
            and isinstance(operation.get("value"), str)
        ):
            operation = {**operation, "value": {"value": operation["value"]}}
        operations.append(operation)
    return {**payload, "Operations": operations}


def staff_entry_from_user(
    user: StaffUser, *, manager_pseudonym: str | None, default_hospital: str | None
) -> StaffEntry:
    """What a SCIM user says about a member of staff.

    employeeNumber (else userName) is the staff id, organization the hospital, department the
    unit, title (else userType) the discipline; the primary e-mail and phone are the contact.
    """
    enterprise: EnterpriseUser = user[EnterpriseUser] or EnterpriseUser()
    hospital = _slug("organization (the hospital id)", enterprise.organization or default_hospital)
    unit = _slug("department (the unit id)", enterprise.department, _UNIT_ID)
    enterprise.organization = hospital  # a defaulted hospital is recorded, so reads show it
    user[EnterpriseUser] = enterprise
    assert user.user_name is not None  # required by every request context that reaches here
    name = user.name
    return StaffEntry(
        staff_ref=(enterprise.employee_number or user.user_name).strip(),
        user_name=user.user_name,
        external_id=user.external_id,
        hospital_id=hospital,
        unit_id=unit,
        discipline=discipline_of(user.title, user.user_type),
        manager_pseudonym=manager_pseudonym,
        active=user.active is not False,
        contact=ContactDetails(
            phone=_preferred(v.value for v in _primary_first(user.phone_numbers)),
            email=_preferred(v.value for v in _primary_first(user.emails)),
        ),
        display_name=user.display_name
        or (name.formatted if name else None)
        or (" ".join(p for p in (name.given_name, name.family_name) if p) if name else None)
        or None,
        profile=profile_of(user),
    )


def profile_of(user: StaffUser) -> dict[str, Any]:
    """What is sealed: the user as provisioned, less the server's own attributes and secrets."""
    kept = user.model_copy(deep=True)
    kept.id = None
    kept.meta = None
    kept.groups = None
    kept.password = None  # never kept: Huddle does not log anyone in with it
    enterprise: EnterpriseUser | None = kept[EnterpriseUser]
    if enterprise is not None:
        enterprise.manager = None  # kept as the manager's pseudonym instead
    return kept.model_dump(scim_ctx=Context.DEFAULT)


def _primary_first(values: list[_Model] | None) -> list[_Model]:
    return sorted(values or [], key=lambda v: not getattr(v, "primary", False))


def _preferred(values: Iterable[str | None]) -> str | None:
    return next((v for v in values if v), None)


def _slug(what: str, value: str | None, adapter: TypeAdapter[str] = _HOSPITAL_ID) -> str:
    if not value:
        raise DirectoryRefused(f"{what} is required")
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise DirectoryRefused(
            f"{what} must be a lower-case slug such as 'st-marys' or 'icu-2'"
        ) from exc


@contextmanager
def _refusals_as_invalid_values() -> Iterator[None]:
    """A directory rule's refusal is SCIM's invalidValue."""
    try:
        yield
    except DirectoryRefused as exc:
        raise InvalidValueException(detail=str(exc)) from exc


def _validated(model: type[_Model], payload: Any, context: Context) -> _Model:
    try:
        return model.model_validate(payload, scim_ctx=context, scim_provider=PROVIDER)
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: ValidationError) -> SCIMException:
    """One SCIM Error for all of a payload's faults (RFC 7644 has one error per response)."""
    errors = Error.from_validation_errors(exc)
    first = errors[0]
    detail = "; ".join(e.detail for e in errors if e.detail)
    return SCIMException.from_error(
        Error(status=first.status or 400, scim_type=first.scim_type, detail=detail)
    )


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def _equalities(
    filter_: str | None, model: type[BaseModel], attributes: dict[str, str]
) -> dict[str, str] | None:
    """The ``eq`` comparisons of a filter joined by ``and``, by attribute; None matches nothing.

    ``attributes`` maps the case-folded SCIM name to the name the lookups use.
    """
    if not filter_:
        return {}
    parsed = ScimFilter[model](filter_)  # type: ignore[valid-type]  # raises invalidFilter
    supported = " or ".join(sorted(attributes.values()))
    found: dict[str, str] = {}
    for term in _conjunction(parsed.ast):
        if not (
            isinstance(term, Comparison)
            and term.op is CompareOperator.eq
            and term.attr_path.sub_attr is None
            and term.attr_path.uri in (None, str(getattr(model, "__schema__", "")))
            and term.attr_path.attr.casefold() in attributes
            and isinstance(term.value, str)
        ):
            raise InvalidFilterException(
                detail=f"this service filters with eq on {supported}, joined by and"
            )
        name = attributes[term.attr_path.attr.casefold()]
        if found.setdefault(name, term.value) != term.value:
            return None
    return found


def _conjunction(node: FilterNode) -> list[FilterNode]:
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.and_:
        return [leaf for term in node.terms for leaf in _conjunction(term)]
    return [node]
