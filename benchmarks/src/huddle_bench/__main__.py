"""`python -m huddle_bench run`: the benchmark suite's command line (issue #6)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from huddle_bench.context import Context
from huddle_bench.logs import quiet_logs
from huddle_bench.measure import Measure
from huddle_bench.model import Outcome, RunResult
from huddle_bench.plots import draw_all
from huddle_bench.registry import MEASURES, selected, summarise
from huddle_bench.report import Report, fmt, write_json, write_markdown
from huddle_bench.servers import machine, servers
from huddle_bench.smoke import Verdict, check

REPO = Path(__file__).resolve().parents[3]
BENCH = REPO / "benchmarks"

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Huddle's benchmarks: every result a ratio to a raw baseline measured in the same run.",
)


@dataclass(frozen=True)
class Paths:
    results: Path
    plots: Path
    markdown: Path


def output_paths(out: Path | None, *, smoke: bool, partial: bool) -> Paths:
    """The canonical record (BENCHMARKS.md, results/latest.json, plots/) only for a full run of
    every measure; smoke and partial runs write into a folder of their own unless told."""
    if out is None and not smoke and not partial:
        return Paths(BENCH / "results" / "latest.json", BENCH / "plots", REPO / "BENCHMARKS.md")
    folder = out or BENCH / "results" / ("smoke" if smoke else "partial")
    return Paths(folder / "latest.json", folder / "plots", folder / "BENCHMARKS.md")


async def run_measures(
    ctx: Context, measures: list[Measure], runs: int
) -> dict[str, list[RunResult]]:
    """Run after run, every measure in registry order, so each ratio's numerator and
    denominator are measured minutes apart under the same conditions."""
    results: dict[str, list[RunResult]] = {m.name: [] for m in measures}
    overall = ctx.progress.add_task("benchmarks", total=runs * len(measures))
    for run in range(1, runs + 1):
        for measure in measures:
            ctx.progress.update(overall, description=f"run {run}/{runs}: {measure.name}")
            results[measure.name].append(await measure.run(ctx))
            ctx.progress.advance(overall)
    ctx.progress.update(overall, description="benchmarks done")
    return results


def outcomes_of(measures: list[Measure], results: dict[str, list[RunResult]]) -> list[Outcome]:
    outcomes = []
    for measure in measures:
        base = measure.baseline.measure if measure.baseline else None
        outcomes.append(summarise(measure, results[measure.name], results.get(base or "")))
    return outcomes


def summary_table(outcomes: list[Outcome], verdicts: list[Verdict]) -> Table:
    table = Table(title="Huddle benchmarks")
    for column in ("measure", "result (median)", "ratio to baseline", "goal met", "smoke"):
        table.add_column(column)
    by_measure: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        by_measure.setdefault(verdict.measure, []).append(verdict)
    for o in outcomes:
        headline = o.metrics.get(o.headline)
        mine = by_measure.get(o.name, [])
        table.add_row(
            o.name,
            f"{fmt(headline.median)} {o.unit}" if headline else "-",
            f"{fmt(o.ratio.median)} ({o.ratio_label})" if o.ratio else "-",
            {None: "-", True: "yes", False: "[red]no[/red]"}[o.goal_met],
            "-" if not mine else ("ok" if all(v.ok for v in mine) else "[red]FAILED[/red]"),
        )
    return table


@app.command()
def run(
    smoke: Annotated[
        bool, typer.Option("--smoke", help="CI sizes, 2 runs; fail when a ratio crosses its limit")
    ] = False,
    runs: Annotated[
        int | None, typer.Option("--runs", min=1, help="Runs per measure (default 3, smoke 2)")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only this measure (repeatable); its baseline runs too"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for latest.json, plots/ and BENCHMARKS.md"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every synthetic data set")] = 6,
    backfill_reports: Annotated[
        int | None,
        typer.Option(
            "--backfill-reports",
            min=1,
            help="Reports per back-fill run (default 100,000, smoke 1,500; the goal: 1,000,000)",
        ),
    ] = None,
    backfill_replicas: Annotated[
        int | None,
        typer.Option(
            "--backfill-replicas",
            min=1,
            max=6,
            help="Intake replicas in the back-fill's consumer group (default 2, smoke 1)",
        ),
    ] = None,
) -> None:
    """Run the measures, write the results JSON, the plots and the report."""
    quiet_logs()
    console = Console()
    try:
        measures = selected(only)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="--only") from exc
    runs = runs or (2 if smoke else 3)
    paths = output_paths(out, smoke=smoke, partial=bool(only))
    command = "python -m huddle_bench " + shlex.join(sys.argv[1:])
    started_at, started = datetime.now(UTC), time.monotonic()
    needs = {server for m in measures for server in m.needs}

    with contextlib.ExitStack() as stack:
        with console.status("starting " + (" and ".join(sorted(needs)) or "nothing")):
            live = stack.enter_context(
                servers(kafka="kafka" in needs, postgres="postgres" in needs)
            )
        progress = stack.enter_context(
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            )
        )
        ctx = Context(
            smoke=smoke,
            seed=seed,
            kafka_bootstrap=live.kafka_bootstrap,
            database_url=live.database_url,
            progress=progress,
            server_pids=live.pids,
            backfill_reports=backfill_reports,
            backfill_replicas=backfill_replicas,
        )

        async def main() -> tuple[dict[str, object], dict[str, list[RunResult]]]:
            return await machine(live), await run_measures(ctx, measures, runs)

        host, results = asyncio.run(main())

    outcomes = outcomes_of(measures, results)
    verdicts = check(outcomes) if smoke else check(outcomes, limits={})
    report = Report(
        command=command,
        mode="smoke" if smoke else "full",
        runs=runs,
        seed=seed,
        started_at=started_at,
        wall_s=time.monotonic() - started,
        machine=host,
        outcomes=outcomes,
        verdicts=verdicts,
    )
    report.plots = draw_all({o.name: o for o in outcomes}, paths.plots)
    write_json(report, paths.results)
    write_markdown(report, paths.markdown, paths.markdown.parent)
    console.print(summary_table(outcomes, verdicts))
    for verdict in verdicts:
        if not verdict.ok:
            console.print(f"[red]{verdict.measure}: {verdict.message}[/red]")
    console.print(f"wrote {paths.markdown}, {paths.results} and {len(report.plots)} plot(s)")
    console.print(f"wall time {report.wall_s:.0f} s")
    if any(not v.ok for v in verdicts):
        raise typer.Exit(1)


@app.command("list")
def list_measures() -> None:
    """The measures, their baselines and goals."""
    for m in MEASURES.values():
        base = m.baseline.label if m.baseline else "-"
        typer.echo(f"{m.name:28} {m.goal_id or 'baseline':9} {m.goal} (baseline: {base})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
