"""SQL of outcome surveys: scores by month and a hash of the respondent's code, nothing more."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import asyncpg


class AlreadyAnswered(LookupError):
    pass


async def add_response(
    conn: asyncpg.Connection,
    *,
    network: str,
    hospital: str,
    programme: str,
    instrument: str,
    phase: str,
    code_hash: bytes,
    month: date,
    measures: dict[str, float],
    bands: dict[str, str],
) -> None:
    try:
        await conn.execute(
            """INSERT INTO survey_response (network_id, hospital_id, programme, instrument, phase,
                    code_hash, month, measures, bands)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb)""",
            network,
            hospital,
            programme,
            instrument,
            phase,
            code_hash,
            month,
            json.dumps(measures),
            json.dumps(bands),
        )
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyAnswered(f"this code already has a {phase} response") from exc


async def has_pre(conn: asyncpg.Connection, instrument: str, code_hash: bytes) -> bool:
    found: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM survey_response
                           WHERE instrument = $1 AND phase = 'pre' AND code_hash = $2)""",
        instrument,
        code_hash,
    )
    return found


async def answered(conn: asyncpg.Connection, network: str, instrument: str, programme: str) -> bool:
    """Whether the programme has any response to the instrument (any slug can be asked for)."""
    found: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM survey_response
                           WHERE network_id = $1 AND instrument = $2 AND programme = $3)""",
        network,
        instrument,
        programme,
    )
    return found


async def pairs(
    conn: asyncpg.Connection,
    *,
    instrument: str,
    programme: str | None,
    hospital: str | None,
    grain: str,
) -> list[dict[str, Any]]:
    """Pre and post measures of each pair, with the period of the post response."""
    rows = await conn.fetch(
        f"""SELECT date_trunc('{grain}', post.month)::date AS period,
                   pre.measures AS pre, post.measures AS post
              FROM survey_response post
              JOIN survey_response pre
                ON pre.network_id = post.network_id AND pre.instrument = post.instrument
               AND pre.code_hash = post.code_hash AND pre.phase = 'pre'
             WHERE post.phase = 'post' AND post.instrument = $1
               AND ($2::text IS NULL OR post.programme = $2)
               AND ($3::text IS NULL OR post.hospital_id = $3)
             ORDER BY period""",
        instrument,
        programme,
        hospital,
    )
    return [
        {"period": r["period"], "pre": json.loads(r["pre"]), "post": json.loads(r["post"])}
        for r in rows
    ]
