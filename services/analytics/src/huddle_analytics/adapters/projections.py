"""SQL of the anonymised projections: each event folds into its rows, whatever order they arrive in.

Topics are not ordered with respect to one another (a PeerMatched may be read before its
SupportRequested), so every write is an upsert that keeps the earliest time and the latest status.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
from huddle_contracts.events import (
    AdverseEventReported,
    CaseClosed,
    CertificationLapsed,
    MatchEscalated,
    OfferMade,
    PeerCertified,
    PeerMatched,
    ReferralMade,
    SessionCompleted,
    SupportRequested,
    SupportWithdrawn,
)
from huddle_contracts.vocabulary import Mode, ProgrammeRecordKind

_ENSURE_CASE = """
    INSERT INTO support_case (network_id, case_id, hospital_id)
    VALUES ($1, $2, $3) ON CONFLICT (network_id, case_id) DO NOTHING"""


async def _ensure_case(
    conn: asyncpg.Connection, network: str, case_id: UUID, hospital: str
) -> None:
    await conn.execute(_ENSURE_CASE, network, case_id, hospital)


async def _update_case(
    conn: asyncpg.Connection, hospital: str, update: str, network: str, case_id: UUID, *args: object
) -> None:
    """``update`` (its $1 and $2 the case's network and id) on the case's row, created first
    when this is the first of the case's events to arrive (one statement when it is not)."""
    if await conn.execute(update, network, case_id, *args) == "UPDATE 0":
        await _ensure_case(conn, network, case_id, hospital)
        await conn.execute(update, network, case_id, *args)


async def add_record(
    conn: asyncpg.Connection,
    *,
    network: str,
    kind: ProgrammeRecordKind,
    occurred_at: datetime,
    hospital: str,
    unit_key: str,
    case_id: UUID | None = None,
    peer: str | None = None,
    mode: str | None = None,
    tier: int | None = None,
    referral: str | None = None,
    harm_level: str | None = None,
    involved: int | None = None,
) -> None:
    """Stage one programme record for the analysts' stream (released after its month closes)."""
    await conn.execute(
        """INSERT INTO programme_record (network_id, kind, occurred_at, hospital_id, unit_key,
                case_id, peer, mode, tier, referral, harm_level, involved)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        network,
        kind.value,
        occurred_at,
        hospital,
        unit_key,
        case_id,
        peer,
        mode,
        tier,
        referral,
        harm_level,
        involved,
    )


def case_unit(case_id: UUID) -> str:
    return f"case:{case_id}"


def peer_unit(peer: str) -> str:
    return f"peer:{peer}"


def event_unit(event_id: UUID) -> str:
    return f"event:{event_id}"


def group_unit(session_id: UUID) -> str:
    return f"group:{session_id}"


async def adverse_event_reported(conn: asyncpg.Connection, e: AdverseEventReported) -> None:
    await conn.execute(
        """INSERT INTO adverse_event (network_id, adverse_event_id, hospital_id, reported_at,
                event_class, harm_level, categories, involved, outreach_triggered)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (network_id, adverse_event_id) DO NOTHING""",
        e.network_id,
        e.adverse_event_id,
        e.hospital_id,
        e.reported_at,
        e.event_class.value,
        e.harm_level.value,
        [c.value for c in e.categories],
        len(e.involved),
        e.outreach_triggered,
    )


async def support_requested(conn: asyncpg.Connection, e: SupportRequested) -> None:
    await conn.execute(
        """INSERT INTO support_case (network_id, case_id, hospital_id, discipline, clinical_area,
                origin, urgency, adverse_event_id, requested_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (network_id, case_id) DO UPDATE SET
                hospital_id = EXCLUDED.hospital_id, discipline = EXCLUDED.discipline,
                clinical_area = EXCLUDED.clinical_area, origin = EXCLUDED.origin,
                urgency = EXCLUDED.urgency, adverse_event_id = EXCLUDED.adverse_event_id,
                requested_at = EXCLUDED.requested_at""",
        e.network_id,
        e.case_id,
        e.hospital_id,
        e.discipline.value,
        e.clinical_area,
        e.origin.value,
        e.urgency.value,
        e.adverse_event_id,
        e.requested_at,
    )


async def offer_made(conn: asyncpg.Connection, e: OfferMade) -> None:
    await _update_case(
        conn,
        e.hospital_id,
        """UPDATE support_case SET offers = offers + 1,
                first_offered_at = LEAST(first_offered_at, $3)
            WHERE network_id = $1 AND case_id = $2""",
        e.network_id,
        e.case_id,
        e.offered_at,
    )


async def peer_matched(conn: asyncpg.Connection, e: PeerMatched) -> None:
    await _update_case(
        conn,
        e.hospital_id,
        """UPDATE support_case SET matched_at = $3, peer = $4, mode = $5,
                respond_by = coalesce($6, respond_by),
                tier = GREATEST(tier, $7), first_offered_at = LEAST(first_offered_at, $8)
            WHERE network_id = $1 AND case_id = $2""",
        e.network_id,
        e.case_id,
        e.matched_at,
        e.peer,
        e.mode.value,
        e.respond_by,
        int(e.tier),
        e.first_offered_at,
    )


async def match_escalated(conn: asyncpg.Connection, e: MatchEscalated) -> None:
    await _update_case(
        conn,
        e.hospital_id,
        """UPDATE support_case SET escalated_at = LEAST(escalated_at, $3),
                respond_by = coalesce(respond_by, $4)
            WHERE network_id = $1 AND case_id = $2""",
        e.network_id,
        e.case_id,
        e.escalated_at,
        e.respond_by,
    )


async def support_withdrawn(conn: asyncpg.Connection, e: SupportWithdrawn) -> None:
    await _update_case(
        conn,
        e.hospital_id,
        """UPDATE support_case SET withdrawn_at = LEAST(withdrawn_at, $3)
            WHERE network_id = $1 AND case_id = $2""",
        e.network_id,
        e.case_id,
        e.withdrawn_at,
    )


def is_group(e: SessionCompleted) -> bool:
    # A group session is its own case on the bus (sessions publishes its id as the case id).
    return e.mode is Mode.GROUP or e.case_id == e.session_id


async def session_completed(conn: asyncpg.Connection, e: SessionCompleted) -> bool:
    """Record the session; True when it is the case's first contact (so far)."""
    grouped = is_group(e)
    await conn.execute(
        """INSERT INTO session_record (network_id, session_id, case_id, hospital_id, peer, mode,
                tier, grouped, started_at, duration_minutes, participants, follow_up_planned,
                referral_made)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (network_id, session_id) DO NOTHING""",
        e.network_id,
        e.session_id,
        e.case_id,
        e.hospital_id,
        e.peer,
        e.mode.value,
        int(e.tier),
        grouped,
        e.started_at,
        e.duration_minutes,
        e.participants,
        e.follow_up_planned,
        e.referral_made,
    )
    if grouped:
        return False
    await _ensure_case(conn, e.network_id, e.case_id, e.hospital_id)
    before = await conn.fetchval(
        """SELECT first_contact_at FROM support_case
            WHERE network_id = $1 AND case_id = $2 FOR UPDATE""",
        e.network_id,
        e.case_id,
    )
    await conn.execute(
        """UPDATE support_case SET first_contact_at = LEAST(first_contact_at, $3),
                tier = GREATEST(tier, $4), referral = referral OR $5
            WHERE network_id = $1 AND case_id = $2""",
        e.network_id,
        e.case_id,
        e.started_at,
        int(e.tier),
        e.referral_made,
    )
    if before is not None and e.started_at < before:
        # An earlier session arrived late: the staged first contact moves to it.
        await conn.execute(
            """UPDATE programme_record SET occurred_at = $3
                WHERE network_id = $1 AND case_id = $2 AND kind = 'first_contact'
                  AND released_at IS NULL""",
            e.network_id,
            e.case_id,
            e.started_at,
        )
    return before is None


async def referral_made(conn: asyncpg.Connection, e: ReferralMade) -> None:
    await conn.execute(
        """INSERT INTO referral_record (network_id, referral_id, case_id, hospital_id, made_at,
                urgency, resource, by_peer)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (network_id, referral_id) DO NOTHING""",
        e.network_id,
        e.referral_id,
        e.case_id,
        e.hospital_id,
        e.made_at,
        e.urgency.value,
        e.resource.value,
        e.referred_by is not None,
    )
    await _update_case(
        conn,
        e.hospital_id,
        """UPDATE support_case SET referral = true, tier = 3
            WHERE network_id = $1 AND case_id = $2""",
        e.network_id,
        e.case_id,
    )


async def case_closed(conn: asyncpg.Connection, e: CaseClosed) -> None:
    await _update_case(
        conn,
        e.hospital_id,
        "UPDATE support_case SET closed_at = $3 WHERE network_id = $1 AND case_id = $2",
        e.network_id,
        e.case_id,
        e.closed_at,
    )


async def peer_certified(conn: asyncpg.Connection, e: PeerCertified) -> None:
    await conn.execute(
        """INSERT INTO peer_certification (network_id, peer, hospital_id, discipline,
                clinical_area, certified_at, valid_until)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (network_id, peer) DO UPDATE SET
                hospital_id = EXCLUDED.hospital_id, discipline = EXCLUDED.discipline,
                clinical_area = EXCLUDED.clinical_area, certified_at = EXCLUDED.certified_at,
                valid_until = EXCLUDED.valid_until, lapsed_at = NULL
            WHERE peer_certification.certified_at <= EXCLUDED.certified_at""",
        e.network_id,
        e.peer,
        e.hospital_id,
        e.discipline.value,
        e.clinical_area,
        e.certified_at,
        e.valid_until,
    )
    await conn.execute(
        """INSERT INTO certification_period (network_id, peer, hospital_id, discipline,
                certified_at, valid_until)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (network_id, peer, certified_at) DO NOTHING""",
        e.network_id,
        e.peer,
        e.hospital_id,
        e.discipline.value,
        e.certified_at,
        e.valid_until,
    )


async def certification_lapsed(conn: asyncpg.Connection, e: CertificationLapsed) -> None:
    await conn.execute(
        """UPDATE peer_certification SET lapsed_at = $3
            WHERE network_id = $1 AND peer = $2 AND certified_at <= $3""",
        e.network_id,
        e.peer,
        e.lapsed_at,
    )
    # The certification the lapse ends: the latest one that began before it.
    await conn.execute(
        """UPDATE certification_period SET lapsed_at = $3
            WHERE (network_id, peer, certified_at) = (
                  SELECT network_id, peer, certified_at FROM certification_period
                   WHERE network_id = $1 AND peer = $2 AND certified_at <= $3
                   ORDER BY certified_at DESC LIMIT 1)""",
        e.network_id,
        e.peer,
        e.lapsed_at,
    )
