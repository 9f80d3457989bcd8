"""The peer roster (DOMAIN.md: "Peer supporter", and "only peers whose training is current; a peer
may withdraw at any time"): who is a peer, and what certifying or withdrawing them announces.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from huddle_contracts.events import CertificationLapsed, PeerCertified
from huddle_contracts.vocabulary import Discipline, Gender

from huddle_training.domain.certification import Certification


class PeerStatus(StrEnum):
    REGISTERED = "registered"
    """On the roster, not (yet) certified: never matched."""
    CERTIFIED = "certified"
    """Trained; matched until the certification's ``valid_until``."""
    LAPSED = "lapsed"
    """The certification ran out; a refresher certifies the peer again."""
    WITHDRAWN = "withdrawn"
    """The peer stepped down; never matched again."""


class RosterRuleBroken(ValueError):
    """The change breaks a roster rule; the message says which."""


@dataclass(frozen=True)
class Peer:
    pseudonym: str
    network_id: str
    hospital_id: str
    unit_id: str
    discipline: Discipline
    languages: tuple[str, ...]
    registered_at: datetime
    status: PeerStatus = PeerStatus.REGISTERED
    clinical_area: str | None = None
    gender: Gender | None = None
    """Given by the peer, opt-in, only to meet requesters' opt-in preferences."""
    certified_at: datetime | None = None
    """The newest certification (a first one or a refresher), if any."""
    valid_until: datetime | None = None

    def __post_init__(self) -> None:
        a_peer_offers_support_in_at_least_one_language(self.languages)

    def certify(self, certification: Certification) -> tuple[Peer, PeerCertified]:
        """The peer as certified, and the event that lets matching offer them cases."""
        a_withdrawn_peer_cannot_be_certified(self)
        if (certification.network_id, certification.peer) != (self.network_id, self.pseudonym):
            raise RosterRuleBroken("the certification is for another peer")
        certified = replace(
            self,
            status=PeerStatus.CERTIFIED,
            certified_at=certification.certified_at,
            valid_until=certification.valid_until,
        )
        return certified, PeerCertified(
            network_id=self.network_id,
            hospital_id=self.hospital_id,
            peer=self.pseudonym,
            unit_id=self.unit_id,
            discipline=self.discipline,
            languages=self.languages,
            clinical_area=self.clinical_area,
            gender=self.gender,
            certified_at=certification.certified_at,
            valid_until=certification.valid_until,
        )

    def withdraw(self, at: datetime) -> tuple[Peer, CertificationLapsed | None]:
        """The peer as withdrawn, and the lapse matching must hear of, if it may still offer them.

        Withdrawing twice changes nothing and announces nothing; a peer who was never certified
        (or whose lapse was already announced) is unknown to matching, so there is nothing to stop.
        """
        if self.status is PeerStatus.WITHDRAWN:
            return self, None
        withdrawn = replace(self, status=PeerStatus.WITHDRAWN)
        if self.status is not PeerStatus.CERTIFIED:
            return withdrawn, None
        return withdrawn, CertificationLapsed(
            network_id=self.network_id,
            hospital_id=self.hospital_id,
            peer=self.pseudonym,
            lapsed_at=at,
        )

    def lapse(self, now: datetime) -> tuple[Peer, CertificationLapsed | None]:
        """A certification lapses when its validity ends (DOMAIN.md: refreshers keep it current).

        Only a certified peer whose newest certification has ended lapses, once; matching then
        stops offering them until a refresher is recorded.
        """
        if not a_certification_lapses_when_its_validity_ends(self, now):
            return self, None
        assert self.valid_until is not None
        return replace(self, status=PeerStatus.LAPSED), CertificationLapsed(
            network_id=self.network_id,
            hospital_id=self.hospital_id,
            peer=self.pseudonym,
            lapsed_at=self.valid_until,
        )

    def may_be_matched(self, now: datetime) -> bool:
        return a_withdrawn_peer_is_not_matched(self) and only_peers_whose_training_is_current(
            self, now
        )


def register_peer(
    *,
    pseudonym: str,
    network_id: str,
    hospital_id: str,
    unit_id: str,
    discipline: Discipline,
    languages: Iterable[str],
    registered_at: datetime,
    clinical_area: str | None = None,
    gender: Gender | None = None,
) -> Peer:
    """A new peer on the roster, not yet certified; each language is kept once, in order given."""
    return Peer(
        pseudonym=pseudonym,
        network_id=network_id,
        hospital_id=hospital_id,
        unit_id=unit_id,
        discipline=discipline,
        languages=tuple(dict.fromkeys(languages)),
        registered_at=registered_at,
        clinical_area=clinical_area,
        gender=gender,
    )


def a_peer_offers_support_in_at_least_one_language(languages: tuple[str, ...]) -> None:
    if not languages:
        raise RosterRuleBroken("a peer offers support in at least one language")


def a_withdrawn_peer_cannot_be_certified(peer: Peer) -> None:
    if peer.status is PeerStatus.WITHDRAWN:
        raise RosterRuleBroken(f"peer {peer.pseudonym} has withdrawn and cannot be certified")


def a_withdrawn_peer_is_not_matched(peer: Peer) -> bool:
    return peer.status is not PeerStatus.WITHDRAWN


def only_peers_whose_training_is_current(peer: Peer, now: datetime) -> bool:
    return (
        peer.status is PeerStatus.CERTIFIED
        and peer.valid_until is not None
        and peer.valid_until > now
    )


def a_certification_lapses_when_its_validity_ends(peer: Peer, now: datetime) -> bool:
    return (
        peer.status is PeerStatus.CERTIFIED
        and peer.valid_until is not None
        and peer.valid_until <= now
    )
