"""PNG plots of a run: latency CDFs, throughput against its ceiling, growth with roster size."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI or here

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
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
    ax.plot(
        sizes, outcome.series["raw_ms"], "s--", color="#888888", label="raw indexed read (baseline)"
    )
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


def http_load(outcome: Outcome, path: Path) -> Path | None:
    """Intake over HTTP: achieved against offered rate (and p99), then the latency CDF at 70%."""
    offered = outcome.series.get("offered_rps", [])
    samples = sorted(outcome.series.get("latency_ms", []))
    if not offered or not samples:
        return None
    fig, (rates, cdf) = plt.subplots(1, 2, figsize=(11, 4.2))
    rates.plot(offered, outcome.series["achieved_rps"], "o-", label="intake: achieved")
    rates.plot(offered, offered, ":", color="#555555", label="achieved = offered")
    if outcome.baseline is not None:
        bare = outcome.baseline.median
        rates.axhline(bare, color="#888888", linestyle="--", label=f"bare saturation ({bare:.0f})")
        rates.axhline(bare * 0.7, color="#c0392b", linestyle="--", label="goal #1: 0.7 x bare")
    saturation = outcome.metrics["saturation_rps"].median
    rates.axhline(saturation, color="#2a6f97", linestyle=":", label="intake saturation")
    rates.set_xlim(left=0)
    rates.set_ylim(bottom=0)
    rates.set_xlabel("offered rate (requests/s, open loop)")
    rates.set_ylabel("achieved rate (requests/s)")
    rates.grid(True, alpha=0.3)
    p99 = rates.twinx()
    p99.plot(offered, outcome.series["p99_ms"], "s--", color="#e67e22", label="intake p99")
    p99.set_yscale("log")
    p99.set_ylabel("p99 (ms, log scale)")
    lines = rates.get_legend_handles_labels()
    more = p99.get_legend_handles_labels()
    rates.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    rates.set_title("Throughput against offered load (median run)")
    cdf.plot(samples, [(i + 1) / len(samples) for i in range(len(samples))], drawstyle="steps-post")
    cdf.axvline(50.0, color="#c0392b", linestyle="--", label="goal #1: p99 ≤ 50 ms")
    cdf.axhline(0.99, color="#888888", linestyle=":", label="p99")
    cdf.set_xscale("log")
    cdf.set_xlabel("request latency (ms, log scale)")
    cdf.set_ylabel("fraction of requests")
    cdf.set_title(f"Latency CDF at 70% of saturation ({len(samples)} requests)")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def stack_load(outcome: Outcome, path: Path) -> Path | None:
    """Goal #2 through the stack: achieved against offered rate with p99, and the CDF at 200/s."""
    offered = outcome.series.get("offered_rps", [])
    samples = sorted(outcome.series.get("latency_ms", []))
    if not offered or not samples:
        return None
    fig, (rates, cdf) = plt.subplots(1, 2, figsize=(11, 4.2))
    rates.plot(offered, outcome.series["achieved_rps"], "o-", label="offers published: achieved")
    rates.plot(offered, offered, ":", color="#555555", label="achieved = offered")
    rates.set_xlim(left=0)
    rates.set_ylim(bottom=0)
    rates.set_xlabel("offered rate (support requests/s, open loop)")
    rates.set_ylabel("achieved rate (offers/s)")
    rates.grid(True, alpha=0.3)
    p99 = rates.twinx()
    p99.plot(offered, outcome.series["p99_ms_by_rate"], "s--", color="#e67e22", label="p99")
    p99.axhline(100.0, color="#c0392b", linestyle="--", label="goal #2: p99 ≤ 100 ms")
    p99.set_yscale("log")
    p99.set_ylabel("request to offer p99 (ms, log scale)")
    lines, more = rates.get_legend_handles_labels(), p99.get_legend_handles_labels()
    rates.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    rates.set_title("Throughput against offered load (median run)")
    _cdf(cdf, samples, "request accepted to offer published (ms, log scale)")
    cdf.axvline(25.0, color="#e67e22", linestyle="--", label="goal #2: p50 ≤ 25 ms")
    cdf.axvline(100.0, color="#c0392b", linestyle="--", label="goal #2: p99 ≤ 100 ms")
    cdf.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def case_open_cdf(outcome: Outcome, path: Path) -> Path | None:
    samples = sorted(outcome.series.get("latency_ms", []))
    if not samples:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4))
    _cdf(ax, samples, "accept answered to case open in sessions (ms, log scale)")
    ax.axvline(100.0, color="#c0392b", linestyle="--", label="goal #3: p99 ≤ 100 ms")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def analytics_queries(outcome: Outcome, path: Path) -> Path | None:
    """Goal #8: each query's warm p99 (stored answers) beside its cold computation."""
    names = [k.split(":", 1)[1] for k in outcome.metrics if k.startswith("cold_ms:")]
    if not names:
        return None
    cold = [outcome.metrics[f"cold_ms:{n}"].median for n in names]
    warm = [outcome.metrics[f"p99_ms:{n}"].median for n in names]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    places = range(len(names))
    ax.barh([p + 0.2 for p in places], cold, height=0.4, color="#888888", label="cold (first)")
    ax.barh([p - 0.2 for p in places], warm, height=0.4, color="#2a6f97", label="warm p99")
    ax.axvline(200, color="#c0392b", linestyle="--", label="goal #8: 200 ms")
    ax.set_yticks(list(places), names)
    ax.set_xscale("log")
    ax.set_xlabel("ms (log scale, median run)")
    ax.set_title("Analytics queries: stored answers against a cold computation")
    ax.legend(loc="lower right")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return _save(fig, path)


def _cdf(ax: Axes, samples: list[float], xlabel: str) -> None:
    # A log axis cannot show 0 ms (an answer that raced its own response): drawn at 0.1 ms.
    shown = [max(0.1, v) for v in samples]
    ax.plot(shown, [(i + 1) / len(shown) for i in range(len(shown))], drawstyle="steps-post")
    ax.axhline(0.99, color="#888888", linestyle=":", label="p99")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of cases")
    ax.set_title(f"Latency CDF at the goal's rate ({len(samples)} cases, median run)")
    ax.grid(True, which="both", alpha=0.3)


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
    if "intake_http" in outcomes:
        drawn["intake_http"] = http_load(outcomes["intake_http"], folder / "intake_http_load.png")
    if "stack_offer_latency" in outcomes:
        drawn["stack_offer_latency"] = stack_load(
            outcomes["stack_offer_latency"], folder / "stack_offer_latency.png"
        )
    if "stack_case_open" in outcomes:
        drawn["stack_case_open"] = case_open_cdf(
            outcomes["stack_case_open"], folder / "stack_case_open_cdf.png"
        )
    if "analytics_dashboard" in outcomes:
        drawn["analytics_dashboard"] = analytics_queries(
            outcomes["analytics_dashboard"], folder / "analytics_queries.png"
        )
    return {name: path for name, path in drawn.items() if path is not None}
