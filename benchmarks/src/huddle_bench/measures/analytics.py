"""Goal #8: analytics' network dashboard over a year of a 100-hospital network, through the real
app, against a raw asyncpg query on the same rows; and what a large release and a wide linked
suppression cost.

The year goes straight into analytics' own schema (migrated with its own migrations) with
asyncpg's COPY: the rows the projections would hold after the year's events, shaped like
`huddle_local.simulation`'s programme (same rates), over hospitals of uneven size.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import hashlib
import itertools
import json
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from huddle_analytics.application import results
from huddle_analytics.application.releases import cutoff
from huddle_analytics.domain.instruments import Instrument, score
from huddle_analytics.domain.suppression import protect_linked
from huddle_analytics.service import DEFINITION as ANALYTICS
from huddle_analytics.settings import AnalyticsSettings
from huddle_contracts.vocabulary import ProgrammeRecordKind
from huddle_local.issuer import LocalIssuer
from huddle_local.simulation import DISCIPLINE_WEIGHTS, DISCIPLINES, UNITS
from huddle_runtime import database
from huddle_runtime.migrations import migrate_service
from huddle_runtime.service import Runtime, build_app
from huddle_runtime.settings import (
    AuthSettings,
    DatabaseSettings,
    DeliverySettings,
    KafkaSettings,
    ServiceSettings,
)
from pydantic import SecretStr

from huddle_bench.context import Context
from huddle_bench.measure import Baseline, Measure
from huddle_bench.model import Outcome, RunResult, percentile

NETWORK = "bench-analytics"
COPY_CHUNK = 50_000


class Kind:
    """Programme record kinds as plain strings (the enum's lookups cost more than the rest)."""

    ADVERSE_EVENT_REPORTED = ProgrammeRecordKind.ADVERSE_EVENT_REPORTED.value
    SUPPORT_REQUESTED = ProgrammeRecordKind.SUPPORT_REQUESTED.value
    OFFER_MADE = ProgrammeRecordKind.OFFER_MADE.value
    PEER_MATCHED = ProgrammeRecordKind.PEER_MATCHED.value
    MATCH_ESCALATED = ProgrammeRecordKind.MATCH_ESCALATED.value
    SUPPORT_WITHDRAWN = ProgrammeRecordKind.SUPPORT_WITHDRAWN.value
    FIRST_CONTACT = ProgrammeRecordKind.FIRST_CONTACT.value
    SESSION_COMPLETED = ProgrammeRecordKind.SESSION_COMPLETED.value
    REFERRAL_MADE = ProgrammeRecordKind.REFERRAL_MADE.value
    CASE_CLOSED = ProgrammeRecordKind.CASE_CLOSED.value
    PEER_CERTIFIED = ProgrammeRecordKind.PEER_CERTIFIED.value
    CERTIFICATION_LAPSED = ProgrammeRecordKind.CERTIFICATION_LAPSED.value


# --------------------------------------------------------------------------- the network's year


@dataclass(frozen=True)
class NetworkShape:
    hospitals: int
    months: int
    """From January of the year: 12 is the whole year."""
    requests_per_hospital_month: float
    """The mean over hospitals; each hospital's own rate follows its size."""
    peers_per_hospital: float
    survey_pairs: int
    """Completed pre/post pairs over the whole network, split between PHQ-9 and ProQOL 5."""


# Columns in COPY order, table by table (what the projections' handlers write).
COLUMNS: dict[str, tuple[str, ...]] = {
    "support_case": (
        "network_id", "case_id", "hospital_id", "discipline", "clinical_area", "origin",
        "urgency", "adverse_event_id", "requested_at", "first_offered_at", "offers",
        "matched_at", "peer", "mode", "respond_by", "first_contact_at", "escalated_at",
        "withdrawn_at", "closed_at", "tier", "referral",
    ),
    "session_record": (
        "network_id", "session_id", "case_id", "hospital_id", "peer", "mode", "tier", "grouped",
        "started_at", "duration_minutes", "participants", "follow_up_planned", "referral_made",
    ),
    "referral_record": (
        "network_id", "referral_id", "case_id", "hospital_id", "made_at", "urgency", "resource",
        "by_peer",
    ),
    "adverse_event": (
        "network_id", "adverse_event_id", "hospital_id", "reported_at", "event_class",
        "harm_level", "categories", "involved", "outreach_triggered",
    ),
    "peer_certification": (
        "network_id", "peer", "hospital_id", "discipline", "clinical_area", "certified_at",
        "valid_until", "lapsed_at",
    ),
    "certification_period": (
        "network_id", "peer", "hospital_id", "discipline", "certified_at", "valid_until",
        "lapsed_at",
    ),
    "programme_record": (
        "network_id", "kind", "occurred_at", "hospital_id", "unit_key", "case_id",
        "peer", "mode", "tier", "referral", "harm_level", "involved", "staged_at",
    ),
    "survey_response": (
        "network_id", "response_id", "hospital_id", "programme", "instrument", "phase",
        "code_hash", "month", "measures", "bands",
    ),
}  # fmt: skip

Row = tuple[Any, ...]


class Weighted:
    """Values drawn by weight (``random.choices`` without its per-call set-up)."""

    def __init__(self, values: Sequence[Any], weights: Sequence[float]) -> None:
        self.values = tuple(values)
        self.cumulative = tuple(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> Any:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


# The simulation's mixes (huddle_local.simulation).
DISCIPLINE = Weighted([d.value for d in DISCIPLINES], DISCIPLINE_WEIGHTS)
ORIGIN = Weighted(("self", "colleague", "manager"), (6, 2, 2))
URGENCY = Weighted(("urgent", "routine"), (3, 7))
OFFERS = Weighted((1, 2, 3), (7, 2, 1))
MODE = Weighted(("phone", "in_person", "video"), (5, 4, 1))
SESSIONS = Weighted((1, 2, 3), (5, 3, 2))


@dataclass
class NetworkYear:
    """The projections' rows after a year of a network's programme events."""

    network: str
    year: int
    hospitals: tuple[str, ...]
    rows: dict[str, list[Row]] = field(default_factory=lambda: {t: [] for t in COLUMNS})
    events: Counter[str] = field(default_factory=Counter)
    """Programme events by kind (one programme record each)."""

    @property
    def event_count(self) -> int:
        return sum(self.events.values())

    @property
    def survey_pairs(self) -> int:
        return sum(1 for r in self.rows["survey_response"] if r[5] == "post")

    @property
    def row_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def hospital_sizes(rng: random.Random, hospitals: int) -> list[float]:
    """Relative sizes, mean 1: a few large teaching hospitals, many small community ones."""
    raw = [rng.lognormvariate(0, 0.7) for _ in range(hospitals)]
    mean = sum(raw) / len(raw)
    return [r / mean for r in raw]


class _Year:
    """One seeded pass over the network, hospital by hospital; rates as in the simulation."""

    def __init__(
        self, shape: NetworkShape, year: int, seed: int, network: str, records: bool
    ) -> None:
        self.shape, self.network, self.records = shape, network, records
        self.rng = random.Random(seed)
        self.start = datetime(year, 1, 1, tzinfo=UTC)
        self.end = _add_months(self.start, shape.months)
        self.backlog = _add_months(self.start, shape.months - 1)
        self.backlog_end = self.end
        self.out = NetworkYear(
            network, year, tuple(f"hospital-{i:03d}" for i in range(shape.hospitals))
        )

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def at(self, share: float = 1.0) -> datetime:
        return self.start + (self.end - self.start) * self.rng.uniform(0, share)

    def record(
        self, kind: str, occurred: datetime, hospital: str, unit: str, **values: Any
    ) -> None:
        """A staged programme record, kept (with ``records``) for the last month only: those wait
        for release; every earlier month's were released when it closed (nothing reads them)."""
        self.out.events[kind] += 1
        if not (self.records and self.backlog <= occurred < self.backlog_end):
            return
        v = values.get
        # record_id: the table's own default (gen_random_uuid), as the projections leave it.
        self.out.rows["programme_record"].append(
            (self.network, kind, occurred, hospital, unit, v("case_id"), v("peer"), v("mode"),
             v("tier"), v("referral"), v("harm_level"), v("involved"),
             occurred + timedelta(seconds=1))
        )  # fmt: skip

    def build(self) -> NetworkYear:
        sizes = hospital_sizes(self.rng, self.shape.hospitals)
        for hospital, size in zip(self.out.hospitals, sizes, strict=True):
            roster = self.peers(hospital, max(4, round(self.shape.peers_per_hospital * size)))
            requests = max(1, round(self.shape.requests_per_hospital_month * size))
            self.cases(hospital, roster, requests * self.shape.months)
        self.surveys(sizes)
        return self.out

    def peers(self, hospital: str, count: int) -> list[tuple[str, str]]:
        rng, rows = self.rng, self.out.rows
        roster = []
        for _ in range(count):
            peer = f"p_{rng.getrandbits(96):024x}"
            discipline = DISCIPLINE.pick(rng)
            area = rng.choice(UNITS)
            certified = self.start - timedelta(days=rng.uniform(30, 300))
            valid = certified + timedelta(days=365)
            periods = [(certified, valid)]
            # Most renew before their certification ends; a few let it lapse.
            if valid < self.end and rng.random() < 0.8:
                renewed = valid - timedelta(days=rng.uniform(0, 30))
                periods.append((renewed, renewed + timedelta(days=365)))
            lapsed = self.at() if rng.random() < 1 / 12 else None
            for i, (begins, ends) in enumerate(periods):
                last = i == len(periods) - 1
                ended = lapsed if last and lapsed and lapsed > begins else None
                rows["certification_period"].append(
                    (self.network, peer, hospital, discipline, begins, ends, ended)
                )
                if begins >= self.start:
                    self.record(Kind.PEER_CERTIFIED, begins, hospital, f"peer:{peer}", peer=peer)
            begins, ends = periods[-1]
            ended = lapsed if lapsed and lapsed > begins else None
            rows["peer_certification"].append(
                (self.network, peer, hospital, discipline, area, begins, ends, ended)
            )
            if ended is not None:
                self.record(Kind.CERTIFICATION_LAPSED, ended, hospital, f"peer:{peer}", peer=peer)
            roster.append((peer, discipline))
        return roster

    def cases(self, hospital: str, roster: list[tuple[str, str]], total: int) -> None:
        rng = self.rng
        # About a quarter of requests come from outreach after adverse events.
        outreach = total // 4
        while outreach > 0:
            involved = min(outreach, rng.randint(2, 7))
            outreach -= involved
            reported = self.at(0.95)
            event_id = self.uid()
            harm = rng.choice(("moderate", "severe", "death"))
            category = rng.choice(
                ("unexpected_death", "medication_error", "serious_safety_event",
                 "violence_against_staff")
            )  # fmt: skip
            self.out.rows["adverse_event"].append(
                (self.network, event_id, hospital, reported, "incident", harm, [category], involved,
                 True)
            )  # fmt: skip
            self.record(
                Kind.ADVERSE_EVENT_REPORTED, reported, hospital, f"event:{event_id}",
                harm_level=harm, involved=involved,
            )  # fmt: skip
            for _ in range(involved):
                requested = reported + timedelta(minutes=rng.uniform(1, 20))
                self.journey(hospital, roster, "outreach", requested, event_id)
        for _ in range(total - total // 4):
            origin = ORIGIN.pick(rng)
            self.journey(hospital, roster, origin, self.at(0.97), None)

    def journey(
        self,
        hospital: str,
        roster: list[tuple[str, str]],
        origin: str,
        requested: datetime,
        adverse_event: uuid.UUID | None,
    ) -> None:
        """One support case, as `huddle_local.simulation._journey` plays it out."""
        rng, rows = self.rng, self.out.rows
        case_id = self.uid()
        unit = f"case:{case_id}"
        discipline = DISCIPLINE.pick(rng)
        area = rng.choice(UNITS)
        urgency = URGENCY.pick(rng)
        self.record(Kind.SUPPORT_REQUESTED, requested, hospital, unit, case_id=case_id)
        if rng.random() < (0.25 if origin == "outreach" else 0.04):
            withdrawn = requested + timedelta(minutes=rng.uniform(2, 60))
            self.record(Kind.SUPPORT_WITHDRAWN, withdrawn, hospital, unit, case_id=case_id)
            rows["support_case"].append(
                (self.network, case_id, hospital, discipline, area, origin, urgency, adverse_event,
                 requested, None, 0, None, None, None, None, None, None, withdrawn, None, 2,
                 False)
            )  # fmt: skip
            return
        deadline = requested + (
            timedelta(minutes=30) if urgency == "urgent" else timedelta(hours=36)
        )
        offered = requested + timedelta(minutes=rng.uniform(0.2, 3))
        same = [p for p, d in roster if d == discipline] or [p for p, _ in roster]
        offers = OFFERS.pick(rng)
        moment, peer = offered, same[0]
        for _ in range(offers):
            peer = rng.choice(same)
            self.record(Kind.OFFER_MADE, moment, hospital, unit, case_id=case_id, peer=peer)
            moment += timedelta(minutes=rng.uniform(1, 9))
        escalated = None
        if offers == 3 and rng.random() < 0.5:
            escalated = moment
            self.record(Kind.MATCH_ESCALATED, moment, hospital, unit, case_id=case_id)
            moment += timedelta(minutes=rng.uniform(2, 15))
        mode = MODE.pick(rng)
        matched = moment
        self.record(
            Kind.PEER_MATCHED, matched, hospital, unit, case_id=case_id, peer=peer, mode=mode
        )
        if urgency == "urgent":
            contact = matched + timedelta(minutes=rng.uniform(2, 20 if rng.random() < 0.85 else 90))
        else:
            contact = matched + timedelta(hours=rng.uniform(1, 30 if rng.random() < 0.75 else 70))
        first_contact = contact
        sessions = SESSIONS.pick(rng)
        referral = rng.random() < 0.3
        for n in range(sessions):
            minutes = rng.randint(15, 45)
            last = n == sessions - 1
            refer_now = referral and last
            tier = 3 if refer_now else 2
            if n == 0:
                self.record(
                    Kind.FIRST_CONTACT, contact, hospital, unit, case_id=case_id, peer=peer,
                    mode=mode,
                )  # fmt: skip
            completed = contact + timedelta(minutes=minutes)
            self.record(
                Kind.SESSION_COMPLETED, completed, hospital, unit, case_id=case_id, peer=peer,
                mode=mode, tier=tier,
            )  # fmt: skip
            rows["session_record"].append(
                (self.network, self.uid(), case_id, hospital, peer, mode, tier, False, contact,
                 minutes, 1, not last or rng.random() < 0.15, refer_now)
            )  # fmt: skip
            if refer_now:
                made = completed + timedelta(minutes=1)
                resource = rng.choice(("eap", "psychologist", "occupational_health"))
                rows["referral_record"].append(
                    (self.network, self.uid(), case_id, hospital, made, urgency, resource, True)
                )
                self.record(
                    Kind.REFERRAL_MADE, made, hospital, unit, case_id=case_id, tier=3,
                    referral=resource,
                )  # fmt: skip
            contact += timedelta(days=rng.uniform(1, 4))
        self.record(Kind.CASE_CLOSED, contact, hospital, unit, case_id=case_id, peer=peer)
        rows["support_case"].append(
            (self.network, case_id, hospital, discipline, area, origin, urgency, adverse_event,
             requested, offered, offers, matched, peer, mode, deadline, first_contact, escalated,
             None, contact, 3 if referral else 2, referral)
        )  # fmt: skip

    def surveys(self, sizes: list[float]) -> None:
        """Pre/post pairs of PHQ-9 and ProQOL 5 (answers a little better after support), and
        about one pre in seven never followed by a post; hospitals answer by their size."""
        rng, rows = self.rng, self.out.rows["survey_response"]
        answered = {name: self.answer_pool(name) for name in ("phq9", "proqol5")}
        where = Weighted(self.out.hospitals, sizes)
        last_pre = max(1, self.shape.months - 1)
        for i in range(self.shape.survey_pairs * 8 // 7):
            instrument = "phq9" if i % 2 == 0 else "proqol5"
            pre, post = rng.choice(answered[instrument])
            hospital = where.pick(rng)
            code = hashlib.sha256(rng.getrandbits(80).to_bytes(10, "big")).digest()
            pre_index = rng.randrange(last_pre)
            month = _add_months(self.start, pre_index).date()
            rows.append(
                (self.network, self.uid(), hospital, "peer-support", instrument, "pre", code, month,
                 *pre)
            )  # fmt: skip
            if i < self.shape.survey_pairs:
                later = min(rng.randint(1, 3), self.shape.months - 1 - pre_index)
                month = _add_months(self.start, pre_index + later).date()
                rows.append(
                    (self.network, self.uid(), hospital, "peer-support", instrument, "post", code,
                     month, *post)
                )  # fmt: skip

    def answer_pool(self, instrument: str, size: int = 400) -> list[tuple[Scored, Scored]]:
        """Scored (pre, post) answer sets, as `huddle_local.simulation._survey` draws them;
        respondents share them (scoring each of 100,000 forms would dominate the seeding)."""
        rng = self.rng
        items, low, high = {"phq9": (9, 0, 3), "proqol5": (30, 1, 5)}[instrument]
        pool = []
        for _ in range(size):
            pre = [rng.randint(low + (high - low) // 3, high) for _ in range(items)]
            if instrument == "phq9":
                pre[8] = 0  # item 9 is answered on its own: only a few endorse it
            post = [max(low, min(high, a - rng.choice((0, 0, 1, 1, 2)))) for a in pre]
            pool.append((_scored(instrument, pre), _scored(instrument, post)))
        return pool


Scored = tuple[str, str]
"""A response's measures and bands, as the JSON survey_response holds."""


def _scored(instrument: str, answers: list[int]) -> Scored:
    found = score(Instrument(instrument), answers)
    return json.dumps(found.measures), json.dumps(found.bands)


def network_year(
    shape: NetworkShape, *, year: int, seed: int, network: str = NETWORK, records: bool = False
) -> NetworkYear:
    """The projections' rows after ``shape.months`` months of the year; with ``records``, the
    programme records of the last month, waiting for release."""
    return _Year(shape, year, seed, network, records).build()


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    return moment.replace(year=moment.year + index // 12, month=index % 12 + 1)


# --------------------------------------------------------------------------- seeding


def analytics_settings(ctx: Context, jwks: Path) -> ServiceSettings:
    """Analytics as it runs, minus its Kafka loops: nothing is consumed (the year is seeded) and
    the release's outbox rows stay where the bench can count them."""
    return ServiceSettings(
        service=ANALYTICS.name,
        environment="test",
        kafka=KafkaSettings(bootstrap_servers=ctx.kafka()),
        database=DatabaseSettings(url=SecretStr(ctx.database())),
        auth=AuthSettings(jwks_file=str(jwks)),
        delivery=DeliverySettings(relay_enabled=False, consumer_enabled=False),
    )


async def seed(settings: ServiceSettings, years: Sequence[NetworkYear], ctx: Context) -> None:
    """Analytics' schema migrated and filled with each network's rows, by COPY."""
    await migrate_service(settings, ANALYTICS.migrations)
    conn = await database.connect(settings)
    try:
        total = sum(year.row_count for year in years)
        with ctx.task("seeding analytics", total) as bar:
            for year in years:
                for table, columns in COLUMNS.items():
                    await conn.execute(f"DELETE FROM {table} WHERE network_id = $1", year.network)
                    rows = year.rows[table]
                    for start in range(0, len(rows), COPY_CHUNK):
                        chunk = rows[start : start + COPY_CHUNK]
                        await conn.copy_records_to_table(table, records=chunk, columns=columns)
                        bar.advance(len(chunk))
        # Queries start on settled tables with fresh statistics, as a long-running one would.
        for table in COLUMNS:
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


# --------------------------------------------------------------------------- the measures


@dataclass(frozen=True)
class AnalyticsParams:
    year: NetworkShape
    release: NetworkShape
    """The network whose last closed month is released (smaller than the year's, to fit)."""
    rounds: int
    """Rounds of requests: each round asks every query once, in the same order."""
    seconds: float
    """…or fewer rounds, when they take longer than this (at least ``min_rounds``)."""
    min_rounds: int
    raw_queries: int
    wide_hospitals: tuple[int, ...]
    """Rows (hospitals) of the wide linked tables protected in process."""


PARAMS = {
    False: AnalyticsParams(
        year=NetworkShape(hospitals=100, months=12, requests_per_hospital_month=137,
                          peers_per_hospital=24, survey_pairs=50_000),
        release=NetworkShape(hospitals=20, months=1, requests_per_hospital_month=137,
                             peers_per_hospital=24, survey_pairs=0),
        rounds=30, seconds=20.0, min_rounds=5, raw_queries=100,
        wide_hospitals=(100, 300),
    ),
    True: AnalyticsParams(
        year=NetworkShape(hospitals=5, months=3, requests_per_hospital_month=137,
                          peers_per_hospital=24, survey_pairs=2_500),
        release=NetworkShape(hospitals=3, months=1, requests_per_hospital_month=137,
                             peers_per_hospital=24, survey_pairs=0),
        rounds=20, seconds=6.0, min_rounds=5, raw_queries=50,
        wide_hospitals=(30,),
    ),
}  # fmt: skip

RELEASE_NETWORK = "bench-analytics-release"

# What an analyst's dashboard reads: the dashboard itself and the endpoints it is made of.
QUERIES: dict[str, str] = {
    "dashboard": "/v1/dashboard?year={year}",
    "requests_by_origin": "/v1/metrics/requests?year={year}&by=origin",
    "requests_by_tier": "/v1/metrics/requests?year={year}&by=tier",
    "sessions_by_mode": "/v1/metrics/sessions?year={year}&by=mode",
    "response_times": "/v1/response-times?year={year}",
    "adverse_event_coverage": "/v1/adverse-event-coverage?year={year}",
    "referral_rate": "/v1/referral-rate?year={year}",
    "follow_ups": "/v1/follow-ups?year={year}",
    "peer_load": "/v1/peer-load?year={year}",
    "training_coverage": "/v1/training-coverage?month={year}-12",
    "outcomes_phq9": "/v1/outcomes/phq9",
    "outcomes_proqol5": "/v1/outcomes/proqol5",
}

# The raw baseline: the same year's requests counted by month, straight through asyncpg.
RAW_QUERY = """SELECT date_trunc('month', requested_at AT TIME ZONE 'UTC') AS month, count(*)
                 FROM support_case
                WHERE network_id = $1 AND requested_at >= $2 AND requested_at < $3
                GROUP BY 1"""

GOAL_MS = 200.0


def data_year(now: datetime) -> int:
    """The last calendar year whose every month has closed (analytics publishes no other)."""
    return cutoff(now, timedelta(hours=AnalyticsSettings().release_grace_hours)).year - 1


@dataclass
class Seeded:
    settings: ServiceSettings
    issuer: LocalIssuer
    year: NetworkYear
    release: NetworkYear
    seconds: float


async def seeded(ctx: Context) -> Seeded:
    """Once per bench session: the year and the release backlog, generated and loaded."""
    if "analytics" not in ctx.cache:
        params = PARAMS[ctx.smoke]
        started = time.perf_counter()
        with ctx.task("generating a network's year", None):
            year = network_year(params.year, year=data_year(datetime.now(UTC)), seed=ctx.seed)
            release = network_year(
                params.release, year=year.year, seed=ctx.seed + 1, network=RELEASE_NETWORK,
                records=True,
            )  # fmt: skip
        issuer = LocalIssuer(Path(tempfile.mkdtemp(prefix="huddle-bench-issuer-")))
        issuer.ensure_keys()
        settings = analytics_settings(ctx, issuer.jwks_path)
        await seed(settings, (year, release), ctx)
        ctx.cache["analytics"] = Seeded(
            settings, issuer, year, release, time.perf_counter() - started
        )
    found: Seeded = ctx.cache["analytics"]
    return found


@contextlib.asynccontextmanager
async def running_analytics(found: Seeded) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """The real app (routes, JWT checks, settings, pool), in process through httpx's
    ASGITransport; the release scheduler and the results' warmer are left out so that they run
    only when the bench asks (and is timing them)."""
    app = build_app(dataclasses.replace(ANALYTICS, tasks=()), found.settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://analytics", timeout=600
        ) as client,
    ):
        yield app.state.runtime, client


def bearer(found: Seeded, role: str, network: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + found.issuer.mint(role=role, network=network)}


async def raw_latencies(found: Seeded, count: int) -> list[float]:
    """The baseline's latencies (ms): one grouped count over the same rows, no app at all."""
    year = found.year.year
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    conn = await database.connect(found.settings)
    try:
        await conn.fetch(RAW_QUERY, NETWORK, start, end)  # warm, like the app's first round
        samples = []
        for _ in range(count):
            began = time.perf_counter()
            await conn.fetch(RAW_QUERY, NETWORK, start, end)
            samples.append((time.perf_counter() - began) * 1000)
        return samples
    finally:
        await conn.close()


async def forget_results(found: Seeded) -> None:
    """Nothing stored, as on the first request after a month closes (a new key for every query)."""
    conn = await database.connect(found.settings)
    try:
        await conn.execute("DELETE FROM published_result")
        await conn.execute("DELETE FROM result_version")
    finally:
        await conn.close()


def results_computed(runtime: Runtime) -> float:
    """How many results the app has computed on a request (rather than served stored)."""
    value = runtime.metrics.registry.get_sample_value(
        "huddle_analytics_results_total", {"source": "computed"}
    )
    return float(value or 0)


async def analytics_dashboard(ctx: Context) -> RunResult:
    params = PARAMS[ctx.smoke]
    found = await seeded(ctx)
    headers = bearer(found, "analyst", NETWORK)
    paths = {name: path.format(year=found.year.year) for name, path in QUERIES.items()}
    samples: dict[str, list[float]] = {name: [] for name in paths}
    cold_ms: dict[str, float] = {}
    cold: dict[str, bytes] = {}
    async with running_analytics(found) as (runtime, client):
        # The process as it runs: connections open, scipy.stats imported (the first outcome).
        for name in ("referral_rate", "outcomes_phq9"):
            (await client.get(paths[name], headers=headers)).raise_for_status()
        # Cold: each query's first computation after a month has closed (nothing stored).
        with ctx.task("analytics: cold queries (after a month closes)", len(paths)) as bar:
            for name, path in paths.items():
                await forget_results(found)
                began = time.perf_counter()
                response = await client.get(path, headers=headers)
                cold_ms[name] = (time.perf_counter() - began) * 1000
                response.raise_for_status()
                cold[name] = response.content
                bar.advance()
        # What the warmer does when a month closes: the network's scope every run; the network
        # and then each of its hospitals once per session (it is most of the bench's time).
        await forget_results(found)
        with ctx.task("analytics: warming the network's results", None):
            began = time.perf_counter()
            await results.warm_network(runtime, NETWORK, datetime.now(UTC), hospitals=False)
            warm_network_s = time.perf_counter() - began
        if "analytics_warmed" not in ctx.cache:
            await forget_results(found)
            with ctx.task("analytics: warming the network and each hospital", None):
                began = time.perf_counter()
                warmed = await results.warm_network(runtime, NETWORK, datetime.now(UTC))
                ctx.cache["analytics_warmed"] = (warmed, time.perf_counter() - began)
        warmed, warm_s = ctx.cache["analytics_warmed"]
        computed_before = results_computed(runtime)
        started = time.perf_counter()
        with ctx.task("analytics: dashboard queries (warm)", params.rounds) as bar:
            for done in range(params.rounds):
                if done >= params.min_rounds and time.perf_counter() - started > params.seconds:
                    break
                for name, path in paths.items():
                    began = time.perf_counter()
                    response = await client.get(path, headers=headers)
                    samples[name].append((time.perf_counter() - began) * 1000)
                    response.raise_for_status()
                bar.advance()
        computed_warm = results_computed(runtime) - computed_before
        served = {name: (await client.get(path, headers=headers)).content
                  for name, path in paths.items()}  # fmt: skip
    raw_ms = await raw_latencies(found, params.raw_queries)
    dashboard = json.loads(served["dashboard"])
    metrics: dict[str, float] = {
        "p99_ms": percentile(samples["dashboard"], 99),
        "p50_ms": percentile(samples["dashboard"], 50),
        "worst_p99_ms": max(percentile(s, 99) for s in samples.values()),
        "cold_ms": cold_ms["dashboard"],
        "cold_worst_ms": max(cold_ms.values()),
        "warm_network_s": warm_network_s,
        "warm_s": warm_s,
        "scopes_warmed": warmed.scopes,
        "results_warmed": warmed.bodies,
        "raw_p99_ms": percentile(raw_ms, 99),
        "raw_p50_ms": percentile(raw_ms, 50),
        "rounds": len(samples["dashboard"]),
        "queries_over_goal": sum(percentile(s, 99) > GOAL_MS for s in samples.values()),
        "events": found.year.event_count,
        "cases": len(found.year.rows["support_case"]),
        "sessions": len(found.year.rows["session_record"]),
        "survey_pairs": found.year.survey_pairs,
        "hospitals": len(found.year.hospitals),
        "seeding_s": found.seconds,
    }
    for name, values in samples.items():
        metrics[f"p50_ms:{name}"] = percentile(values, 50)
        metrics[f"p99_ms:{name}"] = percentile(values, 99)
        metrics[f"cold_ms:{name}"] = cold_ms[name]
    requests = dashboard["requests_by_origin"]["table"]["total"]
    return RunResult(
        metrics=metrics,
        series={"latency_ms": samples["dashboard"], "raw_ms": raw_ms},
        checks={
            "the dashboard counts every request of the year": requests
            == len(found.year.rows["support_case"]),
            "every warm request was served from the table": computed_warm == 0,
            "every warmed answer is byte for byte the cold computation's": served == cold,
            "the warmer reached the network and every hospital": warmed.complete
            and warmed.scopes == len(found.year.hospitals) + 1,
        },
    )


async def reset_release(found: Seeded) -> int:
    """The release network's last month waiting again, as before its first release; how many
    records wait."""
    network = found.release.network
    conn = await database.connect(found.settings)
    try:
        async with conn.transaction():
            await conn.execute(
                """UPDATE programme_record SET released_at = NULL, held_back_at = NULL
                    WHERE network_id = $1""",
                network,
            )
            await conn.execute("DELETE FROM published_record WHERE network_id = $1", network)
            await conn.execute("DELETE FROM outbox")  # only releases write it here (no relay)
        await conn.execute("VACUUM ANALYZE programme_record")
        waiting: int = await conn.fetchval(
            "SELECT count(*) FROM programme_record WHERE network_id = $1", network
        )
        return waiting
    finally:
        await conn.close()


async def analytics_release(ctx: Context) -> RunResult:
    """POST /v1/releases for a network whose last closed month waits whole: one transaction
    that loads every waiting record, decides what may be published, and writes the outbox."""
    found = await seeded(ctx)
    waiting = await reset_release(found)
    conn = await database.connect(found.settings)
    try:
        began = time.perf_counter()
        await conn.fetch(
            "SELECT * FROM programme_record WHERE network_id = $1 AND released_at IS NULL",
            found.release.network,
        )
        raw_s = time.perf_counter() - began
    finally:
        await conn.close()
    async with running_analytics(found) as (_, client):
        with ctx.task(f"analytics: releasing {waiting:,} records", None):
            began = time.perf_counter()
            response = await client.post(
                "/v1/releases", headers=bearer(found, "network_admin", found.release.network)
            )
            seconds = time.perf_counter() - began
    response.raise_for_status()
    released = int(response.json()["released"])
    conn = await database.connect(found.settings)
    try:
        published = await conn.fetchval("SELECT count(*) FROM outbox")
        held_back = await conn.fetchval(
            """SELECT count(*) FROM programme_record
                WHERE network_id = $1 AND held_back_at IS NOT NULL""",
            found.release.network,
        )
    finally:
        await conn.close()
    return RunResult(
        metrics={
            "seconds": seconds,
            "records": waiting,
            "released": released,
            "held_back": held_back,
            "records_per_s": waiting / seconds,
            "raw_read_s": raw_s,
            "hospitals": len(found.release.hospitals),
        },
        checks={
            "every released record is in the outbox, once": published == released,
            "every record released or held back": released + held_back == waiting,
        },
    )


def wide_tables(
    year: NetworkYear, hospitals: int
) -> tuple[list[str], list[int], dict[str, tuple[list[str], list[list[int]]]]]:
    """The requests of the year by month, with their breakdowns as /v1/metrics/requests links
    them, over ``hospitals`` rows: the year's hospitals split evenly (by case) when more."""
    months = [f"{year.year:04d}-{m:02d}" for m in range(1, 13)]
    split = max(1, hospitals // len(year.hospitals))
    dimensions = {"hospital": 2, "discipline": 3, "clinical_area": 4, "origin": 5, "urgency": 6}
    cells: dict[str, Counter[tuple[str, int]]] = {d: Counter() for d in dimensions}
    for row in year.rows["support_case"]:
        month = row[8].month - 1
        for name, column in dimensions.items():
            value = str(row[column])
            if name == "hospital" and split > 1:
                value = f"{value}/{row[1].int % split}"
            cells[name][(value, month)] += 1
    totals = [0] * 12
    for (_, month), n in cells["origin"].items():
        totals[month] += n
    breakdowns = {}
    for name, counted in cells.items():
        rows = sorted({value for value, _ in counted})
        breakdowns[name] = (rows, [[counted[(r, m)] for m in range(12)] for r in rows])
    return months, totals, breakdowns


async def analytics_suppression(ctx: Context) -> RunResult:
    """`protect_linked` in process on the year's requests by month, every breakdown linked (as
    /v1/metrics/requests publishes them), with ever more hospital rows."""
    params = PARAMS[ctx.smoke]
    found = await seeded(ctx)
    k = AnalyticsSettings().suppression_threshold
    metrics: dict[str, float] = {}
    checks: dict[str, bool] = {}
    with ctx.task("analytics: linked suppression", len(params.wide_hospitals)) as bar:
        for hospitals in params.wide_hospitals:
            months, totals, breakdowns = wide_tables(found.year, hospitals)
            values = np.array([v for _, rows in breakdowns.values() for r in rows for v in r])
            began = time.perf_counter()
            small = int(((values >= 1) & (values < k)).sum())  # the raw part: primary cells
            raw_s = time.perf_counter() - began
            began = time.perf_counter()
            _, tables = protect_linked(months, totals, breakdowns, k)
            seconds = time.perf_counter() - began
            shown = [v for t in tables.values() for r in t.cells for v in r if v is not None]
            metrics[f"seconds@{hospitals}"] = seconds
            metrics[f"raw_s@{hospitals}"] = raw_s
            metrics[f"cells@{hospitals}"] = values.size
            metrics[f"small_cells@{hospitals}"] = small
            metrics[f"hidden@{hospitals}"] = sum(t.suppressed for t in tables.values())
            checks[f"no published cell from 1 to k-1 ({hospitals} hospitals)"] = not any(
                1 <= v < k for v in shown
            )
            bar.advance()
    widest = params.wide_hospitals[-1]
    metrics["seconds"] = metrics[f"seconds@{widest}"]
    metrics["raw_s"] = metrics[f"raw_s@{widest}"]
    return RunResult(metrics=metrics, checks=checks)


# --------------------------------------------------------------------------- definitions


def _dashboard_met(o: Outcome) -> bool | None:
    worst = o.metrics.get("worst_p99_ms")
    return None if worst is None else worst.median <= GOAL_MS and o.checks_ok


def _dashboard_limits(o: Outcome) -> list[str]:
    m = {k: v.median for k, v in o.metrics.items()}
    if "worst_p99_ms" not in m:
        return []
    notes = []
    over = sorted(
        ((name, m[f"p99_ms:{name}"]) for name in QUERIES if m.get(f"p99_ms:{name}", 0) > GOAL_MS),
        key=lambda pair: -pair[1],
    )
    if over:
        listed = ", ".join(f"`{name}` {ms:,.0f} ms" for name, ms in over)
        notes.append(f"Warm p99 over {GOAL_MS:.0f} ms: {listed} (median of the runs).")
    if "cold_ms" not in m:
        return notes
    coldest = max(QUERIES, key=lambda name: m.get(f"cold_ms:{name}", 0))
    notes += [
        "Results are materialised per closed month: only closed months are published, so each "
        "answer is stored per scope, query, last closed month and data version "
        "(`published_result`, services/analytics) and served from the table; the warm p99 "
        f"(worst query {m['worst_p99_ms']:.1f} ms, dashboard {m['p99_ms']:.1f} ms) is one "
        "indexed read, the JWT check and the response. The data version moves only when a "
        "late event changes a closed month's rows.",
        "A cold computation (the first after a month closes, or after a late event, before the "
        "warmer has run) aggregates the year's raw rows "
        f"({m['cases']:,.0f} cases, {m['sessions']:,.0f} sessions, {m['survey_pairs']:,.0f} "
        f"survey pairs): the dashboard takes {m['cold_ms']:,.0f} ms, the slowest single query "
        f"`{coldest}` {m[f'cold_ms:{coldest}']:,.0f} ms; the raw baseline, one grouped count of "
        f"the same cases, takes p99 {m['raw_p99_ms']:.0f} ms. Analysts do not wait for it: the "
        "warmer precomputes the dashboard and every part of it, for the year of the last closed "
        f"month and the year before: the network's in {m['warm_network_s']:.1f} s, the network's "
        f"and each hospital's ({m['scopes_warmed']:.0f} scopes, {m['results_warmed']:,.0f} "
        f"answers) in {m['warm_s']:.0f} s (measured once per session), off the request path.",
    ]
    return notes


def _release_limits(o: Outcome) -> list[str]:
    m = {k: v.median for k, v in o.metrics.items()}
    if "seconds" not in m:
        return []
    per_record = m["seconds"] / max(1.0, m["records"]) * 1e6
    return [
        f"{m['records']:,.0f} records of one closed month of {m['hospitals']:.0f} hospitals "
        f"released in {m['seconds']:.1f} s ({m['records_per_s']:,.0f} records/s, "
        f"{per_record:,.0f} µs each); reading them alone takes {m['raw_read_s']:.2f} s. A month of "
        f"the 100-hospital network (about 96,000 records) would take about "
        f"{96_000 / m['records_per_s']:.0f} s in one transaction.",
        "Per record, in Python and in one transaction: the release rule (grouping every record "
        "by kind, month and what it shows, coarsening until each group reaches k), then the "
        "anonymised event is built and serialised twice (pydantic: once as the CloudEvent for "
        "the outbox, once as JSON for the exports), and two statements per record "
        "(`executemany` UPDATE released, INSERT published_record) and one for all of their "
        "outbox rows. Profiled "
        "(cProfile, 64,000 records): about a quarter in the database, a quarter in pydantic "
        "serialisation, the rest in the release rule and building events.",
    ]


def _suppression_limits(o: Outcome) -> list[str]:
    sizes = PARAMS[False].wide_hospitals
    notes = []
    for n in sizes:
        if f"seconds@{n}" in o.metrics:
            m = {k: v.median for k, v in o.metrics.items()}
            notes.append(
                f"{n} hospital rows: {m[f'cells@{n}']:,.0f} linked cells, "
                f"{m[f'small_cells@{n}']:,.0f} of them 1 to k-1, {m[f'hidden@{n}']:,.0f} entries "
                f"hidden, {m[f'seconds@{n}'] * 1000:,.0f} ms."
            )
    if notes:
        notes.append(
            "What limits it: each round of the check builds the whole linked system (one "
            "equation per line of every table) and solves it with HiGHS and an SVD null space, "
            "and rounds repeat until no hidden entry is determined; more small cells mean more "
            "rounds over a larger system."
        )
    return notes


MEASURES: tuple[Measure, ...] = (
    Measure(
        name="analytics_dashboard",
        title="Analytics network dashboard over a year (the real app, in process)",
        kind="goal",
        needs=frozenset({"kafka", "postgres"}),
        run=analytics_dashboard,
        about=(
            "Analytics' schema, migrated with its own migrations, holds a year of a network of "
            "100 hospitals of uneven size (about 1,000,000 programme events' worth of "
            "projection rows and 50,000 PHQ-9 and ProQOL 5 pre/post pairs; the simulation's "
            "rates), loaded by COPY once per session (smoke: 5 hospitals, a quarter). The app "
            "is analytics' own (`build_app`: routes, RS256 JWTs from the local issuer checked "
            "against its JWKS, row-level security, pool) served in process through httpx's "
            "ASGITransport. Cold: with nothing stored (as after a month closes), the first "
            "request of the dashboard and of each endpoint it is made of, plus both outcome "
            "endpoints. Then the warmer precomputes them for the network and each hospital "
            "(timed), and an analyst asks every query round after round, one request at a "
            "time (warm: judged against the goal). Baseline: a raw asyncpg grouped count by "
            "month over the same year's cases."
        ),
        headline="p99_ms",
        headline_label="dashboard p99",
        unit="ms",
        goal_id="#8",
        goal=(
            "a year of 100 hospitals: p99 ≤ 200 ms per query (the dashboard and each endpoint, "
            "as analysts see them: warm)"
        ),
        baseline=Baseline(None, "raw_p99_ms", "raw asyncpg count by month, p99"),
        ratio_label="warm dashboard p99 ÷ raw query p99",
        ratio_higher_is_better=False,
        judge=_dashboard_met,
        explain=_dashboard_limits,
    ),
    Measure(
        name="analytics_release",
        title="Analytics: releasing a closed month's backlog to the analysts' stream",
        kind="goal",
        needs=frozenset({"kafka", "postgres"}),
        run=analytics_release,
        about=(
            "A network of 20 hospitals whose last closed month waits whole (smoke: 3 "
            "hospitals); `POST /v1/releases` as its network admin loads every waiting record in "
            "one transaction, applies the release rule (groups of at least k), and writes each "
            "published record to the outbox and to the exports' table. Baseline: reading the "
            "same waiting rows with raw asyncpg."
        ),
        headline="seconds",
        headline_label="month released",
        unit="s",
        goal_id="#8",
        goal="issue note: a large release's time, and what limits it",
        baseline=Baseline(None, "raw_read_s", "raw read of the waiting records"),
        ratio_label="release ÷ raw read",
        ratio_higher_is_better=False,
        explain=_release_limits,
    ),
    Measure(
        name="analytics_suppression",
        title="Analytics: linked small-cell suppression of wide tables (in process)",
        kind="goal",
        needs=frozenset({"kafka", "postgres"}),
        run=analytics_suppression,
        about=(
            "`domain.suppression.protect_linked` on the year's requests by month with every "
            "breakdown linked to the same totals, as `/v1/metrics/requests` publishes them: the "
            "100 hospitals as rows, then 300 (each hospital split in three by case). Baseline: "
            "finding the cells from 1 to k-1 (the primary suppression alone) with numpy."
        ),
        headline="seconds",
        headline_label="widest table protected",
        unit="s",
        goal_id="#8",
        goal="issue note: the time of a wide linked table, and what limits it",
        baseline=Baseline(None, "raw_s", "primary suppression alone (numpy)"),
        ratio_label="linked protection ÷ primary alone",
        ratio_higher_is_better=False,
        explain=_suppression_limits,
    ),
)
