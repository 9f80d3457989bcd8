"""PNG plots of a run: latency CDFs, throughput against its ceiling, growth with roster size."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI or here

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from huddle_bench.model import Outcome


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_cdf(outcome: Outcome, path: Path) -> Path | None:
    samples = sorted(outcome.series.get("latency_ms", []))
    if not samples:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(samples, [(i + 1) / len(samples) for i in range(len(samples))], drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set_xlabel("round trip (ms, log scale)")
    ax.set_ylabel("fraction of round trips")
    ax.set_title(f"{outcome.name}: latency CDF ({len(samples)} round trips, median run)")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def throughput_bars(outcomes: dict[str, Outcome], path: Path) -> Path | None:
    pairs = [
        (name, outcomes[name].metrics["msgs_per_s"])
        for name in ("kafka_producer_throughput", "outbox_relay")
        if name in outcomes and "msgs_per_s" in outcomes[name].metrics
    ]
    if not pairs:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4))
    names = [name for name, _ in pairs]
    medians = [s.median for _, s in pairs]
    errors = [[s.median - s.min for _, s in pairs], [s.max - s.median for _, s in pairs]]
    ax.bar(names, medians, yerr=errors, capsize=6, color=["#888888", "#2a6f97"][: len(pairs)])
    ax.set_ylabel("messages per second (median, min-max)")
    ax.set_title("Outbox relay against the raw producer's ceiling")
    if len(pairs) == 2:
        ax.axhline(medians[0] * 0.5, color="#c0392b", linestyle="--", label="goal #6: 0.5 x raw")
        ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def growth(outcome: Outcome, path: Path) -> Path | None:
    sizes = outcome.series.get("size", [])
    if len(sizes) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(sizes, outcome.series["p99_ms"], "o-", label="decision p99")
    ax.plot(sizes, outcome.series["p50_ms"], "o-", label="decision p50")
    ax.plot(sizes, outcome.series["raw_ms"], "s--", color="#888888", label="raw indexed read (baseline)")
    first_size, first_p50 = sizes[0], outcome.series["p50_ms"][0]
    ax.plot(
        sizes,
        [first_p50 * s / first_size for s in sizes],
        ":",
        color="#555555",
        label="linear growth from the smallest",
    )
    ax.axhline(2.0, color="#c0392b", linestyle="--", label="goal #7: p99 ≤ 2 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("peers in the network's roster (100 hospitals, log scale)")
    ax.set_ylabel("ms per decision (log scale)")
    ax.set_title("Matching decision latency against roster size (median run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def surge_split(outcome: Outcome, path: Path) -> Path | None:
    m = outcome.metrics
    if "seconds" not in m or "solver_s" not in m:
        return None
    solver, total = m["solver_s"].median, m["seconds"].median
    parts = [("SciPy's solver", solver), ("rules, scores, reads and writes", total - solver)]
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    left = 0.0
    for label, seconds in parts:
        ax.barh(["surge"], [seconds], left=left, label=f"{label} ({seconds:.2f} s)")
        left += seconds
    ax.axvline(5.0, color="#c0392b", linestyle="--", label="goal #4: 5 s")
    ax.set_xlabel("seconds (median run)")
    ax.set_title(f"Surge: {m['involved'].median:,.0f} staff, where the time goes")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def draw_all(outcomes: dict[str, Outcome], folder: Path) -> dict[str, Path]:
    """Every plot the outcomes allow, by name; relative paths go into the report."""
    drawn: dict[str, Path | None] = {}
    if "kafka_round_trip" in outcomes:
        drawn["kafka_round_trip"] = latency_cdf(
            outcomes["kafka_round_trip"], folder / "kafka_round_trip_cdf.png"
        )
    drawn["outbox_relay"] = throughput_bars(outcomes, folder / "outbox_relay_throughput.png")
    if "matching_decision" in outcomes:
        drawn["matching_decision"] = growth(
            outcomes["matching_decision"], folder / "matching_decision_growth.png"
        )
    if "surge" in outcomes:
        drawn["surge"] = surge_split(outcomes["surge"], folder / "surge_split.png")
    return {name: path for name, path in drawn.items() if path is not None}
