"""Liveness (the process) and readiness (its database, producer and consumer), and /metrics."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from huddle_runtime.service import Runtime

router = APIRouter(tags=["operations"])


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/livez", summary="The process is alive (no dependency is checked)")
async def livez(request: Request) -> JSONResponse:
    runtime = _runtime(request)
    if runtime.failure:
        return JSONResponse({"status": "failed", "reason": runtime.failure}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Database, Kafka producer and consumer assignment are ready")
async def readyz(request: Request) -> JSONResponse:
    checks = await _runtime(request).readiness()
    ready = all(check == "ok" for check in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    runtime = _runtime(request)
    await runtime.refresh_gauges()
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def check(coro: Any, limit: float = 2.0) -> str:
    """'ok', or the reason the dependency is not ready."""
    try:
        await asyncio.wait_for(coro, limit)
    except Exception as exc:
        return f"failed: {type(exc).__name__}: {exc}"[:300]
    return "ok"
