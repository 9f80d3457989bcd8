"""The stack measures without the stack: the simulated network, the pacing, the matching of each
request to its offer (against a small fake of intake and matching on loopback), and the scale-out
arithmetic."""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka import ConsumerRecord
from huddle_bench.load import Phase, achieved_rate, match, open_loop, schedule
from huddle_bench.model import Outcome, RunResult
from huddle_bench.network import (
    NetworkShape,
    directory_csv,
    plan_requests,
    simulate_network,
)
from huddle_bench.pipeline import Pipeline
from huddle_bench.registry import MEASURES, summarise
from huddle_bench.scale import Demand, partitions_for, plan, replicas_for, scale_section
from huddle_contracts.events import OfferMade, SupportRequested
from huddle_contracts.vocabulary import Urgency
from huddle_runtime.outbox import outbox_message

SHAPE = NetworkShape(hospitals=6, staff_per_hospital=900)
PEER = "p_" + "ab" * 16

# --------------------------------------------------------------------------- the network


def test_the_same_seed_gives_the_same_network_and_another_seed_another() -> None:
    assert simulate_network("n", SHAPE, seed=1) == simulate_network("n", SHAPE, seed=1)
    assert simulate_network("n", SHAPE, seed=1) != simulate_network("n", SHAPE, seed=2)


def test_the_network_has_the_proportions_of_a_real_programme() -> None:
    network = simulate_network("n", SHAPE, seed=3)
    sizes = [len(h.staff) for h in network.hospitals]
    assert statistics.fmean(sizes) == pytest.approx(SHAPE.staff_per_hospital, rel=0.05)
    assert max(sizes) > 1.5 * min(sizes)  # a teaching hospital and community ones
    for hospital in network.hospitals:
        assert len(hospital.peers) == len(hospital.staff) // SHAPE.staff_per_peer
        assert len({s.unit_id for s in hospital.staff}) >= 3
        assert {p.hospital_id for p in hospital.peers} == {hospital.hospital_id}
    disciplines = Counter(s.discipline.value for s in network.staff)
    assert disciplines.most_common(1)[0][0] == "nurse"
    on_call = sum(p.on_call for p in network.peers) / len(network.peers)
    assert 0.2 < on_call < 0.5
    managers = {s.manager_ref for s in network.staff if s.manager_ref}
    assert not managers & {p.staff_ref for p in network.peers}


def test_requests_come_from_distinct_staff_who_are_not_peers_a_quarter_urgent() -> None:
    network = simulate_network("n", SHAPE, seed=4)
    planned = plan_requests(network, 1_000, seed=5)
    assert len({r.staff_ref for r in planned}) == 1_000
    assert not {r.staff_ref for r in planned} & {p.staff_ref for p in network.peers}
    urgent = sum(r.urgency is Urgency.URGENT for r in planned) / len(planned)
    assert 0.2 < urgent < 0.3
    assert plan_requests(network, 50, seed=5) == plan_requests(network, 50, seed=5)
    with pytest.raises(ValueError, match="staff who are not peers"):
        plan_requests(network, len(network.staff), seed=5)


def test_the_directory_holds_the_askers_every_peer_and_their_managers() -> None:
    network = simulate_network("n", SHAPE, seed=6)
    planned = plan_requests(network, 20, seed=7)
    rows = directory_csv(network, planned).splitlines()
    assert rows[0].startswith("staff_ref,hospital_id,unit_id,discipline,manager_ref")
    listed = {row.split(",")[0] for row in rows[1:]}
    by_ref = {s.staff_ref: s for s in network.staff}
    people = {r.staff_ref for r in planned} | {p.staff_ref for p in network.peers}
    managers = {by_ref[ref].manager_ref for ref in people} - {None}
    assert people | managers == listed


# --------------------------------------------------------------------------- pacing


class FakeTime:
    """A clock that only moves when the generator sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)  # requests started so far run at the time they were started
        self.now += seconds


def test_requests_are_due_evenly_at_the_offered_rate() -> None:
    assert schedule(Phase(rate=4, count=3), start=10.0) == [10.0, 10.25, 10.5]
    assert Phase(rate=200, count=1_000).seconds == 5.0


async def test_the_open_loop_starts_each_request_on_time_whatever_the_answers() -> None:
    fake = FakeTime()
    started: list[float] = []
    answer = asyncio.Event()

    async def send(i: int) -> None:
        started.append(fake.clock())
        await answer.wait()  # no answer until every request has been started

    loop = asyncio.ensure_future(open_loop(Phase(rate=50, count=5), send, fake.clock, fake.sleep))
    while len(started) < 5:
        await asyncio.sleep(0)
    answer.set()
    paced = await loop
    assert started == pytest.approx(schedule(Phase(rate=50, count=5), start=100.0))
    assert paced.offered_rps == pytest.approx(50)
    assert paced.worst_lag_s == pytest.approx(0)


async def test_a_slow_server_does_not_slow_the_offered_load() -> None:
    async def slow(i: int) -> None:
        await asyncio.sleep(0.3)

    began = time.perf_counter()
    paced = await open_loop(Phase(rate=100, count=10), slow, time.perf_counter)
    # Closed loop would take 10 x 0.3 s; open loop 0.09 s of starts plus one answer.
    assert time.perf_counter() - began < 1.0
    assert paced.offered_rps > 50


# --------------------------------------------------------------------------- latencies


def test_latencies_match_each_key_to_its_own_completion() -> None:
    started = {"a": 1.000, "b": 1.010, "c": 1.020, "d": 1.030}
    finished = {"b": 1.060, "a": 1.015, "c": 1.019, "z": 0.5}
    latencies = match(started, finished)
    assert latencies.samples_ms == pytest.approx([15.0, 50.0, 0.0])
    assert (latencies.missing, latencies.early) == (1, 1)
    assert latencies.p(50) == pytest.approx(15.0)


def test_the_achieved_rate_runs_from_the_first_request_to_the_last_completion() -> None:
    assert achieved_rate(10.0, [10.5, 11.0, 12.0]) == pytest.approx(1.5)
    assert achieved_rate(10.0, []) == 0.0


def _record(event: SupportRequested | OfferMade, offset: int) -> ConsumerRecord[bytes, bytes]:
    message = outbox_message(event, source="/huddle/test")
    return ConsumerRecord(
        topic=message.topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=message.key,
        value=message.value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=len(message.value),
        headers=tuple(message.headers),
    )


@asynccontextmanager
async def fake_services(
    answer: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[Pipeline]:
    """A pipeline whose intake and matching are one small HTTP server on loopback."""
    app = web.Application()
    app.router.add_route("POST", "/{path:.*}", answer)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        url = str(server.make_url("")).rstrip("/")
        yield Pipeline(
            http=http,
            intake=url,
            matching=url,
            kafka_bootstrap="unused",
            database_url="unused",
            peer_tokens={PEER: "token-of-peer-1"},
        )


async def test_each_request_is_timed_to_the_offermade_of_its_own_case_and_accepted() -> None:
    cases = [uuid.uuid4() for _ in range(3)]
    accepted: list[str] = []

    async def server(request: web.Request) -> web.Response:
        if request.path == "/v1/support-requests":
            body = await request.json()
            return web.json_response({"case_id": str(cases[int(body["unit_id"][-1])])}, status=201)
        accepted.append(request.headers["Authorization"])
        return web.json_response({})

    now = datetime(2026, 11, 26, 10, tzinfo=UTC)
    async with fake_services(server) as pipeline:
        network = simulate_network("n", SHAPE, seed=8)
        for i, planned in enumerate(plan_requests(network, 3, seed=9)):
            await pipeline.ask(dataclasses.replace(planned, unit_id=f"u{i}"), "token")
        # Offers arrive out of order, one case never gets one.
        for offset, case_id in enumerate((cases[2], cases[0])):
            offer = OfferMade(
                network_id="n",
                hospital_id="hospital-01",
                case_id=case_id,
                offer_id=uuid.uuid4(),
                peer=PEER,
                urgency=Urgency.URGENT,
                offered_at=now,
                respond_by=now + timedelta(minutes=10),
            )
            pipeline._seen(_record(offer, offset), now=pipeline.hops.accepted[case_id] + 0.02)
        await asyncio.gather(*pipeline._accepts)
    latencies = match(pipeline.hops.accepted, pipeline.hops.offered)
    assert latencies.samples_ms == pytest.approx([20.0, 20.0])
    assert latencies.missing == 1
    assert accepted == ["Bearer token-of-peer-1"] * 2
    assert set(pipeline.hops.answered) == {cases[0], cases[2]}
    assert pipeline.peer_of[cases[0]] == PEER
    assert not pipeline.errors


async def test_a_refused_accept_is_declined_and_the_next_offer_of_the_case_accepted() -> None:
    case_id, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    calls: list[str] = []

    async def server(request: web.Request) -> web.Response:
        calls.append(request.path)
        if request.path == f"/v1/offers/{first}/accept":
            return web.json_response(
                {"detail": "you are at your active-case capacity"},
                status=409,
                content_type="application/problem+json",
            )
        if request.path.endswith("decline"):
            return web.Response(status=204)
        return web.json_response({})

    now = datetime(2026, 11, 26, 10, tzinfo=UTC)
    async with fake_services(server) as pipeline:
        for offset, offer_id in enumerate((first, second)):
            offer = OfferMade(
                network_id="n",
                hospital_id="hospital-01",
                case_id=case_id,
                offer_id=offer_id,
                peer=PEER,
                urgency=Urgency.ROUTINE,
                offered_at=now,
                respond_by=now + timedelta(hours=4),
            )
            pipeline._seen(_record(offer, offset), now=10.0 + offset)
            await asyncio.gather(*pipeline._accepts)
    assert calls == [
        f"/v1/offers/{first}/accept",
        f"/v1/offers/{first}/decline",
        f"/v1/offers/{second}/accept",
    ]
    assert pipeline.hops.offered[case_id] == 10.0  # goal #2 times the first offer
    assert case_id in pipeline.hops.answered and not pipeline.redo
    assert pipeline.refused == Counter({"you are at your active-case capacity": 1})


# --------------------------------------------------------------------------- scale-out


def test_replicas_and_partitions_follow_the_written_arithmetic() -> None:
    demand = Demand()
    assert demand.requests_per_s(10) == pytest.approx(10 * 2500 * 0.2 / 3600 + 2000 / 600)
    assert replicas_for(100, per_replica_per_s=50, headroom=2) == 4
    assert replicas_for(0.1, per_replica_per_s=50, headroom=2) == 1
    assert [partitions_for(r, demand) for r in (1, 3, 4, 7, 13)] == [6, 6, 12, 18, 30]
    big = plan(1_000, pipeline_rps=25, analytics_eps=300)
    assert big.requests_per_s == pytest.approx(142.2, abs=0.1)
    assert big.events_per_s == pytest.approx(big.requests_per_s * 7)
    assert big.pipeline_replicas == 12  # ⌈142.2 x 2 ÷ 25⌉
    assert big.analytics_replicas == 7  # ⌈995.6 x 2 ÷ 300⌉
    assert big.partitions == 24
    with pytest.raises(ValueError, match="must complete something"):
        replicas_for(1, per_replica_per_s=0, headroom=2)


def _outcome(
    name: str, runs: list[dict[str, float]], base: list[dict[str, float]] | None = None
) -> Outcome:
    measure = MEASURES[name]
    return summarise(
        measure,
        [RunResult(metrics=m) for m in runs],
        None if base is None else [RunResult(metrics=m) for m in base],
    )


def test_the_scale_section_shows_the_measured_rates_and_the_sums() -> None:
    offer = _outcome(
        "stack_offer_latency",
        [{"p50_ms": 20, "p99_ms": 80, "saturation_rps": 25}],
        [{"p99_ms": 20}],
    )
    scaled = _outcome(
        "stack_scale_out",
        [{"two_replicas_eps": 540, "one_replica_eps": 300, "speedup": 1.8}],
    )
    text = "\n".join(scale_section([offer, scaled]))
    assert "## Scale beyond one machine" in text
    assert "| 1,000 | 142.2 | 996 | ⌈142.2 x 2 ÷ 25⌉ = 12 | ⌈996 x 2 ÷ 300⌉ = 7 | 24 |" in text
    assert "1.80 x" in text
    assert scale_section([offer]) == []
    assert scaled.ratio is not None and scaled.ratio.median == pytest.approx(1.8)
    assert scaled.goal_met is True


def test_smoke_measures_no_scale_out_and_the_report_says_nothing_of_it() -> None:
    offer = _outcome(
        "stack_offer_latency",
        [{"p50_ms": 20, "p99_ms": 80, "saturation_rps": 25}],
        [{"p99_ms": 20}],
    )
    scaled = _outcome("stack_scale_out", [{}, {}])
    assert scaled.ratio is None and scaled.goal_met is None
    assert scale_section([offer, scaled]) == []


def test_goal_two_needs_p50_p99_and_the_ratio_to_the_raw_round_trip() -> None:
    met = _outcome("stack_offer_latency", [{"p50_ms": 20, "p99_ms": 90}], [{"p99_ms": 20}])
    assert met.goal_met is True
    too_slow_for_kafka = _outcome(
        "stack_offer_latency", [{"p50_ms": 20, "p99_ms": 90}], [{"p99_ms": 10}]
    )
    assert too_slow_for_kafka.goal_met is False  # 9 x the raw round trip
    assert _outcome("stack_case_open", [{"p99_ms": 101}], [{"p99_ms": 20}]).goal_met is False
    memory = _outcome("service_memory", [{"peak_mb": 151, "bare_mb": 57, "hwm_mb_intake": 151}])
    assert memory.goal_met is False
    assert "Over the goal" in memory.limits[0]
