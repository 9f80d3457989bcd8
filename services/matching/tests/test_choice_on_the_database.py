"""The decision as the service makes it, on PostgreSQL: `search.choose` reads only a few rows of
each tier through the indexes, yet offers the peer `rank` puts first on the whole roster."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import asyncpg
import pytest
from huddle_contracts.events import MatchPreferences
from huddle_contracts.vocabulary import Discipline, Gender, Urgency
from huddle_e2e.factories import NOW, make_need
from huddle_matching.adapters import repository as repo
from huddle_matching.application.search import choose
from huddle_matching.domain.preferences import PreferenceWeights
from huddle_matching.domain.roster import Peer
from huddle_matching.domain.selection import Scope, rank
from huddle_matching.domain.support_need import SupportNeed
from huddle_runtime import database
from huddle_runtime.settings import ServiceSettings
from huddle_runtime.tenancy import Tenant, apply_tenant

pytestmark = pytest.mark.integration

NAMES = [f"p_{i:02d}" for i in range(40)]
HOSPITALS = ["st-mary", "st-luke"]
UNITS = ["icu", "surgery"]
DISCIPLINES = [Discipline.NURSE, Discipline.PHYSICIAN, Discipline.MIDWIFE]
AREAS = ["icu", "emergency", None]
# Few distinct last matches, so that ties on score and on last match are common.
LAST = [None, NOW - timedelta(days=40), NOW - timedelta(days=3), NOW - timedelta(hours=5)]
WEIGHTS = [
    PreferenceWeights(),
    PreferenceWeights(per_active_case=0, rotation_cap=3),
    # Rotation weighted against waiting: every eligible peer of the tier is read instead.
    PreferenceWeights(rotation_per_day_since_last_match=-0.5, rotation_cap=0),
]


def random_peer(rng: random.Random, name: str, network: str) -> Peer:
    capacity = rng.choice([0, 1, 2, 3, 3, 4])
    active = rng.randint(0, capacity)
    return Peer(
        pseudonym=name,
        network_id=network,
        hospital_id=rng.choice(HOSPITALS),
        unit_id=rng.choice(UNITS),
        discipline=rng.choice(DISCIPLINES),
        certified_until=NOW + timedelta(days=rng.choice([-1, 30, 300])),
        languages=frozenset(rng.sample(["en", "es", "pl"], rng.randint(0, 2))),
        clinical_area=rng.choice(AREAS),
        gender=rng.choice([*Gender, None]),
        active_cases=active,
        pending_offers=rng.choice([0, 0, 0, 1]) if active < capacity else 0,
        capacity=capacity,
        on_call=rng.random() < 0.5,
        paused=rng.random() < 0.1,
        last_matched_at=rng.choice(LAST),
    )


def random_need(rng: random.Random, network: str) -> SupportNeed:
    return make_need(
        network_id=network,
        hospital_id=rng.choice(HOSPITALS),
        unit_id=rng.choice(UNITS),
        requester=rng.choice(NAMES),
        discipline=rng.choice(DISCIPLINES),
        urgency=rng.choice(list(Urgency)),
        clinical_area=rng.choice(AREAS),
        preferences=MatchPreferences(
            own_unit=rng.choice([None, None, True, False]),
            language=rng.choice([None, None, "es", "pl"]),
            gender=rng.choice([None, None, *Gender]),
        ),
        involved=frozenset(rng.sample(NAMES, rng.randint(0, 3))),
        reporting_line=frozenset(rng.sample(NAMES, rng.randint(0, 2))),
    )


async def load(conn: asyncpg.Connection, roster: list[Peer]) -> None:
    """The roster as matching stores it: peers, their running shifts, their unanswered offers."""
    for peer in roster:
        await conn.execute(
            """INSERT INTO peer (network_id, pseudonym, hospital_id, unit_id, discipline,
                   clinical_area, languages, gender, certified_until, capacity, active_cases,
                   paused, last_matched_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
            peer.network_id,
            peer.pseudonym,
            peer.hospital_id,
            peer.unit_id,
            peer.discipline.value,
            peer.clinical_area,
            sorted(peer.languages),
            peer.gender.value if peer.gender else None,
            peer.certified_until,
            peer.capacity,
            peer.active_cases,
            peer.paused,
            peer.last_matched_at,
        )
        if peer.on_call:
            await repo.add_shift(
                conn,
                network_id=peer.network_id,
                hospital_id=peer.hospital_id,
                peer=peer.pseudonym,
                starts_at=NOW - timedelta(hours=1),
                ends_at=NOW + timedelta(hours=8),
            )
        for _ in range(peer.pending_offers):
            case_id = uuid.uuid4()
            await conn.execute(
                """INSERT INTO support_request (case_id, network_id, hospital_id, unit_id,
                       requester, discipline, origin, urgency, requested_at)
                   VALUES ($1, $2, $3, 'icu', 'p_someone', 'nurse', 'self', 'routine', $4)""",
                case_id,
                peer.network_id,
                peer.hospital_id,
                NOW,
            )
            offer = repo.Offer(uuid.uuid4(), case_id, peer.pseudonym, NOW, NOW, "open", 0, ())
            await repo.add_offers(conn, peer.network_id, [offer])


async def agree(conn: asyncpg.Connection, rng: random.Random, network: str) -> None:
    everyone = await repo.roster(conn, NOW)
    for _ in range(25):
        need = random_need(rng, network)
        skip = frozenset(rng.sample(NAMES, rng.randint(0, 2)))
        for scope in Scope:
            for weights in WEIGHTS:
                chosen = await choose(conn, need, NOW, scope, weights, skip=skip)
                ranked = rank(need, everyone, NOW, scope=scope, weights=weights, skip=skip)
                assert chosen == ranked.best, (need, scope, weights)


async def test_the_decision_read_through_the_indexes_is_the_ranking_of_the_whole_roster(
    matching_settings: ServiceSettings,
) -> None:
    rng = random.Random(20261126)
    pool = await database.create_pool(matching_settings)
    try:
        for _ in range(8):
            network = f"net-{uuid.uuid4().hex[:10]}"
            roster = [random_peer(rng, name, network) for name in NAMES]
            async with pool.acquire() as conn:
                # Rolled back at the end: other tests' deadline scheduler never sees these offers.
                held = conn.transaction()
                await held.start()
                try:
                    await apply_tenant(conn, Tenant(network))
                    await load(conn, roster)
                    await agree(conn, rng, network)
                finally:
                    await held.rollback()
    finally:
        await pool.close()
