"""The run's record: results JSON, plots, and BENCHMARKS.md regenerated from them."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from huddle_bench.model import Outcome, Stat
from huddle_bench.registry import MEASURES
from huddle_bench.scale import scale_section
from huddle_bench.smoke import SMOKE_LIMITS, SmokeLimit, Verdict, best_ratio

# Parts of issue #6 this slice does not measure yet; listed so the report never overstates.
NOT_YET: tuple[str, ...] = ()


@dataclasses.dataclass
class Report:
    command: str
    mode: str
    runs: int
    seed: int
    started_at: datetime
    wall_s: float
    machine: dict[str, Any]
    outcomes: list[Outcome]
    verdicts: list[Verdict]
    plots: dict[str, Path] = dataclasses.field(default_factory=dict)


def fmt(value: float) -> str:
    """Three significant figures, thousands separated; readable in a table."""
    if value != value:  # NaN
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def stat(s: Stat | None, unit: str = "") -> str:
    if s is None:
        return "-"
    suffix = f" {unit}" if unit else ""
    if s.n == 1:
        return f"{fmt(s.median)}{suffix}"
    return f"{fmt(s.median)}{suffix} [{fmt(s.min)} - {fmt(s.max)}]"


def met(outcome: Outcome) -> str:
    if outcome.goal_met is None:
        return "-"
    return "yes" if outcome.goal_met else "**no**"


def to_json(report: Report) -> dict[str, Any]:
    def outcome(o: Outcome) -> dict[str, Any]:
        data = dataclasses.asdict(o)
        # Per-run series would bloat the file; the median run's series is kept at the top.
        for run in data["runs"]:
            run.pop("series", None)
        return data

    return {
        "command": report.command,
        "mode": report.mode,
        "runs": report.runs,
        "seed": report.seed,
        "started_at": report.started_at.isoformat(),
        "wall_s": round(report.wall_s, 1),
        "machine": report.machine,
        "measures": {o.name: outcome(o) for o in report.outcomes},
        "smoke": [dataclasses.asdict(v) for v in report.verdicts],
    }


def write_json(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n")
    return path


def _machine(m: dict[str, Any]) -> list[str]:
    libs = ", ".join(f"{k} {v}" for k, v in m.get("libraries", {}).items())
    memory = m.get("memory_gib")
    rows = [
        ("CPU", f"{m.get('cpu')} ({m.get('cores')} cores)"),
        ("Memory", f"{memory} GiB" if memory else "unknown"),
        ("OS", m.get("os")),
        ("Python", m.get("python")),
        ("Kafka", m.get("kafka")),
        (
            "PostgreSQL",
            str(m.get("postgres"))
            + (f" (server {m['postgres_version']})" if "postgres_version" in m else ""),
        ),
        ("Libraries", libs),
        (
            "Server start-up",
            ", ".join(f"{k} {v} s" for k, v in m.get("server_startup_s", {}).items()) or "-",
        ),
    ]
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def _summary(outcomes: Sequence[Outcome]) -> list[str]:
    lines = [
        "| goal | measure | result | baseline (same run) | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        result = f"{o.headline_label}: {stat(o.metrics.get(o.headline), o.unit)}"
        base = f"{o.baseline_label}: {stat(o.baseline)}" if o.baseline is not None else "-"
        ratio = f"{o.ratio_label}: {stat(o.ratio)}" if o.ratio is not None else "-"
        lines.append(
            f"| {o.goal_id or 'baseline'} | `{o.name}` | {result} | {base} | {ratio} "
            f"| {o.goal} | {met(o)} |"
        )
    return lines


def _measure(o: Outcome, plot: Path | None, root: Path) -> list[str]:
    about = MEASURES[o.name].about if o.name in MEASURES else ""
    lines = [f"### `{o.name}`: {o.title}", "", about, ""]
    lines += ["| metric | median | min | max |", "|---|---|---|---|"]
    for key, s in o.metrics.items():
        lines.append(f"| {key} | {fmt(s.median)} | {fmt(s.min)} | {fmt(s.max)} |")
    lines.append("")
    checks = sorted({k for r in o.runs for k in r.checks})
    if checks:
        for name in checks:
            ok = all(r.checks.get(name, True) for r in o.runs)
            lines.append(f"- Check, every run: {name}: {'holds' if ok else '**FAILS**'}")
        lines.append("")
    if plot is not None:
        lines += [f"![{o.name}]({os.path.relpath(plot, root)})", ""]
    if o.limits:
        lines += ["What limits it:", "", *(f"- {note}" for note in o.limits), ""]
    return lines


def _smoke(verdicts: Sequence[Verdict], outcomes: Sequence[Outcome]) -> list[str]:
    by_name = {o.name: o for o in outcomes}
    lines = [
        "`make bench-smoke` fails when a ratio crosses its limit (its best run is checked), or "
        "when an invariant fails; never on an absolute time. Limits sit well clear of what the "
        "smoke run measures here.",
        "",
        "| measure | ratio | limit | smoke run when set | this run |",
        "|---|---|---|---|---|",
    ]
    for limit in SMOKE_LIMITS.values():
        o = by_name.get(limit.measure)
        now = best_ratio(o, limit) if o is not None else None
        lines.append(
            f"| `{limit.measure}` | {_ratio_label(limit)} | {_bound(limit)} | {limit.measured} "
            f"| {fmt(now) if now is not None else 'not run'} |"
        )
    if verdicts:
        lines += ["", "This run:", ""]
        lines += [
            f"- `{v.measure}`: {'ok' if v.ok else '**FAILED**'}: {v.message}" for v in verdicts
        ]
    return lines


def _ratio_label(limit: SmokeLimit) -> str:
    measure = MEASURES.get(limit.measure)
    return measure.ratio_label or "" if measure else ""


def _bound(limit: SmokeLimit) -> str:
    return f"{'≥' if limit.bound == 'floor' else '≤'} {limit.value:g}"


def markdown(report: Report, root: Path) -> str:
    when = report.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Huddle benchmarks",
        "",
        "<!-- Generated by `python -m huddle_bench run`; edit benchmarks/, not this file. -->",
        "",
        f"Command: `{report.command}` ({report.mode}, {report.runs} run(s) of each measure, "
        f"seed {report.seed}), {when}, {report.wall_s / 60:.1f} min wall time.",
        "",
        "Every result is the median of the runs with [min - max], and every ratio is taken run by "
        "run against a raw baseline measured in the same run on the same machine. Traffic stays "
        "on loopback; data is synthetic and seeded.",
        "",
        "## Machine",
        "",
        *_machine(report.machine),
        "",
        "## Results",
        "",
        *_summary(report.outcomes),
        "",
        "## Measures",
        "",
    ]
    for o in report.outcomes:
        lines += _measure(o, report.plots.get(o.name), root)
    lines += scale_section(report.outcomes)
    lines += ["## Smoke limits", "", *_smoke(report.verdicts, report.outcomes), ""]
    if NOT_YET:
        lines += ["## Not measured yet", "", *(f"- {item}" for item in NOT_YET), ""]
    lines += [
        "## Reproduce",
        "",
        "```",
        "make bench          # the full suite: this file, benchmarks/results, benchmarks/plots",
        "make bench-smoke    # the CI-sized suite: ratios against smoke limits",
        "uv run --frozen python -m huddle_bench run --only matching_decision --runs 3",
        "```",
        "",
        "Set `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` to measure against servers of your own "
        "instead of the ones the suite starts on loopback.",
        "",
    ]
    return "\n".join(lines)


def write_markdown(report: Report, path: Path, root: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(report, root))
    return path
