"""HTTP: the published aggregates, outcome surveys and the exports of the analysts' stream.

Every number here has been through small-cell suppression (threshold k, default 11); a null is a
suppressed number, never a missing one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from huddle_contracts.vocabulary import HospitalId, Month
from huddle_runtime.auth import Forbidden, Principal, Role, authenticated
from huddle_runtime.edge import RuleRefused, runtime_of
from huddle_runtime.problems import Conflict, NotFound
from huddle_runtime.unit_of_work import UnitOfWork
from pydantic import BaseModel, Field, StrictInt

from huddle_analytics.adapters import queries
from huddle_analytics.adapters.surveys import AlreadyAnswered
from huddle_analytics.application import exports, results, surveys
from huddle_analytics.application import metrics as programme
from huddle_analytics.application.releases import release_if_due
from huddle_analytics.domain.instruments import SPECS, Instrument, InvalidAnswers
from huddle_analytics.domain.periods import Grain, month_end, month_start
from huddle_analytics.domain.survey_code import InvalidSurveyCode
from huddle_analytics.entrypoints.access import (
    STRICT,
    Analyst,
    NetworkAdmin,
    Reader,
    Respondent,
    analytics_metrics,
    analytics_settings,
    hospital_scope,
)
from huddle_analytics.observability import AnalyticsMetrics
from huddle_analytics.settings import AnalyticsSettings

if TYPE_CHECKING:
    import pyarrow as pa

router = APIRouter(prefix="/v1", tags=["programme metrics"])
surveys_router = APIRouter(prefix="/v1/surveys", tags=["outcome surveys"])

Settings = Annotated[AnalyticsSettings, Depends(analytics_settings)]
Metrics = Annotated[AnalyticsMetrics, Depends(analytics_metrics)]
Year = Annotated[
    int | None,
    Query(ge=2000, le=2100, description="Calendar year (UTC); the current one by default."),
]

MeasureName = Literal["requests", "sessions", "referrals", "adverse_events"]


def _closed_until(settings: AnalyticsSettings) -> datetime:
    """The start of the first month not yet closed (plus the release's grace period)."""
    return results.closed_until(datetime.now(UTC), settings)


def _scope(principal: Principal, year: int | None, settings: AnalyticsSettings) -> programme.Scope:
    until = _closed_until(settings)
    return programme.Scope(
        hospital=hospital_scope(principal),
        year=year or results.default_year(until),
        k=settings.suppression_threshold,
        until=until,
    )


async def _published(
    request: Request,
    principal: Principal,
    until: datetime,
    key: str,
    compute: results.Compute,
    worth_keeping: results.Keep | None = None,
) -> Response:
    """The result as stored for the caller's scope, or computed now (and stored if worth it)."""
    body = await results.published(
        runtime_of(request),
        principal.tenant,
        results.scope_of(hospital_scope(principal)),
        key,
        until,
        compute,
        worth_keeping,
    )
    return Response(body, media_type="application/json")


def _dimension(measure: str, by: str | None, principal: Principal) -> str | None:
    # Response times break down like the requests they time.
    source = "requests" if measure == "response_times" else measure
    dimensions = queries.MEASURES[source].dimensions
    if by is not None and by not in dimensions:
        raise RuleRefused(
            f"{measure} cannot be broken down by {by!r}; choose one of {', '.join(dimensions)}"
        )
    if by == "hospital" and hospital_scope(principal) is not None:
        raise Forbidden("a coordinator sees their own hospital only")
    return by


@router.get(
    "/metrics/{measure}",
    summary="Counts of a programme measure per period, optionally broken down, suppressed",
)
async def measure_counts(
    measure: Annotated[MeasureName, Path(description="What is counted.")],
    request: Request,
    principal: Reader,
    settings: Settings,
    metrics: Metrics,
    year: Year = None,
    by: Annotated[str | None, Query(description="A breakdown, e.g. origin, urgency, tier.")] = None,
) -> Response:
    name = str(measure)
    dimension = _dimension(name, by, principal)
    scope = _scope(principal, year, settings)
    return await _published(
        request,
        principal,
        scope.until,
        results.counts_key(name, dimension, scope),
        lambda uow: programme.timed(metrics, name, programme.counts(uow, name, dimension, scope)),
        results.year_kept(scope),
    )


@router.get(
    "/response-times",
    summary="Minutes to offer, match and first contact (p50, p90) and deadlines kept",
)
async def response_times(
    request: Request,
    principal: Reader,
    settings: Settings,
    metrics: Metrics,
    year: Year = None,
    by: Annotated[
        str | None, Query(description="hospital, origin, urgency, tier, discipline…")
    ] = None,
) -> Response:
    dimension = _dimension("response_times", by, principal)
    scope = _scope(principal, year, settings)
    return await _published(
        request,
        principal,
        scope.until,
        results.response_times_key(dimension, scope),
        lambda uow: programme.timed(
            metrics, "response_times", programme.response_times(uow, dimension, scope)
        ),
        results.year_kept(scope),
    )


def _yearly(
    path: str,
    name: str,
    compute: Callable[[UnitOfWork, programme.Scope], Awaitable[dict[str, Any]]],
) -> Callable[..., Awaitable[Response]]:
    """An endpoint reading one measure of one scope and year."""

    async def endpoint(
        request: Request, principal: Reader, settings: Settings, metrics: Metrics, year: Year = None
    ) -> Response:
        scope = _scope(principal, year, settings)
        return await _published(
            request,
            principal,
            scope.until,
            results.yearly_key(path.lstrip("/"), scope),
            lambda uow: programme.timed(metrics, name, compute(uow, scope)),
            results.year_kept(scope),
        )

    return endpoint


for _path, _name, _compute, _summary in (
    (
        "/adverse-event-coverage",
        "adverse_event_coverage",
        programme.adverse_event_coverage,
        "Share of involved staff offered support, and reached",
    ),
    (
        "/referral-rate",
        "referral_rate",
        programme.referral_rate,
        "Share of matched cases referred on to professional help",
    ),
    ("/follow-ups", "follow_ups", programme.follow_up_kept, "Share of planned follow-ups kept"),
    (
        "/peer-load",
        "peer_load",
        programme.peer_load,
        "How cases spread over certified peers, and how fairly",
    ),
):
    router.add_api_route(
        _path, _yearly(_path, _name, _compute), methods=["GET"], summary=_summary, name=_name
    )


@router.get("/training-coverage", summary="Certified peers by hospital and discipline")
async def training_coverage(
    request: Request,
    principal: Reader,
    settings: Settings,
    metrics: Metrics,
    month: Annotated[
        Month | None,
        Query(description="At the end of this closed month (YYYY-MM); the last one by default."),
    ] = None,
) -> Response:
    until = _closed_until(settings)
    # Snapshots only at the end of closed months: two days apart would show one peer's change.
    at = until if month is None else month_end(month)
    if at > until:
        raise RuleRefused(f"{month} has not closed yet")
    k = settings.suppression_threshold
    return await _published(
        request,
        principal,
        until,
        results.training_key(at, k),
        lambda uow: programme.timed(
            metrics,
            "training_coverage",
            programme.training_coverage(uow, hospital_scope(principal), at, k),
        ),
        None if month is None else results.rows_before(at),
    )


@router.get("/dashboard", summary="Every programme metric of one scope and year at once")
async def dashboard(
    request: Request, principal: Reader, settings: Settings, metrics: Metrics, year: Year = None
) -> Response:
    scope = _scope(principal, year, settings)
    return await _published(
        request,
        principal,
        scope.until,
        results.yearly_key("dashboard", scope),
        lambda uow: programme.dashboard(uow, scope, metrics),
        results.year_kept(scope),
    )


@router.get(
    "/outcomes/{instrument}",
    summary="Paired pre/post change per measure with its confidence interval, per quarter",
)
async def outcomes(
    instrument: Instrument,
    request: Request,
    principal: Reader,
    settings: Settings,
    programme_name: Annotated[
        str,
        Query(
            alias="programme",
            pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
            description="One programme at a time: a sum over several could be differenced.",
        ),
    ] = results.DEFAULT_PROGRAMME,
) -> Response:
    # One grain (the quarter of the post answer) and closed quarters' months only, so that no
    # two answers overlap and nothing can be subtracted from anything else.
    until = _closed_until(settings)
    k = settings.suppression_threshold
    return await _published(
        request,
        principal,
        until,
        results.outcomes_key(instrument, programme_name, k),
        lambda uow: surveys.outcomes(
            uow,
            instrument=instrument,
            grain=Grain.QUARTER,
            programme=programme_name,
            hospital=hospital_scope(principal),
            k=k,
            until=until,
        ),
        results.answered(instrument, programme_name),
    )


class ExportFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


@router.get(
    "/exports/programme-events.{fmt}",
    summary="The records published on the analysts' stream, as CSV or Parquet",
    response_class=Response,
)
async def export_records(
    fmt: ExportFormat,
    request: Request,
    principal: Analyst,
    first: Annotated[Month | None, Query(alias="from", description="First month, YYYY-MM.")] = None,
    last: Annotated[Month | None, Query(alias="to", description="Last month, YYYY-MM.")] = None,
) -> Response:
    async with runtime_of(request).unit_of_work(principal.tenant) as uow:
        rows = await exports.published_rows(uow, first=first, last=last)
    name = f"programme-events-{principal.network_id}"
    if fmt is ExportFormat.CSV:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=exports.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        return Response(
            buffer.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    # Imported here, not at start-up: pyarrow holds about 26 MB in every analytics process and
    # only this export uses it (benchmarks, goal #9).
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=_parquet_schema())
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return Response(
        sink.getvalue(),
        media_type="application/vnd.apache.parquet",
        headers={"Content-Disposition": f'attachment; filename="{name}.parquet"'},
    )


_INTEGERS = {"tier", "involved"}


@cache
def _parquet_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            (
                c,
                pa.int64()
                if c in _INTEGERS
                else pa.bool_()
                if c == "deadline_met"
                else pa.string(),
            )
            for c in exports.COLUMNS
        ]
    )


@router.post(
    "/releases",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Release the records of closed months now, instead of at the next scheduled round",
)
async def release_now(request: Request, principal: NetworkAdmin) -> dict[str, Any]:
    """Only the caller's own network, and only if records were staged since its last release."""
    published = await release_if_due(runtime_of(request), principal.network_id, datetime.now(UTC))
    return {"released": published}


class SurveyResponse(BaseModel):
    model_config = STRICT

    phase: Literal["pre", "post"]
    answers: list[StrictInt] | None = Field(
        default=None,
        max_length=40,
        description="Answers by item position, scored by the instrument's published rules.",
    )
    measures: dict[str, float] | None = Field(
        default=None, description="An externally computed score (the licensed MBI only)."
    )
    survey_code: str | None = Field(
        default=None,
        max_length=24,
        description="For a post response: the code returned with the pre response.",
    )
    programme: str = Field(
        default="peer-support",
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="The programme or cohort being evaluated.",
    )
    hospital_id: HospitalId | None = Field(
        default=None, description="Network admins entering paper forms only."
    )
    month: Month | None = Field(
        default=None, description="Network admins entering paper forms only: the month answered."
    )


class CrisisResource(BaseModel):
    label: str
    how_to_reach: str


class SurveyReceipt(BaseModel):
    instrument: Instrument
    phase: Literal["pre", "post"]
    measures: dict[str, float]
    bands: dict[str, str]
    survey_code: str | None = Field(
        description="Keep it: it pairs your post response with this one. Shown only once."
    )
    crisis_resources: list[CrisisResource] | None = Field(
        description="Shown at once when an answer says you may be at risk; nobody is alerted."
    )


@surveys_router.post(
    "/{instrument}/responses",
    status_code=status.HTTP_201_CREATED,
    response_model=SurveyReceipt,
    summary="Answer an outcome survey, anonymously (pre, then post with your survey code)",
)
async def answer_survey(
    instrument: Instrument,
    body: SurveyResponse,
    request: Request,
    principal: Respondent,
    settings: Settings,
    metrics: Metrics,
) -> SurveyReceipt:
    entering_forms = body.month is not None or body.hospital_id is not None
    if entering_forms and Role.NETWORK_ADMIN not in principal.roles:
        raise Forbidden("only a network admin enters paper forms (hospital_id, month)")
    hospital = body.hospital_id or principal.hospital_id
    if hospital is None:
        raise RuleRefused("hospital_id is required when your token names no hospital")
    month = month_start(body.month) if body.month else datetime.now(UTC)
    submission = surveys.Submission(
        instrument=instrument,
        phase=body.phase,
        answers=body.answers,
        measures=body.measures,
        survey_code=body.survey_code,
        programme=body.programme,
        hospital=hospital,
        month=date(month.year, month.month, 1),
    )
    try:
        async with runtime_of(request).unit_of_work(principal.tenant) as uow:
            result = await surveys.submit(uow, principal.network_id, submission)
    except (InvalidAnswers, InvalidSurveyCode) as exc:
        raise RuleRefused(str(exc)) from exc
    except surveys.NoPreResponse as exc:
        raise NotFound(str(exc)) from exc
    except AlreadyAnswered as exc:
        raise Conflict(str(exc)) from exc
    metrics.survey_responses.labels(instrument.value, body.phase).inc()
    return SurveyReceipt(
        instrument=instrument,
        phase=body.phase,
        measures=result.score.measures,
        bands=result.score.bands,
        survey_code=result.survey_code,
        crisis_resources=(
            [CrisisResource(label=settings.crisis_line_label, how_to_reach=settings.crisis_line)]
            if result.crisis
            else None
        ),
    )


@surveys_router.get("/instruments", summary="The instruments Huddle scores, and their licences")
async def instruments(
    principal: Annotated[Principal, Depends(authenticated)],
) -> list[dict[str, Any]]:
    return [
        {
            "instrument": spec.instrument.value,
            "items": spec.items,
            "answers": f"{spec.minimum} to {spec.maximum}",
            "measures": list(spec.measures),
            "external": spec.external,
            "licence": spec.licence,
        }
        for spec in SPECS.values()
    ]
