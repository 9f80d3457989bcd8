"""An adverse event as an incident-reporting system reports it, once its format is read.

Only what peer support needs survives the edge: no patient, no narrative, no clinical detail.
The staff identifiers held here live in memory only; they are turned into pseudonyms and never
stored, logged or published (``repr`` hides them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from huddle_contracts.vocabulary import Discipline, EventClass, HarmCategory, HarmLevel

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

# A reporter's reference or staff number longer than this is not an identifier but text.
MAX_REFERENCE_LENGTH = 128
# A report naming more people than any real event involves is a mistake, not a surge.
MAX_INVOLVED_STAFF = 500


class ReportRefused(ValueError):
    """The report cannot be accepted; the message names the problem, never a value."""


class ReportOutOfScope(ReportRefused):
    """The report is for a hospital the reporter may not report for."""


class UnsupportedFormat(ReportRefused):
    """The report comes in a media type (or FHIR version) intake does not read."""


@dataclass(frozen=True)
class InvolvedStaffRef:
    """A member of staff named by a report, before the directory resolves them."""

    staff_refs: tuple[str, ...] = field(repr=False)
    """Their identifiers (employee number, NPI, the reporter's id…), the preferred first; the
    first one the directory knows is theirs."""
    discipline_hint: Discipline | None = None
    """What the report says of their discipline; the directory's word wins."""
    manager_ref: str | None = field(default=None, repr=False)
    """Their manager's identifier, to place them if the directory does not know them."""

    def __post_init__(self) -> None:
        if not self.staff_refs:
            raise ReportRefused("an involved member of staff must have an identifier")
        for ref in (*self.staff_refs, *((self.manager_ref,) if self.manager_ref else ())):
            if not ref.strip() or len(ref) > MAX_REFERENCE_LENGTH:
                raise ReportRefused(
                    f"a staff identifier must be 1 to {MAX_REFERENCE_LENGTH} characters"
                )


@dataclass(frozen=True)
class AdverseEventReport:
    """One report, whatever its format (Huddle's JSON, FHIR R4 or R5), normalised."""

    reporter_event_id: str = field(repr=False)
    """The reporting system's own reference; kept only as a keyed digest, to spot a re-send."""
    hospital_id: str | None
    """The hospital, when the report says; otherwise the reporter's (its token or envelope)."""
    unit_ids: tuple[str, ...]
    """Where the event happened, the first being where unknown staff are offered support."""
    event_class: EventClass
    harm_level: HarmLevel
    categories: tuple[HarmCategory, ...]
    occurred_at: datetime
    involved: tuple[InvolvedStaffRef, ...]

    def __post_init__(self) -> None:
        if not self.reporter_event_id.strip():
            raise ReportRefused("the report must carry the reporting system's event id")
        if len(self.reporter_event_id) > MAX_REFERENCE_LENGTH:
            raise ReportRefused(
                f"the reporting system's event id is at most {MAX_REFERENCE_LENGTH} characters"
            )
        if self.hospital_id is not None and not _SLUG.fullmatch(self.hospital_id):
            raise ReportRefused("the hospital id must be a slug (a-z, 0-9, hyphens)")
        if not self.unit_ids:
            raise ReportRefused("the report must name the unit where the event happened")
        if not all(_SLUG.fullmatch(unit) for unit in self.unit_ids):
            raise ReportRefused("unit ids must be slugs (a-z, 0-9, hyphens)")
        if self.occurred_at.tzinfo is None:
            raise ReportRefused("the time of the event must carry a time zone")
        if len(self.involved) > MAX_INVOLVED_STAFF:
            raise ReportRefused(f"a report names at most {MAX_INVOLVED_STAFF} staff")

    @property
    def event_unit(self) -> str:
        return self.unit_ids[0]

    def for_hospital(self, hospital_id: str) -> AdverseEventReport:
        return replace(self, hospital_id=hospital_id)


def reporting_hospital(*, declared: str | None, reporter_hospital: str | None) -> str:
    """The hospital a report is for: as declared, else the reporter's own; never another's.

    A reporter bound to one hospital (its token or envelope says which) reports for it only.
    """
    if declared is not None and reporter_hospital is not None and declared != reporter_hospital:
        raise ReportOutOfScope("the report is for another hospital than the reporter's")
    hospital = declared or reporter_hospital
    if hospital is None:
        raise ReportRefused(
            "the report must name its hospital when the reporter is not bound to one"
        )
    return hospital
