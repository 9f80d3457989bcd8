"""Outcome surveys, pre and post: scored by the instruments' published rules, stored anonymously,
paired by the respondent's own code, and reported as paired change only for groups of k or more."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from huddle_runtime.unit_of_work import UnitOfWork

from huddle_analytics.adapters import surveys as sql
from huddle_analytics.domain.instruments import (
    SPECS,
    Instrument,
    InvalidAnswers,
    Score,
    external_score,
    needs_crisis_resources,
    score,
)
from huddle_analytics.domain.outcomes import paired_change
from huddle_analytics.domain.periods import Grain, label
from huddle_analytics.domain.suppression import enough
from huddle_analytics.domain.survey_code import code_hash, new_survey_code

Phase = Literal["pre", "post"]


class NoPreResponse(LookupError):
    pass


@dataclass(frozen=True)
class Submission:
    instrument: Instrument
    phase: Phase
    answers: Sequence[int] | None
    measures: Mapping[str, float] | None
    survey_code: str | None
    programme: str
    hospital: str
    month: date


@dataclass(frozen=True)
class Scored:
    score: Score
    survey_code: str | None
    """Returned once, for a pre response: the respondent keeps it for their post response."""
    crisis: bool


def scored(submission: Submission) -> tuple[Score, bool]:
    """Score the answers (or take an external score): pure, before anything is stored."""
    spec = SPECS[submission.instrument]
    if spec.external:
        if submission.measures is None or submission.answers is not None:
            raise InvalidAnswers(f"{spec.instrument.value} enters only as an external score")
        return external_score(submission.instrument, submission.measures), False
    if submission.answers is None or submission.measures is not None:
        raise InvalidAnswers(f"{spec.instrument.value} is scored here: send its answers")
    result = score(submission.instrument, submission.answers)
    return result, needs_crisis_resources(submission.instrument, submission.answers)


async def submit(uow: UnitOfWork, network: str, submission: Submission) -> Scored:
    result, crisis = scored(submission)
    if submission.phase == "pre":
        if submission.survey_code is not None:
            raise InvalidAnswers("a pre response gets a new survey code; do not send one")
        code: str | None = new_survey_code()
        digest = code_hash(code)  # type: ignore[arg-type]
    else:
        if submission.survey_code is None:
            raise InvalidAnswers("a post response needs the survey code given with the pre one")
        code, digest = None, code_hash(submission.survey_code)
        if not await sql.has_pre(uow.conn, submission.instrument.value, digest):
            raise NoPreResponse(
                f"no pre response for {submission.instrument.value} has this survey code"
            )
    await sql.add_response(
        uow.conn,
        network=network,
        hospital=submission.hospital,
        programme=submission.programme,
        instrument=submission.instrument.value,
        phase=submission.phase,
        code_hash=digest,
        month=submission.month,
        measures=result.measures,
        bands=result.bands,
    )
    return Scored(score=result, survey_code=code, crisis=crisis)


async def outcomes(
    uow: UnitOfWork,
    *,
    instrument: Instrument,
    grain: Grain,
    programme: str,
    hospital: str | None,
    k: int,
    until: datetime,
) -> dict[str, Any]:
    """Paired change per measure and period; a period with fewer than k pairs shows nothing.
    Only periods wholly before ``until`` (closed) are shown: one still filling could be watched."""
    pairs = await sql.pairs(
        uow.conn,
        instrument=instrument.value,
        programme=programme,
        hospital=hospital,
        grain=grain.value,
    )
    pairs = [p for p in pairs if _period_end(p["period"], grain) <= until]
    by_period: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pair in pairs:
        by_period[label(pair["period"], grain)].append(pair)
    periods: list[dict[str, Any]] = []
    for period, members in sorted(by_period.items()):
        if not enough(len(members), k):
            periods.append({"period": period, "pairs": None, "suppressed": True, "measures": {}})
            continue
        measures = {
            name: asdict(
                paired_change([m["pre"][name] for m in members], [m["post"][name] for m in members])
            )
            for name in SPECS[instrument].measures
        }
        periods.append(
            {"period": period, "pairs": len(members), "suppressed": False, "measures": measures}
        )
    return {
        "instrument": instrument.value,
        "programme": programme,
        "grain": grain.value,
        "threshold": k,
        "periods": periods,
    }


def _period_end(start: date, grain: Grain) -> datetime:
    months = {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[grain]
    month = start.month - 1 + months
    return datetime(start.year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
