"""The certification rule of a network (DOMAIN.md, Training: "Upkeep"): which modules certify a
peer, which renew a certification (the refresher), and for how long a certification is valid.

When a peer has attended every module the rule asks of them, training certifies them by itself:
the first time, every required module; afterwards, every refresher module attended since their
newest certification. The certification dates from the last of those modules and stays valid for
the rule's period (12 calendar months unless configured).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from huddle_training.domain.certification import (
    DEFAULT_VALIDITY_MONTHS,
    Certification,
    certification_valid_until,
)
from huddle_training.domain.roster import Peer, PeerStatus

MAX_VALIDITY_MONTHS = 120


class CertificationRuleBroken(ValueError):
    """The rule itself is not acceptable; the message says why."""


@dataclass(frozen=True)
class CertificationRule:
    required_modules: tuple[str, ...]
    """Every one of them certifies a peer for the first time."""
    refresher_modules: tuple[str, ...] = field(default=())
    """Every one of them, attended again since the newest certification, renews it; by default
    the required modules (completing the course again)."""
    validity_months: int = DEFAULT_VALIDITY_MONTHS

    def __post_init__(self) -> None:
        object.__setattr__(self, "required_modules", tuple(dict.fromkeys(self.required_modules)))
        object.__setattr__(
            self,
            "refresher_modules",
            tuple(dict.fromkeys(self.refresher_modules)) or self.required_modules,
        )
        a_rule_requires_at_least_one_module(self.required_modules)
        validity_is_between_one_month_and_ten_years(self.validity_months)

    def modules_for(self, peer: Peer) -> tuple[str, ...]:
        """What ``peer`` must attend next: the course, or a refresher once certified before."""
        return self.required_modules if peer.certified_at is None else self.refresher_modules

    @property
    def modules(self) -> frozenset[str]:
        return frozenset(self.required_modules) | frozenset(self.refresher_modules)


@dataclass(frozen=True)
class Attendance:
    """A peer attended one module (in any cohort) at ``attended_at``."""

    module: str
    attended_at: datetime


def a_rule_requires_at_least_one_module(modules: tuple[str, ...]) -> None:
    if not modules:
        raise CertificationRuleBroken("a certification rule requires at least one module")


def validity_is_between_one_month_and_ten_years(months: int) -> None:
    if not 1 <= months <= MAX_VALIDITY_MONTHS:
        raise CertificationRuleBroken(
            f"a certification is valid for 1 to {MAX_VALIDITY_MONTHS} months"
        )


def a_rule_names_only_modules_of_the_catalogue(
    rule: CertificationRule, catalogue: Iterable[str]
) -> None:
    unknown = sorted(rule.modules - set(catalogue))
    if unknown:
        raise CertificationRuleBroken(
            "not in your network's course catalogue: " + ", ".join(unknown)
        )


def completing_every_required_module_certifies_the_peer(
    rule: CertificationRule, peer: Peer, attended: Iterable[Attendance]
) -> datetime | None:
    """When ``peer`` completed what the rule asks of them (their last such module), or None.

    Attendance counts towards a refresher only if it follows the newest certification, so that
    the same modules never certify twice; a withdrawn peer is never certified.
    """
    if peer.status is PeerStatus.WITHDRAWN:
        return None
    since = peer.certified_at
    latest: dict[str, datetime] = {}
    for attendance in attended:
        if since is not None and attendance.attended_at <= since:
            continue
        if attendance.module not in latest or attendance.attended_at > latest[attendance.module]:
            latest[attendance.module] = attendance.attended_at
    modules = rule.modules_for(peer)
    if not all(code in latest for code in modules):
        return None
    return max(latest[code] for code in modules)


def automatic_certification(
    rule: CertificationRule,
    peer: Peer,
    attended: Iterable[Attendance],
    *,
    now: datetime,
    certification_id: UUID,
) -> Certification | None:
    """The certification (or refresher) the peer has earned by attending, if any.

    None when modules remain, or when the modules were completed so long ago that the
    certification would already have ended (the peer then needs a refresher, not a record).
    """
    completed = completing_every_required_module_certifies_the_peer(rule, peer, attended)
    if completed is None:
        return None
    valid_until = certification_valid_until(completed, months=rule.validity_months)
    if valid_until <= now:
        return None
    return Certification(
        certification_id=certification_id,
        network_id=peer.network_id,
        peer=peer.pseudonym,
        certified_at=completed,
        valid_until=valid_until,
        recorded_at=now,
    )
