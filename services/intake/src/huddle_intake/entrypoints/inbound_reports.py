"""The inbound topic: incident systems that prefer the bus publish their reports to
``huddle.inbound.adverse-events.v1``; intake applies the very use case HTTP does.

The consumer's inbox makes each CloudEvent count once; the reporter event id's digest makes a
report re-sent under a new CloudEvent id count once too. A report that can never be accepted
raises PermanentFailure, whose reason (naming no value) goes with it to the dead-letter topic.
A batch's run of reports is taken in at once, in a fixed number of round trips (goal #5, the
back-fill); the others of the run are not held back by a refused one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from huddle_contracts.cloudevents import CloudEvent
from huddle_runtime.consumer import Inbound, PermanentFailure
from huddle_runtime.unit_of_work import UnitOfWork
from pydantic import SecretStr

from huddle_intake.adapters.report_formats import read_report
from huddle_intake.application.adverse_events import (
    IncomingReport,
    Reporter,
    report_adverse_events,
)
from huddle_intake.domain.adverse_event_report import ReportRefused

INBOUND_ADVERSE_EVENT = "huddle.inbound.adverse_event.v1"
HOSPITAL_EXTENSION = "hospital"
"""Optional CloudEvents extension (header ``ce_hospital``): the hospital the reporter is bound to,
as a hospital-bound token is over HTTP."""
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class InboundReports:
    """The raw handler of the inbound topic, bound to the service's pseudonym key at start; it
    takes a batch's run of reports at once (``batch``), or one alone."""

    def __init__(self) -> None:
        self._pseudonym_key: SecretStr | None = None

    def bind(self, pseudonym_key: SecretStr) -> None:
        self._pseudonym_key = pseudonym_key

    async def __call__(self, uow: UnitOfWork, cloud_event: CloudEvent) -> None:
        [refused] = await self.batch([Inbound(uow, cloud_event)])
        if refused is not None:
            raise refused

    async def batch(self, records: Sequence[Inbound]) -> list[PermanentFailure | None]:
        key = self._pseudonym_key
        if key is None or any(r.uow.tenant is None for r in records):
            raise RuntimeError("the inbound report handler is not bound to the service")
        refusals: list[PermanentFailure | None] = [None] * len(records)
        readable: list[int] = []
        reports: list[IncomingReport] = []
        reporters: dict[tuple[str, str | None, str], Reporter] = {}  # a run has one or a few
        for i, record in enumerate(records):
            try:
                reports.append(_incoming(key, record, reporters))
                readable.append(i)
            except (ReportRefused, PermanentFailure) as exc:
                refusals[i] = _refusal(exc)
        results = await report_adverse_events(pseudonym_key=key, reports=reports)
        for i, result in zip(readable, results, strict=True):
            if isinstance(result, ReportRefused):
                refusals[i] = _refusal(result)
        return refusals


def _incoming(
    pseudonym_key: SecretStr,
    record: Inbound,
    reporters: dict[tuple[str, str | None, str], Reporter],
) -> IncomingReport:
    uow, cloud_event = record.uow, record.cloud_event
    assert uow.tenant is not None
    hospital = cloud_event.extensions.get(HOSPITAL_EXTENSION)
    if hospital is not None and not _SLUG.fullmatch(hospital):
        raise PermanentFailure("the ce_hospital extension must be a hospital id (a slug)")
    report = read_report(cloud_event.data, cloud_event.datacontenttype)
    known = (uow.tenant.network_id, hospital, cloud_event.source)
    reporter = reporters.get(known)
    if reporter is None:
        reporter = reporters[known] = Reporter.known_as(
            pseudonym_key, network_id=known[0], hospital_id=hospital, identity=known[2]
        )
    return IncomingReport(uow, reporter, report)


def _refusal(exc: ReportRefused | PermanentFailure) -> PermanentFailure:
    if isinstance(exc, PermanentFailure):
        return exc
    return PermanentFailure(f"adverse-event report refused: {exc}")


INBOUND_REPORTS = InboundReports()
