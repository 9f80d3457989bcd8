"""Matching's PostgreSQL tables (row-level security scopes every query to the tenant)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
from huddle_contracts.events import MatchPreferences, PeerCertified, SupportRequested
from huddle_contracts.vocabulary import Discipline, Gender, Mode, Urgency
from huddle_runtime.unit_of_work import transaction

from huddle_matching.domain.matching_policy import MatchingPolicy
from huddle_matching.domain.response_times import HospitalCalendar, ResponsePolicy
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.selection import Tier
from huddle_matching.domain.support_need import SupportNeed


@dataclass(frozen=True)
class Search:
    """Where the search for a peer stands for one case."""

    need: SupportNeed
    status: str
    scope: str
    first_contact_by: datetime | None
    first_offered_at: datetime | None
    matched_peer: str | None


async def record_support_request(
    conn: asyncpg.Connection,
    event: SupportRequested,
    *,
    first_contact_by: datetime,
    status: str = "searching",
) -> Search:
    """The new search, as recorded (no other transaction sees its row until this one commits)."""
    # No ON CONFLICT: the inbox guarantees one delivery; a second insert would be a bug to see.
    row = await conn.fetchrow(
        """INSERT INTO support_request (case_id, network_id, hospital_id, unit_id, requester,
               discipline, origin, urgency, preferred_mode, preferences, adverse_event_id,
               requested_at, clinical_area, reporting_line, involved, status, first_contact_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, $14, $15, $16,
                   $17)
           RETURNING *""",
        event.case_id,
        event.network_id,
        event.hospital_id,
        event.unit_id,
        event.requester,
        event.discipline.value,
        event.origin.value,
        event.urgency.value,
        event.preferred_mode.value if event.preferred_mode else None,
        event.preferences.model_dump_json(exclude_none=True),
        event.adverse_event_id,
        event.requested_at,
        event.clinical_area,
        list(event.reporting_line),
        list(event.involved),
        status,
        first_contact_by,
    )
    return _search(row)


async def get_search(
    conn: asyncpg.Connection, case_id: UUID, *, lock: bool = False
) -> Search | None:
    row = await conn.fetchrow(
        "SELECT * FROM support_request WHERE case_id = $1" + (" FOR UPDATE" if lock else ""),
        case_id,
    )
    return _search(row) if row else None


async def lock_search_of_offer(conn: asyncpg.Connection, offer_id: UUID) -> Search | None:
    """The search an offer belongs to, locked; found through the offer in the same statement."""
    row = await conn.fetchrow(
        "SELECT * FROM support_request"
        " WHERE case_id = (SELECT case_id FROM offer WHERE offer_id = $1) FOR UPDATE",
        offer_id,
    )
    return _search(row) if row else None


async def searches_for_event(
    conn: asyncpg.Connection, adverse_event_id: UUID, *, status: str
) -> list[Search]:
    rows = await conn.fetch(
        "SELECT * FROM support_request WHERE adverse_event_id = $1 AND status = $2"
        " ORDER BY requested_at, case_id FOR UPDATE",
        adverse_event_id,
        status,
    )
    return [_search(r) for r in rows]


async def update_search(conn: asyncpg.Connection, case_id: UUID, **changes: object) -> None:
    await update_searches(conn, [case_id], **changes)


async def update_searches(
    conn: asyncpg.Connection, case_ids: Sequence[UUID], **changes: object
) -> None:
    """The same change to every search named, in one statement."""
    columns = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
    await conn.execute(
        f"UPDATE support_request SET {columns}, updated_at = clock_timestamp()"
        " WHERE case_id = ANY($1::uuid[])",
        list(case_ids),
        *changes.values(),
    )


async def mark_offered(conn: asyncpg.Connection, case_ids: Sequence[UUID], now: datetime) -> None:
    await conn.execute(
        """UPDATE support_request SET status = 'offered',
                  first_offered_at = coalesce(first_offered_at, $2), updated_at = clock_timestamp()
            WHERE case_id = ANY($1::uuid[])""",
        list(case_ids),
        now,
    )


def _search(row: asyncpg.Record) -> Search:
    need = SupportNeed(
        case_id=row["case_id"],
        network_id=row["network_id"],
        hospital_id=row["hospital_id"],
        unit_id=row["unit_id"],
        requester=row["requester"],
        discipline=Discipline(row["discipline"]),
        urgency=Urgency(row["urgency"]),
        requested_at=row["requested_at"],
        preferences=MatchPreferences(**json.loads(row["preferences"])),
        preferred_mode=Mode(row["preferred_mode"]) if row["preferred_mode"] else None,
        clinical_area=row["clinical_area"],
        adverse_event_id=row["adverse_event_id"],
        involved=frozenset(row["involved"]),
        reporting_line=frozenset(row["reporting_line"]),
    )
    return Search(
        need=need,
        status=row["status"],
        scope=row["scope"],
        first_contact_by=row["first_contact_by"],
        first_offered_at=row["first_offered_at"],
        matched_peer=row["matched_peer"],
    )


# -- roster ---------------------------------------------------------------------------------


async def upsert_peer(conn: asyncpg.Connection, event: PeerCertified, *, capacity: int) -> None:
    await conn.execute(
        """INSERT INTO peer (network_id, pseudonym, hospital_id, unit_id, discipline, clinical_area,
                             languages, gender, certified_until, capacity)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (network_id, pseudonym) DO UPDATE SET
               hospital_id = EXCLUDED.hospital_id, unit_id = EXCLUDED.unit_id,
               discipline = EXCLUDED.discipline, clinical_area = EXCLUDED.clinical_area,
               languages = EXCLUDED.languages, gender = EXCLUDED.gender,
               certified_until = EXCLUDED.certified_until""",
        event.network_id,
        event.peer,
        event.hospital_id,
        event.unit_id,
        event.discipline.value,
        event.clinical_area,
        list(event.languages),
        event.gender.value if event.gender else None,
        event.valid_until,
        capacity,
    )


async def end_certification(conn: asyncpg.Connection, peer: str, lapsed_at: datetime) -> None:
    await conn.execute(
        "UPDATE peer SET certified_until = LEAST(certified_until, $2) WHERE pseudonym = $1",
        peer,
        lapsed_at,
    )


_ROSTER = """SELECT p.*, EXISTS (SELECT 1 FROM on_call_shift s
                              WHERE s.peer = p.pseudonym AND s.hospital_id = p.hospital_id
                                AND s.starts_at <= $1 AND s.ends_at > $1) AS on_call,
                (SELECT count(*) FROM offer o
                  WHERE o.peer = p.pseudonym AND o.status = 'open') AS pending_offers
           FROM peer p"""


async def roster(
    conn: asyncpg.Connection, now: datetime, *, hospital_id: str | None = None
) -> list[Peer]:
    """Every peer of the tenant's network (or of one hospital), with whether they are on call
    at ``now``."""
    if hospital_id is None:
        rows = await conn.fetch(_ROSTER + " ORDER BY p.pseudonym", now)
    else:
        rows = await conn.fetch(
            _ROSTER + " WHERE p.hospital_id = $2 ORDER BY p.pseudonym", now, hospital_id
        )
    return [_peer(r) for r in rows]


# Every hard rule, applied where the rows are (the domain still checks each on what comes back).
# Each peer's running shift and open offers are probed through their own index (a LATERAL, so
# the planner never hashes the whole rota instead).
_ELIGIBLE = """
    SELECT {distinct} p.*, shift.on_call IS NOT NULL AS on_call, load.pending_offers
      FROM peer p
      LEFT JOIN LATERAL (SELECT true AS on_call FROM on_call_shift s
                          WHERE s.peer = p.pseudonym AND s.hospital_id = p.hospital_id
                            AND s.starts_at <= $1 AND s.ends_at > $1 LIMIT 1) shift ON true
     CROSS JOIN LATERAL (SELECT count(*) AS pending_offers FROM offer o
                          WHERE o.peer = p.pseudonym AND o.status = 'open') load
     WHERE p.network_id = $2
       AND p.certified_until > $1
       AND NOT p.paused
       AND p.active_cases < p.capacity
       AND ($3 OR shift.on_call)
       AND p.capacity - p.active_cases - load.pending_offers > 0
       AND p.pseudonym <> ALL($4::text[]) {scope}"""
# Fair rotation's order (``selection.leaders``): never matched first, then longest since the last
# match, then pseudonym ("C": compared as Python compares strings).
_WAITED = 'p.last_matched_at NULLS FIRST, p.pseudonym COLLATE "C"'
# In one hospital, the first eligible peer of each group (discipline, active cases, each wish met
# or not), read in the order of peer_by_area_and_wait (the request's clinical area) or
# peer_by_wait (any other area, or any at all when the request names none): within a group only
# fair rotation tells peers apart, so each read stops at its first eligible row. The groups'
# filters are subqueries so that the plan's estimated cost is the same whatever the request:
# PostgreSQL then keeps one generic plan instead of planning each request anew.
_FIRST_OF_EACH_GROUP = """
    SELECT first.*
      FROM (VALUES {disciplines}) AS g(discipline)
     CROSS JOIN LATERAL generate_series(0, (
               SELECT max(q.active_cases) FROM peer q
                WHERE q.network_id = $2 AND q.hospital_id = $7
                  AND q.discipline = g.discipline)) AS k(active_cases)
     CROSS JOIN (VALUES {wishes}) AS w(language, gender, own_unit)
     CROSS JOIN LATERAL ({eligible}) first
     WHERE (SELECT $5::bool IS NULL OR (g.discipline = $6) = $5)
       AND (SELECT NOT w.language OR $8 IS NOT NULL)
       AND (SELECT NOT w.gender OR $9 IS NOT NULL)
       AND (SELECT NOT w.own_unit OR $11)"""
_GROUP = """
       AND p.hospital_id = $7 AND p.discipline = g.discipline
       AND p.active_cases = k.active_cases AND {area}
       AND coalesce($8 = ANY(p.languages), false) = w.language
       AND coalesce(p.gender = $9, false) = w.gender
       AND coalesce(p.unit_id = $10, false) = w.own_unit
     ORDER BY {waited} LIMIT 1"""
# By whether the peers share the request's clinical area (one text each, so one plan each).
_FIRST_OF_EACH_GROUP_BY_AREA = {
    same_area: _FIRST_OF_EACH_GROUP.format(
        disciplines=", ".join(f"('{d.value}')" for d in Discipline),
        wishes=", ".join(str(m).lower() for m in itertools.product((True, False), repeat=3)),
        eligible=_ELIGIBLE.format(
            distinct="",
            scope=_GROUP.format(
                area="p.clinical_area = $12"
                if same_area
                else "NOT coalesce(p.clinical_area = $12, false)",
                waited=_WAITED,
            ),
        ),
    )
    for same_area in (True, False)
}


async def candidates(
    conn: asyncpg.Connection,
    now: datetime,
    need: SupportNeed,
    *,
    hospital_id: str | None,
    tier: Tier | None = None,
    skip: frozenset[str] = frozenset(),
    leaders: bool = False,
) -> list[Peer]:
    """The peers who could be offered ``need`` (of one hospital or the whole network, of one
    tier or all), found through indexes. With ``leaders``, only those who could be the best:
    a superset of ``selection.leaders`` (the first of each standing)."""
    never = list(skip | need.involved | need.reporting_line | {need.requester})
    args: list[object] = [now, need.network_id, need.urgency is Urgency.ROUTINE, never]
    wishes = need.preferences
    if leaders and hospital_id is not None:
        area = tier.same_clinical_area if tier is not None else None
        # Any area of a request that names one: both halves, so the groups split by area met.
        halves = (True, False) if area is None and need.clinical_area else (area is True,)
        # A wish not made is unmet by everyone; so is the own unit when not asked for (a hard
        # rule: every peer of it is left out).
        args += [
            tier.same_discipline if tier is not None else None,
            need.discipline.value,
            hospital_id,
            wishes.language or None,
            wishes.gender.value if wishes.gender else None,
            need.unit_id if hospital_id == need.hospital_id else None,
            wishes.own_unit is True,
            need.clinical_area or None,
        ]
        return [
            _peer(r)
            for same_area in halves
            for r in await conn.fetch(_FIRST_OF_EACH_GROUP_BY_AREA[same_area], *args)
        ]

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    scope = []
    if wishes.own_unit is not True:
        h, u = arg(need.hospital_id), arg(need.unit_id)
        scope.append(f"NOT (p.hospital_id = {h} AND p.unit_id = {u})")
    if hospital_id is not None:
        scope.append(f"p.hospital_id = {arg(hospital_id)}")
    if tier is not None:
        same = "=" if tier.same_discipline else "<>"
        scope.append(f"p.discipline {same} {arg(need.discipline.value)}")
        if tier.same_clinical_area is not None:
            same = "=" if tier.same_clinical_area else "IS DISTINCT FROM"
            scope.append(f"p.clinical_area {same} {arg(need.clinical_area)}")
    distinct = order = ""
    if leaders:  # the whole network: the first of each standing, by sorting
        standing = ", ".join(_standing(need, arg))
        distinct, order = f"DISTINCT ON ({standing})", f" ORDER BY {standing}, {_WAITED}"
    sql = _ELIGIBLE.format(distinct=distinct, scope="".join(f" AND {c}" for c in scope)) + order
    return [_peer(r) for r in await conn.fetch(sql, *args)]


def _standing(need: SupportNeed, arg: Callable[[object], str]) -> list[str]:
    """``selection.standing`` in SQL (a wish not made is unmet by everyone, so left out)."""
    wishes = need.preferences
    terms = [f"p.discipline = {arg(need.discipline.value)}"]
    if need.clinical_area:
        terms.append(f"p.clinical_area IS NOT DISTINCT FROM {arg(need.clinical_area)}")
    terms.append(f"p.hospital_id = {arg(need.hospital_id)}")
    if wishes.language:
        terms.append(f"coalesce({arg(wishes.language)} = ANY(p.languages), false)")
    if wishes.gender:
        terms.append(f"coalesce(p.gender = {arg(wishes.gender.value)}, false)")
    if wishes.own_unit:
        h, u = arg(need.hospital_id), arg(need.unit_id)
        terms.append(f"(p.unit_id = {u} AND p.hospital_id = {h})")
    return [*terms, "p.active_cases"]


async def hold_peers(
    conn: asyncpg.Connection,
    now: datetime,
    *,
    pseudonyms: Sequence[str] | None = None,
    hospital_id: str | None = None,
) -> list[Peer]:
    """Lock the peers' rows, then read them afresh: offers another search committed meanwhile
    count as their load. By name, only the peers free to lock come back; a whole hospital is
    waited for, in one order."""
    if pseudonyms is not None:
        # SKIP LOCKED: a peer another transaction is offering or matching right now is left out,
        # never waited for, so holders never wait on each other in a cycle (a consumer's batch
        # holds several peers at once, and batches of different partitions run side by side).
        held = await conn.fetch(
            "SELECT pseudonym FROM peer WHERE pseudonym = ANY($1::text[])"
            " ORDER BY pseudonym FOR UPDATE SKIP LOCKED",
            sorted(set(pseudonyms)),
        )
        return await _read_afresh(conn, now, [r["pseudonym"] for r in held])
    await conn.execute(
        "SELECT 1 FROM peer WHERE hospital_id = $1 ORDER BY pseudonym FOR UPDATE", hospital_id
    )
    return await roster(conn, now, hospital_id=hospital_id)


async def wait_for_peer(
    conn: asyncpg.Connection, now: datetime, pseudonym: str, *, wait_ms: int
) -> list[Peer]:
    """Lock a peer another transaction holds (offering them a case right now), waiting at most
    ``wait_ms``, then read them afresh (that offer counted). A hold longer than that (a large
    batch) leaves them out, as ``hold_peers`` does: holders never wait on each other for long."""
    before = await conn.fetchval("SELECT current_setting('lock_timeout')")
    try:
        async with transaction(conn):  # a savepoint: a lock timeout undoes only this
            await conn.execute("SELECT set_config('lock_timeout', $1, true)", f"{wait_ms}ms")
            await conn.execute("SELECT 1 FROM peer WHERE pseudonym = $1 FOR UPDATE", pseudonym)
            await conn.execute("SELECT set_config('lock_timeout', $1, true)", before)
    except asyncpg.LockNotAvailableError:
        return []
    return await _read_afresh(conn, now, [pseudonym])


async def _read_afresh(
    conn: asyncpg.Connection, now: datetime, pseudonyms: list[str]
) -> list[Peer]:
    """Peers just locked, read by a new statement, so a new snapshot: it sees what committed
    before they were held (another search's offer among it)."""
    rows = await conn.fetch(_ROSTER + " WHERE p.pseudonym = ANY($2::text[])", now, pseudonyms)
    return [_peer(r) for r in rows]


async def get_peer(conn: asyncpg.Connection, pseudonym: str, now: datetime) -> Peer | None:
    row = await conn.fetchrow(_ROSTER + " WHERE p.pseudonym = $2", now, pseudonym)
    return _peer(row) if row else None


def _peer(row: asyncpg.Record) -> Peer:
    return Peer(
        pseudonym=row["pseudonym"],
        network_id=row["network_id"],
        hospital_id=row["hospital_id"],
        unit_id=row["unit_id"],
        discipline=Discipline(row["discipline"]),
        certified_until=row["certified_until"],
        languages=frozenset(row["languages"]),
        clinical_area=row["clinical_area"],
        gender=Gender(row["gender"]) if row["gender"] else None,
        active_cases=row["active_cases"],
        pending_offers=row["pending_offers"],
        capacity=row["capacity"],
        on_call=row["on_call"],
        paused=row["paused"],
        last_matched_at=row["last_matched_at"],
    )


async def set_availability(
    conn: asyncpg.Connection, peer: str, *, paused: bool | None, capacity: int | None
) -> bool:
    status = await conn.execute(
        """UPDATE peer SET paused = COALESCE($2, paused), capacity = COALESCE($3, capacity)
            WHERE pseudonym = $1""",
        peer,
        paused,
        capacity,
    )
    return bool(status != "UPDATE 0")


async def add_shift(
    conn: asyncpg.Connection,
    *,
    network_id: str,
    hospital_id: str,
    peer: str,
    starts_at: datetime,
    ends_at: datetime,
) -> int:
    shift_id: int = await conn.fetchval(
        """INSERT INTO on_call_shift (network_id, hospital_id, peer, starts_at, ends_at)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""",
        network_id,
        hospital_id,
        peer,
        starts_at,
        ends_at,
    )
    return shift_id


async def take_case(
    conn: asyncpg.Connection, peer: str, now: datetime, *, offer_id: UUID, case_id: UUID
) -> str | None:
    """The peer takes the case, only while within capacity: one more active case for them, their
    offer accepted and the search matched to them, in one statement. The peer's hospital when
    taken; None, with nothing changed, when they are full."""
    hospital: str | None = await conn.fetchval(
        """WITH taken AS (
               UPDATE peer SET active_cases = active_cases + 1, last_matched_at = $2
                WHERE pseudonym = $1 AND active_cases < capacity RETURNING hospital_id),
           accepted AS (
               UPDATE offer SET status = 'accepted', answered_at = $2
                WHERE offer_id = $3 AND status = 'open' AND EXISTS (SELECT FROM taken)),
           matched AS (
               UPDATE support_request SET status = 'matched', matched_peer = $1, matched_at = $2,
                      updated_at = clock_timestamp()
                WHERE case_id = $4 AND EXISTS (SELECT FROM taken))
           SELECT hospital_id FROM taken""",
        peer,
        now,
        offer_id,
        case_id,
    )
    return hospital


async def release_case(conn: asyncpg.Connection, peer: str) -> None:
    await conn.execute(
        "UPDATE peer SET active_cases = GREATEST(active_cases - 1, 0) WHERE pseudonym = $1", peer
    )


# -- offers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    offer_id: UUID
    case_id: UUID
    peer: str
    offered_at: datetime
    respond_by: datetime
    status: str
    score: float
    reasons: tuple[str, ...]


async def add_offers(conn: asyncpg.Connection, network_id: str, offers: Sequence[Offer]) -> None:
    await conn.executemany(
        """INSERT INTO offer (offer_id, network_id, case_id, peer, score, reasons, offered_at,
                              respond_by, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        [
            (
                offer.offer_id,
                network_id,
                offer.case_id,
                offer.peer,
                offer.score,
                list(offer.reasons),
                offer.offered_at,
                offer.respond_by,
                offer.status,
            )
            for offer in offers
        ],
    )


async def get_offer(
    conn: asyncpg.Connection, offer_id: UUID, *, lock: bool = False
) -> Offer | None:
    row = await conn.fetchrow(
        "SELECT * FROM offer WHERE offer_id = $1" + (" FOR UPDATE" if lock else ""), offer_id
    )
    return _offer(row) if row else None


async def offers_for_case(conn: asyncpg.Connection, case_id: UUID) -> list[Offer]:
    rows = await conn.fetch("SELECT * FROM offer WHERE case_id = $1 ORDER BY offered_at", case_id)
    return [_offer(r) for r in rows]


async def open_offers_for_peer(conn: asyncpg.Connection, peer: str) -> list[Offer]:
    rows = await conn.fetch(
        "SELECT * FROM offer WHERE peer = $1 AND status = 'open' ORDER BY respond_by", peer
    )
    return [_offer(r) for r in rows]


async def answer_offer(
    conn: asyncpg.Connection, offer_id: UUID, status: str, now: datetime
) -> None:
    await conn.execute(
        "UPDATE offer SET status = $2, answered_at = $3 WHERE offer_id = $1 AND status = 'open'",
        offer_id,
        status,
        now,
    )


def _offer(row: asyncpg.Record) -> Offer:
    return Offer(
        offer_id=row["offer_id"],
        case_id=row["case_id"],
        peer=row["peer"],
        offered_at=row["offered_at"],
        respond_by=row["respond_by"],
        status=row["status"],
        score=float(row["score"]),
        reasons=tuple(row["reasons"]),
    )


async def due_offers(conn: asyncpg.Connection, now: datetime, limit: int) -> list[tuple[str, UUID]]:
    """(network, offer) pairs past their deadline; read in the 'deadlines' system scope."""
    rows = await conn.fetch(
        """SELECT network_id, offer_id FROM offer
            WHERE status = 'open' AND respond_by <= $1 ORDER BY respond_by LIMIT $2""",
        now,
        limit,
    )
    return [(r["network_id"], r["offer_id"]) for r in rows]


async def stalled_batches(conn: asyncpg.Connection, older_than: datetime) -> list[tuple[str, UUID]]:
    """(network, adverse event) pairs whose surge batch is still waiting for stragglers."""
    rows = await conn.fetch(
        """SELECT DISTINCT network_id, adverse_event_id FROM support_request
            WHERE status = 'batching' AND received_at <= $1""",
        older_than,
    )
    return [(r["network_id"], r["adverse_event_id"]) for r in rows]


# -- calendars and policy ---------------------------------------------------------------------


async def policy_and_calendar(
    conn: asyncpg.Connection, default: MatchingPolicy, hospital_id: str
) -> tuple[MatchingPolicy, HospitalCalendar]:
    """The network's policy and the hospital's calendar (or the defaults), in one round trip.
    The rows come whole, as their tables' composite types: asyncpg looks those up once per
    connection (and, as for any cached statement, once more after a migration changes them)."""
    row = await conn.fetchrow(
        """SELECT p AS policy, c AS calendar
             FROM (SELECT) AS one
             LEFT JOIN matching_policy p ON true
             LEFT JOIN hospital_calendar c ON c.hospital_id = $1""",
        hospital_id,
    )
    return _policy(row["policy"], default), _calendar(row["calendar"])


def _calendar(row: asyncpg.Record | None) -> HospitalCalendar:
    if row is None:
        return HospitalCalendar()
    return HospitalCalendar(
        time_zone=row["time_zone"],
        working_days=frozenset(row["working_days"]),
        day_start=row["day_start"],
        day_end=row["day_end"],
        holidays=frozenset(row["holidays"]),
    )


async def put_hospital_calendar(
    conn: asyncpg.Connection, network_id: str, hospital_id: str, calendar: HospitalCalendar
) -> None:
    await conn.execute(
        """INSERT INTO hospital_calendar (network_id, hospital_id, time_zone, working_days,
                                          day_start, day_end, holidays)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (network_id, hospital_id) DO UPDATE SET time_zone = EXCLUDED.time_zone,
               working_days = EXCLUDED.working_days, day_start = EXCLUDED.day_start,
               day_end = EXCLUDED.day_end, holidays = EXCLUDED.holidays""",
        network_id,
        hospital_id,
        calendar.time_zone,
        sorted(calendar.working_days),
        calendar.day_start,
        calendar.day_end,
        sorted(calendar.holidays),
    )


async def matching_policy(conn: asyncpg.Connection, default: MatchingPolicy) -> MatchingPolicy:
    return _policy(await conn.fetchrow("SELECT * FROM matching_policy"), default)


def _policy(row: asyncpg.Record | None, default: MatchingPolicy) -> MatchingPolicy:
    if row is None:
        return default
    return MatchingPolicy(
        response=ResponsePolicy(
            urgent_first_contact=timedelta(minutes=float(row["urgent_first_contact_minutes"])),
            routine_working_hours=float(row["routine_working_hours"]),
        ),
        urgent_offer_window=timedelta(minutes=float(row["urgent_offer_minutes"])),
        routine_offer_window=timedelta(minutes=float(row["routine_offer_minutes"])),
        default_capacity=row["default_capacity"],
        weights=default.weights,
    )


async def put_matching_policy(
    conn: asyncpg.Connection, network_id: str, policy: MatchingPolicy
) -> None:
    await conn.execute(
        """INSERT INTO matching_policy (network_id, urgent_first_contact_minutes,
               routine_working_hours, urgent_offer_minutes, routine_offer_minutes,
               default_capacity)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (network_id) DO UPDATE SET
               urgent_first_contact_minutes = EXCLUDED.urgent_first_contact_minutes,
               routine_working_hours = EXCLUDED.routine_working_hours,
               urgent_offer_minutes = EXCLUDED.urgent_offer_minutes,
               routine_offer_minutes = EXCLUDED.routine_offer_minutes,
               default_capacity = EXCLUDED.default_capacity,
               updated_at = clock_timestamp()""",
        network_id,
        policy.response.urgent_first_contact.total_seconds() / 60,
        policy.response.routine_working_hours,
        policy.urgent_offer_window.total_seconds() / 60,
        policy.routine_offer_window.total_seconds() / 60,
        policy.default_capacity,
    )
