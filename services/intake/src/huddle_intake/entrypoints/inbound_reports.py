"""The inbound topic: incident systems that prefer the bus publish their reports to
``huddle.inbound.adverse-events.v1``; intake applies the very use case HTTP does.

The consumer's inbox makes each CloudEvent count once; the reporter event id's digest makes a
report re-sent under a new CloudEvent id count once too. A report that can never be accepted
raises PermanentFailure, whose reason (naming no value) goes with it to the dead-letter topic.
"""

from __future__ import annotations

import re

from huddle_contracts.cloudevents import CloudEvent
from huddle_runtime.consumer import PermanentFailure
from huddle_runtime.unit_of_work import UnitOfWork
from pydantic import SecretStr

from huddle_intake.adapters.report_formats import read_report
from huddle_intake.application.adverse_events import Reporter, report_adverse_event
from huddle_intake.domain.adverse_event_report import ReportRefused

INBOUND_ADVERSE_EVENT = "huddle.inbound.adverse_event.v1"
HOSPITAL_EXTENSION = "hospital"
"""Optional CloudEvents extension (header ``ce_hospital``): the hospital the reporter is bound to,
as a hospital-bound token is over HTTP."""
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class InboundReports:
    """The raw handler of the inbound topic, bound to the service's pseudonym key at start."""

    def __init__(self) -> None:
        self._pseudonym_key: SecretStr | None = None

    def bind(self, pseudonym_key: SecretStr) -> None:
        self._pseudonym_key = pseudonym_key

    async def __call__(self, uow: UnitOfWork, cloud_event: CloudEvent) -> None:
        if self._pseudonym_key is None or uow.tenant is None:
            raise RuntimeError("the inbound report handler is not bound to the service")
        hospital = cloud_event.extensions.get(HOSPITAL_EXTENSION)
        if hospital is not None and not _SLUG.fullmatch(hospital):
            raise PermanentFailure("the ce_hospital extension must be a hospital id (a slug)")
        try:
            report = read_report(cloud_event.data, cloud_event.datacontenttype)
            reporter = Reporter.known_as(
                self._pseudonym_key,
                network_id=uow.tenant.network_id,
                hospital_id=hospital,
                identity=cloud_event.source,
            )
            await report_adverse_event(
                uow, pseudonym_key=self._pseudonym_key, reporter=reporter, report=report
            )
        except ReportRefused as exc:
            raise PermanentFailure(f"adverse-event report refused: {exc}") from None


INBOUND_REPORTS = InboundReports()
