"""The bare HTTP baseline: FastAPI + asyncpg, one endpoint that inserts one row.

Served exactly as every Huddle service is (`huddle_runtime.cli.serve`): one uvicorn process,
same uvicorn arguments, the pool sizes and release of `huddle_runtime.database`, the same
PostgreSQL. No auth, no validation beyond JSON, no outbox: the ceiling for intake's HTTP path on
this machine.

Run as ``python -m huddle_bench.bare_http`` with ``DATABASE_URL`` and ``HUDDLE_HTTP_PORT``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI, Request, status
from huddle_runtime.database import keep_session
from huddle_runtime.settings import KEEP_ALIVE_SECONDS, DatabaseSettings, DeliverySettings

SCHEMA = "bench_bare"
PATH = "/v1/rows"

CREATE_TABLE = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.received (
    id uuid PRIMARY KEY,
    body jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""
INSERT = f"INSERT INTO {SCHEMA}.received (id, body) VALUES ($1, $2::jsonb)"


def build_app(database: DatabaseSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database.url.get_secret_value()
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(CREATE_TABLE)
        finally:
            await conn.close()
        app.state.pool = await asyncpg.create_pool(
            url,
            min_size=database.pool_min_size,
            max_size=database.pool_max_size,
            reset=keep_session,  # as every service's pool: no reset query on release
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="bare FastAPI + asyncpg baseline", lifespan=lifespan)

    @app.post(PATH, status_code=status.HTTP_201_CREATED)
    async def insert_one_row(body: dict[str, Any], request: Request) -> dict[str, str]:
        row_id = uuid.uuid4()
        await request.app.state.pool.execute(INSERT, row_id, json.dumps(body))
        return {"id": str(row_id)}

    @app.get("/readyz")
    async def readyz(request: Request) -> dict[str, str]:
        await request.app.state.pool.fetchval("SELECT 1")
        return {"status": "ready"}

    return app


def main() -> None:
    # The same uvicorn call as huddle_runtime.cli's `serve`.
    uvicorn.run(
        build_app(DatabaseSettings()),
        host="127.0.0.1",
        port=int(os.environ["HUDDLE_HTTP_PORT"]),
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(DeliverySettings().shutdown_grace_seconds),
    )


if __name__ == "__main__":
    main()
