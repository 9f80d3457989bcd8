"""RFC 9457 problem details for every error at the HTTP edge."""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://huddle.dev/problems/"

log = structlog.get_logger(__name__)


class Problem(Exception):
    """An error the caller can act on; subclasses set status, title and type."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    type_suffix: ClassVar[str] = "bad-request"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFound(Problem):
    status = 404
    title = "Not found"
    type_suffix = "not-found"


class Conflict(Problem):
    status = 409
    title = "Conflict"
    type_suffix = "conflict"


class UnsupportedMediaType(Problem):
    status = 415
    title = "Unsupported media type"
    type_suffix = "unsupported-media-type"


class ContentTooLarge(Problem):
    status = 413
    title = "Content too large"
    type_suffix = "content-too-large"


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    detail: str,
    type_suffix: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {
        "type": TYPE_BASE + type_suffix,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extensions,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(
            request,
            status=exc.status,
            title=exc.title,
            detail=exc.detail,
            type_suffix=exc.type_suffix,
            headers=exc.headers or None,
            **exc.extensions,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # Input values are never echoed back: they may hold contact details.
        errors = [
            {"location": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(map(str, e['location']))}: {e['message']}" for e in errors)
        return problem_response(
            request,
            status=422,
            title="Invalid request",
            detail=summary or "the request is not valid",
            type_suffix="validation",
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(
            request,
            status=exc.status_code,
            title=_TITLES.get(exc.status_code, "Error"),
            detail=str(exc.detail),
            type_suffix=_TITLES.get(exc.status_code, "error").lower().replace(" ", "-"),
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(
            request,
            status=500,
            title="Internal error",
            detail="the service failed to handle the request; it has been logged",
            type_suffix="internal",
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    429: "Too many requests",
    503: "Service unavailable",
}
