"""HTTP load from vegeta, a constant-rate (open-loop) load generator in its own process.

Each step writes the requests it may send to a JSON targets file (one distinct request per line,
read lazily, so a step never sends more than it was given), runs ``vegeta attack``, then reads
the results back with ``vegeta report -type=json`` (throughput, status codes, errors) and
``vegeta encode -to=csv`` (every request's latency).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import shutil
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from huddle_bench.context import Tracker
from huddle_bench.model import percentile

REPO = Path(__file__).resolve().parents[3]
VEGETA_VERSION = "v12.13.0"
INSTALL_HINT = "run `make bench-tools` (go install github.com/tsenart/vegeta/v12@v12.13.0)"


class VegetaMissing(RuntimeError):
    """vegeta is not installed where the harness looks for it."""


def vegeta_path() -> Path:
    """vegeta in the repository's .tools/bin (where `make bench-tools` puts it), else on PATH."""
    local = REPO / ".tools" / "bin" / "vegeta"
    if local.exists():
        return local
    found = shutil.which("vegeta")
    if found is None:
        raise VegetaMissing(f"vegeta is not installed: {INSTALL_HINT}")
    return Path(found)


@dataclass(frozen=True)
class Target:
    """One HTTP request as vegeta's JSON target format has it."""

    method: str
    url: str
    body: bytes
    headers: dict[str, str]

    def json_line(self) -> str:
        return json.dumps(
            {
                "method": self.method,
                "url": self.url,
                "body": base64.b64encode(self.body).decode(),
                "header": {name: [value] for name, value in self.headers.items()},
            },
            separators=(",", ":"),
        )


def write_targets(path: Path, targets: Iterable[Target]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w") as out:
        for target in targets:
            out.write(target.json_line() + "\n")
            count += 1
    return count


@dataclass(frozen=True)
class Load:
    """A closed loop (``rate`` None: ``workers`` requests always in flight) or an open loop
    (``rate`` requests a second whatever the answers, up to ``max_workers`` in flight)."""

    duration_s: float
    rate: float | None = None
    workers: int = 10
    max_workers: int = 1_000
    timeout_s: float = 10.0

    def arguments(self) -> list[str]:
        if self.rate is None:
            pacing = ["-rate=0", f"-workers={self.workers}", f"-max-workers={self.workers}"]
        else:
            pacing = [
                f"-rate={max(1, round(self.rate))}/1s",
                f"-workers={self.workers}",
                f"-max-workers={self.max_workers}",
            ]
        return [*pacing, f"-duration={self.duration_s:g}s", f"-timeout={self.timeout_s:g}s"]


@dataclass(frozen=True)
class Report:
    """The fields of ``vegeta report -type=json`` a step keeps."""

    requests: int
    throughput: float
    """Successful requests per second, from the first request to the last answer."""
    success: float
    status_codes: dict[str, int]
    errors: list[str]


def parse_report(text: str) -> Report:
    report = json.loads(text)
    return Report(
        requests=int(report["requests"]),
        throughput=float(report["throughput"]),
        success=float(report["success"]),
        status_codes={str(k): int(v) for k, v in (report.get("status_codes") or {}).items()},
        errors=[str(e) for e in report.get("errors") or []],
    )


# What vegeta records when a lazily read targets file runs out: the step's count is reached.
NO_TARGETS = "no targets to attack"


def parse_latencies(text: str) -> tuple[list[float], int]:
    """Every sent request's latency in ms from ``vegeta encode -to=csv`` (third column, ns),
    and how many results only say the targets ran out (the sixth column, the error)."""
    latencies, unsent = [], 0
    for row in csv.reader(io.StringIO(text)):
        if row and row[5] == NO_TARGETS:
            unsent += 1
        elif row:
            latencies.append(int(row[2]) / 1e6)
    return latencies, unsent


@dataclass
class Step:
    """What one attack achieved."""

    load: Load
    report: Report
    latencies_ms: list[float] = field(repr=False)
    unsent: int = 0
    """Results that only say the step's targets ran out (not requests)."""

    @property
    def throughput(self) -> float:
        return self.report.throughput

    @property
    def requests(self) -> int:
        return self.report.requests - self.unsent

    def answered(self, code: int) -> int:
        return self.report.status_codes.get(str(code), 0)

    @property
    def failures(self) -> dict[str, int]:
        """Status codes other than 2xx (0: no answer), without the targets running out."""
        codes = {c: n for c, n in self.report.status_codes.items() if not c.startswith("2")}
        if self.unsent:
            codes["0"] -= self.unsent
        return {c: n for c, n in codes.items() if n}

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)


async def _vegeta(vegeta: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(vegeta),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"vegeta {args[0]} failed ({process.returncode}): {err.decode()[-500:]}")
    return out.decode()


async def attack(
    targets: Path,
    load: Load,
    *,
    once: bool = True,
    bar: Tracker | None = None,
    vegeta: Path | None = None,
) -> Step:
    """Send ``targets`` under ``load``. ``once``: each target at most once (read lazily), and
    the step ends when its duration is up or its targets run out; otherwise round robin."""
    vegeta = vegeta or vegeta_path()
    results = targets.with_suffix(".bin")
    process = await asyncio.create_subprocess_exec(
        str(vegeta),
        "attack",
        "-format=json",
        *(["-lazy"] if once else []),
        "-max-body=0",  # status codes and latencies are enough; bodies are not kept
        f"-targets={targets}",
        f"-output={results}",
        *load.arguments(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiting = asyncio.ensure_future(process.wait())
    while not waiting.done():
        await asyncio.wait({waiting}, timeout=0.25)
        if bar is not None:
            bar.update(min(load.duration_s, loop.time() - started))
    stderr = await process.stderr.read() if process.stderr else b""
    if process.returncode != 0:
        raise RuntimeError(f"vegeta attack failed ({process.returncode}): {stderr.decode()[-500:]}")
    report = parse_report(await _vegeta(vegeta, "report", "-type=json", str(results)))
    latencies, unsent = parse_latencies(await _vegeta(vegeta, "encode", "-to=csv", str(results)))
    results.unlink()
    return Step(load=load, report=report, latencies_ms=latencies, unsent=unsent)


async def saturation(
    closed_loop: Callable[[int], Awaitable[Step]],
    concurrencies: Sequence[int],
    *,
    min_gain: float = 0.05,
) -> tuple[Step, list[Step]]:
    """Closed-loop steps at rising concurrency until throughput stops rising by ``min_gain``:
    the best step's throughput is the saturation rate. Returns the best step and every step."""
    steps: list[Step] = []
    best: Step | None = None
    for concurrency in concurrencies:
        step = await closed_loop(concurrency)
        steps.append(step)
        if best is not None and step.throughput < best.throughput * (1 + min_gain):
            best = max(best, step, key=lambda s: s.throughput)
            break
        best = step
    if best is None:
        raise ValueError("no concurrency to try")
    return best, steps
