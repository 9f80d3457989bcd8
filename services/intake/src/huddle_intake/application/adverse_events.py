"""Adverse-event intake: a report becomes a de-identified event and, when the outreach policy
says so, an offer of support to everyone involved, in one unit of work.

The same use case serves HTTP (``POST /v1/adverse-events``) and the inbound topic, so both apply
the same validation, de-identification and policy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from huddle_contracts.events import AdverseEventReported, InvolvedStaff
from huddle_contracts.vocabulary import Discipline, Origin
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.service import Runtime
from huddle_runtime.tenancy import Tenant
from huddle_runtime.unit_of_work import UnitOfWork
from pydantic import SecretStr

from huddle_intake.adapters import adverse_event_repository as events
from huddle_intake.adapters import journey_repository as journey
from huddle_intake.adapters import repository
from huddle_intake.adapters.adverse_event_repository import (
    AdverseEventRecord,
    InvolvedRecord,
    StoredAnswer,
    keyed_digest,
)
from huddle_intake.application import tier_one
from huddle_intake.application import workforce_directory as directory
from huddle_intake.domain.adverse_event_report import (
    AdverseEventReport,
    InvolvedStaffRef,
    ReportRefused,
    reporting_hospital,
)
from huddle_intake.domain.outreach_policy import (
    OutreachPolicy,
    group_debrief_needed,
    outreach_urgency,
    policy_in_force,
    qualifies,
)
from huddle_intake.domain.support_request import SupportRequest
from huddle_intake.domain.workforce_directory import unit_for_unknown_staff


class IdempotencyKeyReused(ReportRefused):
    """The Idempotency-Key already answered a different request."""


@dataclass(frozen=True)
class Reporter:
    """The incident system reporting: its network, the hospital it is bound to, its pseudonym."""

    network_id: str
    hospital_id: str | None
    pseudonym: str

    @classmethod
    def known_as(
        cls, pseudonym_key: SecretStr, *, network_id: str, hospital_id: str | None, identity: str
    ) -> Reporter:
        # Prefixed so a system's identity can never be taken for a worker's staff identifier.
        pseudonym = pseudonym_for(pseudonym_key, network_id, "reporter:" + identity)
        return cls(network_id, hospital_id, pseudonym)


@dataclass(frozen=True)
class ReportAccepted:
    adverse_event_id: UUID
    outreach_triggered: bool
    group_debrief_requested: bool
    support_requests: int
    unknown_staff: int
    first_report: bool = True
    """False when the same reporter event id had been reported before: its first result."""

    @classmethod
    def of(cls, record: AdverseEventRecord, *, first_report: bool) -> ReportAccepted:
        return cls(
            adverse_event_id=record.adverse_event_id,
            outreach_triggered=record.outreach_triggered,
            group_debrief_requested=record.group_debrief_requested,
            support_requests=record.support_requests,
            unknown_staff=record.unknown_staff,
            first_report=first_report,
        )

    def as_body(self) -> dict[str, Any]:
        return {
            "adverse_event_id": str(self.adverse_event_id),
            "outreach_triggered": self.outreach_triggered,
            "group_debrief_requested": self.group_debrief_requested,
            "support_requests": self.support_requests,
            "unknown_staff": self.unknown_staff,
        }


@dataclass(frozen=True)
class InvolvedPerson:
    """Someone involved, as the directory places them (or as placed without it)."""

    pseudonym: str
    hospital_id: str
    unit_id: str
    discipline: Discipline
    clinical_area: str | None
    reporting_line: tuple[str, ...]
    in_directory: bool


@dataclass(frozen=True)
class IncomingReport:
    """A report to take in, with the unit of work its events are published to."""

    uow: UnitOfWork
    reporter: Reporter
    report: AdverseEventReport


async def report_adverse_event(
    uow: UnitOfWork,
    *,
    pseudonym_key: SecretStr,
    reporter: Reporter,
    report: AdverseEventReport,
) -> ReportAccepted:
    """Store the de-identified event, publish it, and offer support if the policy says so."""
    [result] = await report_adverse_events(
        pseudonym_key=pseudonym_key, reports=[IncomingReport(uow, reporter, report)]
    )
    if isinstance(result, ReportRefused):
        raise result
    return result


async def report_adverse_events(
    *, pseudonym_key: SecretStr, reports: Sequence[IncomingReport]
) -> list[ReportAccepted | ReportRefused]:
    """``report_adverse_event`` for a run of reports of one network on one connection, in a
    fixed number of round trips however many there are (a back-fill's batch).

    Each report's result, in order: a refused report has written nothing. A report whose
    reporter event id came earlier, in the database or in the run, gets the first's result.
    """
    if not reports:
        return []
    conn, network = reports[0].uow.conn, reports[0].reporter.network_id
    if any(r.uow.conn is not conn or r.reporter.network_id != network for r in reports):
        raise ValueError("a run of reports shares one connection and one network")
    results: list[ReportAccepted | ReportRefused | None] = [None] * len(reports)
    placed: list[tuple[int, str, str]] = []  # (index, hospital, reporter event digest)
    for i, incoming in enumerate(reports):
        try:
            hospital = reporting_hospital(
                declared=incoming.report.hospital_id,
                reporter_hospital=incoming.reporter.hospital_id,
            )
        except ReportRefused as refused:
            results[i] = refused
            continue
        digest = keyed_digest(
            pseudonym_key, network, "reporter-event-id", incoming.report.reporter_event_id.encode()
        )
        placed.append((i, hospital, digest))
    if not placed:  # all refused: nothing to read or write
        return [result for result in results if result is not None]
    digests = [digest for _, _, digest in placed]
    await events.lock_each(conn, (network, "adverse-event"), digests)
    earlier = await events.adverse_events_reported_as(
        conn, network_id=network, reporter_event_digests=digests
    )
    network_policy, hospital_policies = await events.outreach_policies_of(
        conn, network_id=network, hospital_ids={hospital for _, hospital, _ in placed}
    )
    new = [(i, hospital, digest) for i, hospital, digest in placed if digest not in earlier]
    pseudonym = _Pseudonyms(pseudonym_key, network)
    lines = await directory.lines_of(
        conn,
        network_id=network,
        pseudonyms={
            p for i, _, _ in new for p in _directory_pseudonyms(pseudonym, reports[i].report)
        },
    )
    writes = _Writes()
    for i, hospital, digest in placed:
        if digest in earlier:
            results[i] = ReportAccepted.of(earlier[digest], first_report=False)
            continue
        incoming = reports[i]
        policy, _ = policy_in_force(
            network=network_policy, hospital=hospital_policies.get(hospital)
        )
        people = _involved(pseudonym, lines, hospital_id=hospital, report=incoming.report)
        record = _take_in(
            incoming, writes, hospital=hospital, digest=digest, policy=policy, people=people
        )
        earlier[digest] = record  # the same report again in this run is its repeat
        results[i] = ReportAccepted.of(record, first_report=True)
    await writes.flush(reports[0].uow)
    done = [result for result in results if result is not None]
    assert len(done) == len(reports)
    return done


@dataclass
class _Writes:
    """The rows a run of reports writes, in as many statements as there are tables."""

    requests: list[SupportRequest] = field(default_factory=list)
    steps: list[journey.Step] = field(default_factory=list)
    prompts: list[tier_one.Prompt] = field(default_factory=list)
    reported: list[tuple[AdverseEventRecord, list[InvolvedRecord]]] = field(default_factory=list)

    async def flush(self, uow: UnitOfWork) -> None:
        # Requests first: the other rows refer to them.
        if self.requests:
            await repository.add_all(uow.conn, self.requests)
            await journey.add_steps(uow.conn, self.steps)
        if self.prompts:
            await tier_one.prompt_managers(uow, self.prompts)
        if self.reported:
            await events.add_adverse_events(uow.conn, self.reported)


def _take_in(
    incoming: IncomingReport,
    writes: _Writes,
    *,
    hospital: str,
    digest: str,
    policy: OutreachPolicy,
    people: list[InvolvedPerson],
) -> AdverseEventRecord:
    """One new report: its event published, its outreach and its rows queued in ``writes``."""
    report, reporter, uow = incoming.report, incoming.reporter, incoming.uow
    units_touched = {(hospital, unit) for unit in report.unit_ids}
    units_touched |= {(person.hospital_id, person.unit_id) for person in people}
    triggered = qualifies(report, policy)
    now = datetime.now(UTC)
    reported = AdverseEventReported(
        network_id=reporter.network_id,
        hospital_id=hospital,
        adverse_event_id=uuid.uuid4(),
        unit_ids=tuple(dict.fromkeys((*report.unit_ids, *(p.unit_id for p in people)))),
        event_class=report.event_class,
        harm_level=report.harm_level,
        categories=report.categories,
        occurred_at=report.occurred_at,
        reported_at=now,
        involved=tuple(
            InvolvedStaff(pseudonym=p.pseudonym, discipline=p.discipline, unit_id=p.unit_id)
            for p in people
        ),
        outreach_triggered=triggered,
        group_debrief_requested=triggered and group_debrief_needed(len(people), len(units_touched)),
    )
    # The event goes first on the bus: matching learns who is involved before any request.
    uow.publish(reported)
    cases = (
        _offer_support(uow, writes, reporter=reporter, report=report, event=reported, people=people)
        if triggered
        else {}
    )
    record = AdverseEventRecord(
        adverse_event_id=reported.adverse_event_id,
        network_id=reporter.network_id,
        hospital_id=hospital,
        unit_ids=reported.unit_ids,
        event_class=reported.event_class,
        harm_level=reported.harm_level,
        categories=reported.categories,
        occurred_at=reported.occurred_at,
        reported_at=now,
        reporter_event_digest=digest,
        reported_by=reporter.pseudonym,
        outreach_triggered=triggered,
        group_debrief_requested=reported.group_debrief_requested,
        support_requests=len(cases),
        unknown_staff=sum(not person.in_directory for person in people),
    )
    writes.reported.append(
        (
            record,
            [
                InvolvedRecord(
                    pseudonym=p.pseudonym,
                    hospital_id=p.hospital_id,
                    unit_id=p.unit_id,
                    discipline=p.discipline,
                    in_directory=p.in_directory,
                    case_id=cases.get(p.pseudonym),
                )
                for p in people
            ],
        )
    )
    return record


class _Pseudonyms:
    """Staff identifiers' pseudonyms in one network, each computed once for a run of reports
    (no repr of its own: it holds the identifiers)."""

    def __init__(self, pseudonym_key: SecretStr, network: str) -> None:
        self._key, self._network = pseudonym_key, network
        self._known: dict[str, str] = {}

    def __call__(self, staff_ref: str) -> str:
        found = self._known.get(staff_ref)
        if found is None:
            found = self._known[staff_ref] = pseudonym_for(self._key, self._network, staff_ref)
        return found


def _directory_pseudonyms(pseudonym: _Pseudonyms, report: AdverseEventReport) -> Iterator[str]:
    """Everyone the directory is asked about for a report: each staff identifier of each person
    involved, and their manager's for someone it may not know."""
    for named in report.involved:
        for staff_ref in named.staff_refs:
            yield pseudonym(staff_ref)
        if named.manager_ref:
            yield pseudonym(named.manager_ref)


def _involved(
    pseudonym: _Pseudonyms,
    lines: directory.Lines,
    *,
    hospital_id: str,
    report: AdverseEventReport,
) -> list[InvolvedPerson]:
    """Everyone involved, once each, placed by the directory; no one dropped for being unknown."""
    people: dict[str, InvolvedPerson] = {}
    for named in report.involved:
        person = _placed(
            pseudonym,
            lines,
            hospital_id=hospital_id,
            event_unit=report.event_unit,
            named=named,
        )
        people.setdefault(person.pseudonym, person)
    return list(people.values())


def _placed(
    pseudonym: _Pseudonyms,
    lines: directory.Lines,
    *,
    hospital_id: str,
    event_unit: str,
    named: InvolvedStaffRef,
) -> InvolvedPerson:
    for staff_ref in named.staff_refs:
        member = lines.member(pseudonym(staff_ref))
        if member is not None:
            return InvolvedPerson(
                pseudonym=member.pseudonym,
                hospital_id=member.hospital_id,
                unit_id=member.unit_id,
                discipline=member.discipline,
                clinical_area=member.clinical_area,
                reporting_line=lines.reporting_line(member.pseudonym),
                in_directory=True,
            )
    manager_pseudonym = pseudonym(named.manager_ref) if named.manager_ref else None
    placement = unit_for_unknown_staff(
        manager=lines.member(manager_pseudonym) if manager_pseudonym else None,
        event_hospital_id=hospital_id,
        event_unit_id=event_unit,
    )
    line: tuple[str, ...] = ()
    if manager_pseudonym is not None:
        line = (manager_pseudonym, *lines.reporting_line(manager_pseudonym))
    return InvolvedPerson(
        pseudonym=pseudonym(named.staff_refs[0]),
        hospital_id=placement.hospital_id,
        unit_id=placement.unit_id,
        discipline=named.discipline_hint or Discipline.OTHER,
        clinical_area=None,
        reporting_line=line,
        in_directory=False,
    )


def _offer_support(
    uow: UnitOfWork,
    writes: _Writes,
    *,
    reporter: Reporter,
    report: AdverseEventReport,
    event: AdverseEventReported,
    people: list[InvolvedPerson],
) -> dict[str, UUID]:
    """One outreach request per person involved; each knows everyone involved (never their
    peer). Returns each person's case id."""
    urgency = outreach_urgency(report)
    everyone = tuple(person.pseudonym for person in people)
    cases: dict[str, UUID] = {}
    for person in people:
        request = SupportRequest(
            case_id=uuid.uuid4(),
            network_id=reporter.network_id,
            hospital_id=person.hospital_id,
            unit_id=person.unit_id,
            requester=person.pseudonym,
            submitted_by=reporter.pseudonym,
            discipline=person.discipline,
            origin=Origin.OUTREACH,
            urgency=urgency,
            requested_at=event.reported_at,
        )
        writes.requests.append(request)
        writes.steps.append(
            journey.Step(
                network_id=request.network_id,
                case_id=request.case_id,
                kind="requested",
                at=request.requested_at,
                detail={"urgency": urgency.value, "origin": Origin.OUTREACH.value},
            )
        )
        uow.publish(
            request.to_event(
                adverse_event_id=event.adverse_event_id,
                clinical_area=person.clinical_area,
                reporting_line=person.reporting_line,
                involved=everyone,
            )
        )
        if person.reporting_line:
            writes.prompts.append(
                tier_one.Prompt(
                    hospital_id=person.hospital_id,
                    case_id=request.case_id,
                    manager=person.reporting_line[0],
                )
            )
        cases[person.pseudonym] = request.case_id
    return cases


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as first given, to be given again to a retry with the same key."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


async def submit_adverse_event(
    *,
    runtime: Runtime,
    pseudonym_key: SecretStr,
    reporter: Reporter,
    report: AdverseEventReport,
    idempotency_key: str | None,
    request_fingerprint: bytes,
) -> Answer:
    """The use case over HTTP: a retry with the same Idempotency-Key gets the first answer."""
    network = reporter.network_id
    async with runtime.unit_of_work(Tenant(network, reporter.hospital_id)) as uow:
        key_digest = request_digest = None
        if idempotency_key is not None:
            # Scoped to the reporter, so two systems of one network cannot collide on a key.
            key_digest = keyed_digest(
                pseudonym_key,
                network,
                "idempotency-key",
                f"{reporter.pseudonym}/{idempotency_key}".encode(),
            )
            request_digest = keyed_digest(
                pseudonym_key, network, "idempotent-request", request_fingerprint
            )
            await events.lock(uow.conn, network, "idempotency-key", key_digest)
            stored = await events.answer_for_key(
                uow.conn, network_id=network, key_digest=key_digest
            )
            if stored is not None:
                if stored.request_digest != request_digest:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was used for a different request; "
                        "use a new key for a new report"
                    )
                return Answer(stored.status, stored.body, replayed=True)
        accepted = await report_adverse_event(
            uow, pseudonym_key=pseudonym_key, reporter=reporter, report=report
        )
        answer = Answer(201 if accepted.first_report else 200, accepted.as_body())
        if key_digest is not None and request_digest is not None:
            await events.remember_answer(
                uow.conn,
                network_id=network,
                key_digest=key_digest,
                answer=StoredAnswer(request_digest, answer.status, answer.body),
            )
    return answer
