"""Goal #1's harness without servers: the requests, vegeta's targets and results, the search."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from huddle_bench.http_load import (
    NO_TARGETS,
    Load,
    Report,
    Step,
    Target,
    VegetaMissing,
    attack,
    parse_latencies,
    parse_report,
    saturation,
    vegeta_path,
    write_targets,
)
from huddle_bench.measures.intake_http import MEASURES, self_referrals, targets
from huddle_bench.model import RunResult
from huddle_bench.registry import summarise
from huddle_intake.entrypoints.http import SupportRequestCreate
from huddle_local.issuer import LocalIssuer
from huddle_runtime.auth import Role, TokenVerifier
from huddle_runtime.settings import AuthSettings

# What `vegeta report -type=json` writes (v12.13.0), trimmed to the fields a step reads and more.
REPORT = {
    "latencies": {"total": 9_000_000, "mean": 3_000_000, "50th": 2_000_000, "99th": 5_000_000},
    "bytes_in": {"total": 300, "mean": 100},
    "bytes_out": {"total": 600, "mean": 200},
    "earliest": "2026-11-26T14:00:00Z",
    "latest": "2026-11-26T14:00:01Z",
    "end": "2026-11-26T14:00:01.005Z",
    "duration": 1_000_000_000,
    "wait": 5_000_000,
    "requests": 4,
    "rate": 4.0,
    "throughput": 2.98,
    "success": 0.75,
    "status_codes": {"0": 1, "201": 3},
    "errors": [NO_TARGETS],
}
# `vegeta encode -to=csv`: timestamp, code, latency (ns), bytes out, bytes in, error, body, ...
CSV = "\n".join(
    [
        "1764165600000000000,201,2000000,200,100,,,,0,POST,http://127.0.0.1:1/x,",
        "1764165600250000000,201,1500000,200,100,,,,1,POST,http://127.0.0.1:1/x,",
        "1764165600500000000,201,5000000,200,100,,,,2,POST,http://127.0.0.1:1/x,",
        f"1764165600750000000,0,0,0,0,{NO_TARGETS},,,3,,,",
    ]
)


def test_every_self_referral_is_a_distinct_request_intake_accepts(tmp_path: Path) -> None:
    issuer = LocalIssuer(tmp_path / "issuer")
    referrals = self_referrals(issuer, 40, seed=6)
    verifier = TokenVerifier(AuthSettings(jwks_file=str(issuer.jwks_path)))

    async def principals() -> list[tuple[str, str | None, frozenset[Role]]]:
        found = [await verifier.verify(r.token) for r in referrals]
        return [(p.subject, p.hospital_id, p.roles) for p in found]

    callers = asyncio.run(principals())
    assert len({subject for subject, _, _ in callers}) == 40  # one worker per request
    assert all(roles == {Role.WORKER} and hospital for _, hospital, roles in callers)
    bodies = [SupportRequestCreate.model_validate_json(r.body) for r in referrals]
    assert all(b.origin == "self" and b.person_ref is None for b in bodies)
    assert {b.urgency for b in bodies} >= {"routine", "urgent"}
    assert [r.body for r in self_referrals(issuer, 40, seed=6)] == [r.body for r in referrals]


def test_targets_are_vegeta_json_lines_with_each_requests_own_body_and_token(
    tmp_path: Path,
) -> None:
    referrals = self_referrals(LocalIssuer(tmp_path / "issuer"), 3, seed=6)
    file = tmp_path / "targets.json"
    assert write_targets(file, targets("http://127.0.0.1:1/v1/support-requests", referrals)) == 3
    lines = [json.loads(line) for line in file.read_text().splitlines()]
    assert [base64.b64decode(t["body"]) for t in lines] == [r.body for r in referrals]
    assert [t["header"]["Authorization"] for t in lines] == [
        [f"Bearer {r.token}"] for r in referrals
    ]
    assert {t["method"] for t in lines} == {"POST"}


def test_vegetas_report_and_results_are_read_without_the_targets_running_out() -> None:
    report = parse_report(json.dumps(REPORT))
    assert report == Report(4, 2.98, 0.75, {"0": 1, "201": 3}, [NO_TARGETS])
    latencies, unsent = parse_latencies(CSV)
    assert latencies == [2.0, 1.5, 5.0] and unsent == 1
    step = Step(Load(duration_s=1), report, latencies, unsent)
    assert step.requests == 3 and step.answered(201) == 3 and step.failures == {}
    assert (step.p50_ms, step.p99_ms) == (2.0, 5.0)


def test_a_closed_loop_pins_concurrency_and_an_open_loop_only_the_rate() -> None:
    closed = Load(duration_s=2, workers=16).arguments()
    assert {"-rate=0", "-workers=16", "-max-workers=16", "-duration=2s"} <= set(closed)
    opened = Load(duration_s=1.5, rate=140.4, workers=10, max_workers=500).arguments()
    assert {"-rate=140/1s", "-max-workers=500", "-duration=1.5s"} <= set(opened)


def fake_step(concurrency: int, throughput: float) -> Step:
    report = Report(100, throughput, 1.0, {"201": 100}, [])
    return Step(Load(duration_s=1, workers=concurrency), report, [1.0] * 100)


@pytest.mark.parametrize(
    ("curve", "tried", "best"),
    [
        ({8: 100, 16: 180, 32: 185, 64: 400}, [8, 16, 32], 32),  # flattens: stop, keep the best
        ({8: 100, 16: 180, 32: 150, 64: 400}, [8, 16, 32], 16),  # falls: the earlier step
        ({8: 100, 16: 200, 32: 300, 64: 400}, [8, 16, 32, 64], 64),  # still rising at the end
    ],
)
def test_saturation_is_the_best_closed_loop_step_once_throughput_stops_rising(
    curve: dict[int, float], tried: list[int], best: int
) -> None:
    async def closed_loop(concurrency: int) -> Step:
        return fake_step(concurrency, curve[concurrency])

    found, steps = asyncio.run(saturation(closed_loop, list(curve)))
    assert [s.load.workers for s in steps] == tried
    assert found.load.workers == best


def run(saturation_rps: float, p99_ms: float, *, ok: bool = True) -> RunResult:
    metrics = {"saturation_rps": saturation_rps, "p99_ms": p99_ms, "p50_ms": 5.0}
    metrics |= {"cpu_ms_per_request": 3.0, "bare_cpu_ms_per_request": 0.6, "rss_mb": 100.0}
    return RunResult(metrics=metrics, checks={"every request answered 201": ok})


def test_goal_one_needs_the_ratio_the_p99_and_every_request_answered() -> None:
    bare, intake = MEASURES
    bare_runs = [RunResult(metrics={"saturation_rps": 1000.0}) for _ in range(3)]
    met = summarise(intake, [run(800, 20), run(750, 30), run(900, 25)], bare_runs)
    assert met.ratio is not None and met.ratio.median == 0.8
    assert met.goal_met is True and not met.limits
    slow = summarise(intake, [run(200, 20)] * 3, bare_runs)
    assert slow.goal_met is False
    assert any("CPU" in note for note in slow.limits)
    assert summarise(intake, [run(800, 80)] * 3, bare_runs).goal_met is False
    assert summarise(intake, [run(800, 20, ok=False)] * 3, bare_runs).goal_met is False


class Created(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Created)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/x"
    httpd.shutdown()


def test_vegeta_sends_each_target_at_most_once_and_reads_every_answer(
    server: str, tmp_path: Path
) -> None:
    try:
        vegeta_path()
    except VegetaMissing:
        pytest.fail("vegeta is missing: run `make bench-tools`")
    file = tmp_path / "step.json"
    write_targets(file, (Target("POST", server, b'{"n": %d}' % i, {}) for i in range(5)))

    step = asyncio.run(attack(file, Load(duration_s=2, rate=50)))
    assert step.requests == 5 and step.answered(201) == 5 and step.failures == {}
    assert step.unsent >= 1 and len(step.latencies_ms) == 5
