"""The support journey driven through the running stack, with a timestamp at every hop.

A worker's request goes to intake over HTTP; an observer reads the bus (read_committed, every
partition) and notes when SupportRequested, OfferMade and PeerMatched pass; the peer named in an
OfferMade accepts it at once over matching's HTTP API; and a poller notes when sessions has
committed the case (the row its API reads), from the commit's own timestamp when the server keeps
them (``track_commit_timestamp``, as the benchmark's server does). Every time is this process's
monotonic clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from huddle_contracts.events import OfferMade, PeerMatched, SupportRequested
from huddle_contracts.topics import topic_for_event_type

from huddle_bench.load import Latencies, Phase, achieved_rate, match, open_loop
from huddle_bench.network import PlannedRequest
from huddle_bench.stack_runner import topic_partitions

OBSERVED = (
    topic_for_event_type(SupportRequested.event_type).name,
    topic_for_event_type(OfferMade.event_type).name,
)
# How often the case poller asks sessions' table. With the server's commit timestamps the time a
# case opened is its transaction's commit, whatever the interval; without them it is the poll's
# time, and the interval is the resolution of "case open".
POLL_S = {True: 0.025, False: 0.002}
# The row's xmin is the transaction that opened the case: nothing updates it in these runs.
COMMITTED_AT = """SELECT case_id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) AS at
                     FROM sessions.support_case WHERE case_id = ANY($1::uuid[])"""
POLLED_AT = "SELECT case_id, NULL AS at FROM sessions.support_case WHERE case_id = ANY($1::uuid[])"


@dataclass
class Hops:
    """When each case passed each point; keys are case ids."""

    accepted: dict[uuid.UUID, float] = field(default_factory=dict)
    """intake answered 201"""
    requested: dict[uuid.UUID, float] = field(default_factory=dict)
    """SupportRequested on the bus (intake's relay published it)"""
    offered: dict[uuid.UUID, float] = field(default_factory=dict)
    """OfferMade on the bus: the offer is published to the peer"""
    answered: dict[uuid.UUID, float] = field(default_factory=dict)
    """matching answered the peer's accept"""
    matched: dict[uuid.UUID, float] = field(default_factory=dict)
    """PeerMatched on the bus"""
    opened: dict[uuid.UUID, float] = field(default_factory=dict)
    """sessions committed the case"""


@dataclass
class PhaseOutcome:
    phase: Phase
    cases: list[uuid.UUID]
    offer: Latencies
    case_open: Latencies
    intake_relay: Latencies
    matching_hop: Latencies
    matched_hop: Latencies
    sessions_hop: Latencies
    achieved_rps: float
    offered_rps: float
    pacing_lag_ms: float
    generator_cpu: float
    """The load generator's own CPU seconds per wall second during the phase."""
    drained: bool


class Pipeline:
    """Drives phases of requests through the stack; one instance per network."""

    def __init__(
        self,
        *,
        http: aiohttp.ClientSession,
        intake: str,
        matching: str,
        kafka_bootstrap: str,
        database_url: str,
        peer_tokens: dict[str, str],
    ) -> None:
        self.http = http
        self.intake = intake
        self.matching = matching
        self.kafka_bootstrap = kafka_bootstrap
        self.database_url = database_url
        self.peer_tokens = peer_tokens
        self.hops = Hops()
        self.errors: Counter[str] = Counter()
        self.peer_of: dict[uuid.UUID, str] = {}
        self.refused: Counter[str] = Counter()
        """Accepts matching refused (409), by its reason."""
        self.redo: set[uuid.UUID] = set()
        """Cases declined after a refused accept: the next OfferMade of each is accepted."""
        self._accepts: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.exact_case_times: bool | None = None
        """Whether a case's time is its commit's (the server keeps commit timestamps) or the
        poll's that saw it; known once observing."""

    # -- the driving side ----------------------------------------------------------------
    async def ask(self, planned: PlannedRequest, token: str) -> None:
        try:
            async with self.http.post(
                self.intake + "/v1/support-requests",
                json=planned.body(),
                headers={"Authorization": "Bearer " + token},
            ) as answer:
                now = time.perf_counter()
                if answer.status != 201:
                    self.errors[f"request {answer.status}"] += 1
                    return
                case_id = uuid.UUID((await answer.json())["case_id"])
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors[f"request {type(exc).__name__}"] += 1
            return
        self.hops.accepted[case_id] = now

    async def accept(self, case_id: uuid.UUID, offer_id: str, peer: str) -> None:
        """Take the case; a peer matching refuses (409, e.g. at capacity) declines instead,
        as a real one would, and the next peer offered the case accepts it."""
        token = self.peer_tokens.get(peer)
        if token is None:
            self.errors["offer to an unknown peer"] += 1
            return
        bearer = {"Authorization": "Bearer " + token}
        try:
            async with self.http.post(
                f"{self.matching}/v1/offers/{offer_id}/accept", headers=bearer
            ) as answer:
                now = time.perf_counter()
                status = answer.status
                # A refusal is application/problem+json: read it whatever its content type.
                refusal = await answer.json(content_type=None) if status == 409 else None
                await answer.read()
            if refusal is not None:
                self.refused[refusal.get("detail", "")[:80]] += 1
                self.redo.add(case_id)
                async with self.http.post(
                    f"{self.matching}/v1/offers/{offer_id}/decline", headers=bearer
                ) as declined:
                    await declined.read()  # read whole, so the connection is kept
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors[f"accept {type(exc).__name__}"] += 1
            return
        if status != 200:
            self.errors[f"accept {status}"] += 1
            return
        self.hops.answered[case_id] = now

    async def run_phase(
        self,
        phase: Phase,
        requests: list[tuple[PlannedRequest, str]],
        drain_timeout_s: float,
        on_sent: Callable[[], None] = lambda: None,
    ) -> PhaseOutcome:
        """Offer ``phase``'s requests open-loop, then wait (bounded) for every offer and case."""
        before = set(self.hops.accepted)
        cpu_before, started = time.process_time(), time.perf_counter()

        async def send(i: int) -> None:
            await self.ask(*requests[i])
            on_sent()

        paced = await open_loop(phase, send, time.perf_counter)
        cases = [c for c in self.hops.accepted if c not in before]
        drained = await self._drain(cases, drain_timeout_s)
        cpu = (time.process_time() - cpu_before) / max(1e-9, time.perf_counter() - started)
        h = self.hops
        mine = {c: h.accepted[c] for c in cases}
        offered_times = [h.offered[c] for c in cases if c in h.offered]
        answered = {c: h.answered[c] for c in cases if c in h.answered}
        return PhaseOutcome(
            phase=phase,
            cases=cases,
            offer=match(mine, h.offered),
            case_open=match(answered, h.opened),
            intake_relay=match(mine, h.requested),
            matching_hop=match({c: h.requested[c] for c in cases if c in h.requested}, h.offered),
            matched_hop=match(answered, h.matched),
            sessions_hop=match({c: h.matched[c] for c in cases if c in h.matched}, h.opened),
            achieved_rps=achieved_rate(started, offered_times),
            offered_rps=paced.offered_rps,
            pacing_lag_ms=paced.worst_lag_s * 1000,
            generator_cpu=cpu,
            drained=drained,
        )

    async def _drain(self, cases: list[uuid.UUID], timeout_s: float) -> bool:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            waiting_offer = [c for c in cases if c not in self.hops.offered]
            waiting_case = [
                c for c in cases if c in self.hops.answered and c not in self.hops.opened
            ]
            if not waiting_offer and not waiting_case and not self._accepts and not self.redo:
                return True
            await asyncio.sleep(0.02)
        return False

    # -- the observing side --------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def observing(self) -> AsyncIterator[None]:
        """The bus observer and the case poller run while the block runs."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        conn = await asyncpg.connect(self.database_url)
        self._stopping.clear()
        try:
            partitions = await topic_partitions(self.kafka_bootstrap, OBSERVED)
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:
                await consumer.position(tp)  # fix the start before any request is sent
            tasks = [
                asyncio.ensure_future(self._observe(consumer)),
                asyncio.ensure_future(self._poll_cases(conn)),
            ]
            try:
                yield
            finally:
                self._stopping.set()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, *self._accepts, return_exceptions=True)
        finally:
            await conn.close()
            await consumer.stop()

    async def _observe(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    self._seen(record, now)

    def _seen(self, record: ConsumerRecord, now: float) -> None:
        kind = dict(record.headers or ()).get("ce_type", b"").decode()
        data = json.loads(record.value)
        case_id = uuid.UUID(data["case_id"])
        if kind == SupportRequested.event_type:
            self.hops.requested.setdefault(case_id, now)
        elif kind == OfferMade.event_type and (
            case_id not in self.hops.offered or case_id in self.redo
        ):
            self.hops.offered.setdefault(case_id, now)  # #2 times the first offer
            self.redo.discard(case_id)
            self.peer_of[case_id] = data["peer"]
            task = asyncio.ensure_future(self.accept(case_id, data["offer_id"], data["peer"]))
            self._accepts.add(task)
            task.add_done_callback(self._accepts.discard)
        elif kind == PeerMatched.event_type:
            self.hops.matched.setdefault(case_id, now)

    async def _poll_cases(self, conn: asyncpg.Connection) -> None:
        exact = bool(await conn.fetchval("SELECT current_setting('track_commit_timestamp')::bool"))
        self.exact_case_times = exact
        query = COMMITTED_AT if exact else POLLED_AT
        while not self._stopping.is_set():
            waiting = [c for c in self.hops.answered if c not in self.hops.opened]
            if waiting:
                rows = await conn.fetch(query, waiting)
                now = time.perf_counter()
                wall_to_monotonic = now - time.time()
                for row in rows:
                    at = now if row["at"] is None else float(row["at"]) + wall_to_monotonic
                    # Never before the accept was answered: this process may have been slow to
                    # note the answer, not sessions quicker than matching's commit.
                    self.hops.opened[row["case_id"]] = max(at, self.hops.answered[row["case_id"]])
            await asyncio.sleep(POLL_S[exact])
