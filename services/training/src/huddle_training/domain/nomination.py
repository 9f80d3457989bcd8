"""Nominations (DOMAIN.md, "Peer supporter": peers are nominated by colleagues or leaders): any
member of staff may put a colleague forward; the colleague consents or refuses themselves; a
coordinator approves (only with that consent) or declines. Approval enrols the nominee on the
roster as a registered, not yet certified, peer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from huddle_contracts.vocabulary import Discipline, Gender

from huddle_training.domain.roster import Peer, register_peer


class NominationStatus(StrEnum):
    PENDING = "pending"
    """Waiting for the nominee's answer."""
    CONSENTED = "consented"
    """The nominee agreed; waiting for a coordinator."""
    REFUSED = "refused"
    """The nominee said no (final; a later nomination may ask again)."""
    APPROVED = "approved"
    """A coordinator approved: the nominee is on the roster."""
    DECLINED = "declined"
    """A coordinator declined (final)."""


OPEN_STATUSES = frozenset({NominationStatus.PENDING, NominationStatus.CONSENTED})


class NominationRuleBroken(ValueError):
    """The change breaks a nomination rule; the message says which."""


@dataclass(frozen=True)
class Nomination:
    nomination_id: UUID
    network_id: str
    hospital_id: str
    unit_id: str
    discipline: Discipline
    nominee: str
    """The nominee's pseudonym (their staff reference is never stored)."""
    nominated_by: str
    """The pseudonym of the colleague or leader who nominated them."""
    nominated_at: datetime
    status: NominationStatus = NominationStatus.PENDING
    clinical_area: str | None = None
    languages: tuple[str, ...] = ()
    """Given by the nominee with their consent: the languages they can offer support in."""
    gender: Gender | None = None
    """Given by the nominee, opt-in, with their consent."""
    answered_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None

    def __post_init__(self) -> None:
        a_colleague_is_nominated_not_oneself(self.nominee, self.nominated_by)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def consent(
        self, *, by: str, languages: Iterable[str], gender: Gender | None, at: datetime
    ) -> Nomination:
        """The nominee agrees (again, to correct their languages, while no one has decided)."""
        only_the_nominee_answers_a_nomination(self, by)
        the_nominee_answers_while_no_one_has_decided(self)
        given = tuple(dict.fromkeys(languages))
        if not given:
            raise NominationRuleBroken("a peer offers support in at least one language")
        return replace(
            self, status=NominationStatus.CONSENTED, languages=given, gender=gender, answered_at=at
        )

    def refuse(self, *, by: str, at: datetime) -> Nomination:
        """The nominee says no, also after consenting, until a coordinator has decided."""
        only_the_nominee_answers_a_nomination(self, by)
        the_nominee_answers_while_no_one_has_decided(self)
        return replace(
            self, status=NominationStatus.REFUSED, languages=(), gender=None, answered_at=at
        )

    def approve(self, *, by: str, at: datetime) -> tuple[Nomination, Peer]:
        """Approved, and the peer it puts on the roster (registered, not yet certified)."""
        nomination_needs_the_nominees_consent_before_approval(self)
        no_one_decides_on_their_own_nomination(self, by)
        peer = register_peer(
            pseudonym=self.nominee,
            network_id=self.network_id,
            hospital_id=self.hospital_id,
            unit_id=self.unit_id,
            discipline=self.discipline,
            languages=self.languages,
            clinical_area=self.clinical_area,
            gender=self.gender,
            registered_at=at,
        )
        approved = replace(self, status=NominationStatus.APPROVED, decided_by=by, decided_at=at)
        return approved, peer

    def decline(self, *, by: str, at: datetime) -> Nomination:
        a_decided_nomination_is_final(self)
        no_one_decides_on_their_own_nomination(self, by)
        if self.status is NominationStatus.REFUSED:
            raise NominationRuleBroken("the nominee has refused; there is nothing to decline")
        return replace(self, status=NominationStatus.DECLINED, decided_by=by, decided_at=at)


def nominate(
    *,
    nomination_id: UUID,
    network_id: str,
    hospital_id: str,
    unit_id: str,
    discipline: Discipline,
    nominee: str,
    nominated_by: str,
    nominated_at: datetime,
    clinical_area: str | None = None,
) -> Nomination:
    """A new nomination, waiting for the nominee's answer."""
    return Nomination(
        nomination_id=nomination_id,
        network_id=network_id,
        hospital_id=hospital_id,
        unit_id=unit_id,
        discipline=discipline,
        nominee=nominee,
        nominated_by=nominated_by,
        nominated_at=nominated_at,
        clinical_area=clinical_area,
    )


def a_colleague_is_nominated_not_oneself(nominee: str, nominated_by: str) -> None:
    if nominee == nominated_by:
        raise NominationRuleBroken(
            "a nomination puts a colleague forward; ask a coordinator to register you instead"
        )


def only_the_nominee_answers_a_nomination(nomination: Nomination, by: str) -> None:
    if by != nomination.nominee:
        raise NominationRuleBroken("only the nominee can consent to or refuse a nomination")


def the_nominee_answers_while_no_one_has_decided(nomination: Nomination) -> None:
    a_decided_nomination_is_final(nomination)
    if nomination.status is NominationStatus.REFUSED:
        raise NominationRuleBroken("the nomination was refused; a new nomination can ask again")


def nomination_needs_the_nominees_consent_before_approval(nomination: Nomination) -> None:
    a_decided_nomination_is_final(nomination)
    if nomination.status is not NominationStatus.CONSENTED:
        raise NominationRuleBroken(
            "the nominee has not consented"
            + (" (they refused)" if nomination.status is NominationStatus.REFUSED else "")
            + ": a nomination is approved only with the nominee's consent"
        )


def a_decided_nomination_is_final(nomination: Nomination) -> None:
    if nomination.status in (NominationStatus.APPROVED, NominationStatus.DECLINED):
        raise NominationRuleBroken(f"the nomination was already {nomination.status.value}")


def no_one_decides_on_their_own_nomination(nomination: Nomination, by: str) -> None:
    if by == nomination.nominee:
        raise NominationRuleBroken("another coordinator decides on your own nomination")
