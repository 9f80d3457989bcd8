"""SQL of the published aggregates: raw counts and durations by month, before any protection.

Only whitelisted column names are ever put into SQL text (the ``by`` dimension of a measure);
every value goes through a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Measure:
    """A countable programme fact: which rows, which time, which breakdowns."""

    name: str
    table: str
    time: str
    dimensions: dict[str, str]
    """Public name of a breakdown -> its SQL expression."""
    where: str = "TRUE"


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure(
            name="requests",
            table="support_case",
            time="requested_at",
            dimensions={
                "hospital": "hospital_id",
                "origin": "origin",
                "urgency": "urgency",
                "tier": "tier::text",
                "discipline": "discipline",
                "clinical_area": "coalesce(clinical_area, 'unknown')",
            },
            where="requested_at IS NOT NULL",
        ),
        Measure(
            name="sessions",
            table="session_record",
            time="started_at",
            dimensions={
                "hospital": "hospital_id",
                "mode": "mode",
                "tier": "tier::text",
                "format": "CASE WHEN grouped THEN 'group' ELSE 'one_to_one' END",
            },
        ),
        Measure(
            name="referrals",
            table="referral_record",
            time="made_at",
            dimensions={
                "hospital": "hospital_id",
                "resource": "resource",
                "urgency": "urgency",
                "referred_by": "CASE WHEN by_peer THEN 'peer' ELSE 'crisis_escalation' END",
            },
        ),
        Measure(
            name="adverse_events",
            table="adverse_event",
            time="reported_at",
            dimensions={
                "hospital": "hospital_id",
                "harm_level": "harm_level",
                "event_class": "event_class",
                "caused_by_error": (
                    "CASE WHEN 'medication_error' = ANY(categories) THEN 'error' ELSE 'other' END"
                ),
                "outreach": "CASE WHEN outreach_triggered THEN 'outreach' ELSE 'none' END",
            },
        ),
    )
}


async def monthly_breakdowns(
    conn: asyncpg.Connection,
    measure: Measure,
    dimensions: list[str],
    *,
    hospital: str | None,
    start: datetime,
    end: datetime,
) -> dict[str | None, list[tuple[str, datetime, int]]]:
    """The totals (key None) and every breakdown by month, in one statement: one snapshot, so
    the breakdowns add up to the totals even while events are arriving. One scan of the rows,
    grouped once per breakdown (grouping sets)."""
    columns = "".join(f"{measure.dimensions[d]}::text AS d{i}, " for i, d in enumerate(dimensions))
    sets = ", ".join(["(month)", *(f"(d{i}, month)" for i in range(len(dimensions)))])
    # The breakdown a row of the result belongs to: the one dimension it is grouped by.
    which = " ".join(f"WHEN GROUPING(d{i}) = 0 THEN {i}" for i in range(len(dimensions)))
    value = " ".join(
        f"WHEN GROUPING(d{i}) = 0 THEN coalesce(d{i}, 'unknown')" for i in range(len(dimensions))
    )
    rows = await conn.fetch(
        f"""SELECT CASE {which or "WHEN false THEN 0"} END AS dimension,
                   CASE {value or "WHEN false THEN ''"} ELSE 'all' END AS value,
                   month, count(*) AS n
              FROM (SELECT {columns}date_trunc('month', {measure.time} AT TIME ZONE 'UTC') AS month
                      FROM {measure.table}
                     WHERE {measure.where} AND ($1::text IS NULL OR hospital_id = $1)
                       AND {measure.time} >= $2 AND {measure.time} < $3) AS base
             GROUP BY GROUPING SETS ({sets})""",
        hospital,
        start,
        end,
    )
    found: dict[str | None, list[tuple[str, datetime, int]]] = {None: []}
    found.update({d: [] for d in dimensions})
    for r in rows:
        key = None if r["dimension"] is None else dimensions[r["dimension"]]
        found[key].append((str(r["value"]), r["month"], int(r["n"])))
    return found


_CASE_DIMENSIONS = MEASURES["requests"].dimensions

WAITS = ("to_offer", "to_match", "to_contact")


async def case_timings(
    conn: asyncpg.Connection,
    by: str | None,
    *,
    hospital: str | None,
    start: datetime,
    end: datetime,
    decided_by: datetime,
) -> list[dict[str, Any]]:
    """Per group of cases (breakdown value, and quarter or None for the whole year): how many,
    how many with each waiting time known and its median and 90th percentile in minutes
    (interpolated, as numpy's default), and deadlines decided and kept by urgency. A deadline
    without a first contact is missed once it has passed by ``decided_by`` (the end of the
    closed months), never by the clock: the published figure then changes only with the data.

    Aggregated where the rows are: a year of a large network is hundreds of thousands of cases."""
    dimension = _CASE_DIMENSIONS[by] if by else "'all'"
    waits = "".join(
        f"""count({w}) AS {w}_known,
            percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {w}) AS {w}_p,"""
        for w in WAITS
    )
    rows = await conn.fetch(
        f"""SELECT value, quarter, count(*) AS cases, {waits}
                   count(deadline_met) FILTER (WHERE urgency = 'urgent') AS urgent_decided,
                   count(*) FILTER (WHERE urgency = 'urgent' AND deadline_met) AS urgent_kept,
                   count(deadline_met) FILTER (WHERE urgency = 'routine') AS routine_decided,
                   count(*) FILTER (WHERE urgency = 'routine' AND deadline_met) AS routine_kept
              FROM (SELECT coalesce(nullif(({dimension})::text, ''), 'unknown') AS value,
                           date_trunc('quarter', requested_at AT TIME ZONE 'UTC') AS quarter,
                           urgency,
                           extract(epoch FROM first_offered_at - requested_at) / 60 AS to_offer,
                           extract(epoch FROM matched_at - requested_at) / 60 AS to_match,
                           extract(epoch FROM first_contact_at - requested_at) / 60 AS to_contact,
                           CASE WHEN deadline IS NULL THEN NULL
                                WHEN first_contact_at IS NOT NULL
                                    THEN first_contact_at <= deadline
                                -- Not reached in time counts as missed, withdrawn late or not
                                -- at all.
                                WHEN deadline < $4
                                     AND (withdrawn_at IS NULL OR withdrawn_at > deadline)
                                    THEN false
                           END AS deadline_met
                      FROM (SELECT *,
                                   -- The deadline matching set; for an urgent case never
                                   -- matched, the 30 minutes of the programme's rule.
                                   coalesce(respond_by,
                                            CASE WHEN urgency = 'urgent'
                                                 THEN requested_at + interval '30 minutes'
                                            END) AS deadline
                              FROM support_case) AS c
                     WHERE requested_at IS NOT NULL AND urgency <> 'crisis'
                       AND ($1::text IS NULL OR hospital_id = $1)
                       AND requested_at >= $2 AND requested_at < $3) AS timed
             GROUP BY GROUPING SETS ((value, quarter), (value))""",
        hospital,
        start,
        end,
        decided_by,
    )
    return [dict(r) for r in rows]


async def adverse_event_reach(
    conn: asyncpg.Connection, *, hospital: str | None, start: datetime, end: datetime
) -> tuple[int, int, int]:
    """Staff involved in the adverse events, offered support (cases) and reached (contacted)."""
    row = await conn.fetchrow(
        """SELECT (SELECT coalesce(sum(involved), 0) FROM adverse_event e
                    WHERE ($1::text IS NULL OR e.hospital_id = $1)
                      AND e.reported_at >= $2 AND e.reported_at < $3) AS involved,
                  count(c.case_id) AS offered,
                  count(c.first_contact_at) AS reached
             FROM adverse_event e
             JOIN support_case c
               ON c.network_id = e.network_id AND c.adverse_event_id = e.adverse_event_id
            WHERE ($1::text IS NULL OR e.hospital_id = $1)
              AND e.reported_at >= $2 AND e.reported_at < $3""",
        hospital,
        start,
        end,
    )
    return int(row["involved"]), int(row["offered"]), int(row["reached"])


async def follow_ups(
    conn: asyncpg.Connection, *, hospital: str | None, start: datetime, end: datetime
) -> tuple[int, int]:
    """One-to-one sessions that planned a follow-up, and how many of them a later one kept."""
    row = await conn.fetchrow(
        """SELECT count(*) AS planned,
                  -- Kept: a later session of the same case (found by the case's index, so a
                  -- hospital's follow-ups read that hospital's sessions only).
                  count(*) FILTER (WHERE EXISTS (
                      SELECT 1 FROM session_record later
                       WHERE later.network_id = s.network_id AND later.case_id = s.case_id
                         AND later.started_at > s.started_at)) AS kept
             FROM session_record s
            WHERE s.follow_up_planned AND NOT s.grouped
              AND ($1::text IS NULL OR s.hospital_id = $1)
              AND s.started_at >= $2 AND s.started_at < $3""",
        hospital,
        start,
        end,
    )
    return int(row["planned"]), int(row["kept"])


async def matched_cases(
    conn: asyncpg.Connection, *, hospital: str | None, start: datetime, end: datetime
) -> tuple[int, int]:
    """Cases matched to a peer, and how many of them were referred on (tier 3)."""
    row = await conn.fetchrow(
        """SELECT count(*) AS matched, count(*) FILTER (WHERE referral) AS referred
             FROM support_case
            WHERE matched_at IS NOT NULL AND ($1::text IS NULL OR hospital_id = $1)
              AND matched_at >= $2 AND matched_at < $3""",
        hospital,
        start,
        end,
    )
    return int(row["matched"]), int(row["referred"])


async def peer_loads(
    conn: asyncpg.Connection, *, hospital: str | None, start: datetime, end: datetime
) -> list[int]:
    """Cases matched per certified peer in the period (peers with none count as 0)."""
    rows = await conn.fetch(
        """WITH active AS (
                SELECT DISTINCT peer FROM certification_period
                 WHERE certified_at < $3 AND valid_until > $2
                   AND (lapsed_at IS NULL OR lapsed_at > $2)
                   AND ($1::text IS NULL OR hospital_id = $1)
           )
           -- The peers of the scope (by their own hospital) and the cases each carried,
           -- wherever the requester worked (by the peer's index: a hospital's peers only).
           SELECT (SELECT count(*) FROM support_case c
                    WHERE c.peer = active.peer AND c.matched_at >= $2 AND c.matched_at < $3)
                  AS cases
             FROM active""",
        hospital,
        start,
        end,
    )
    return [int(r["cases"]) for r in rows]


async def certified_peers(
    conn: asyncpg.Connection, *, hospital: str | None, at: datetime
) -> list[tuple[str, str, int]]:
    """(hospital, discipline, certified peers) at an instant."""
    rows = await conn.fetch(
        """SELECT hospital_id, discipline, count(DISTINCT peer) AS n FROM certification_period
            WHERE certified_at <= $2 AND valid_until > $2
              AND (lapsed_at IS NULL OR lapsed_at > $2)
              AND ($1::text IS NULL OR hospital_id = $1)
            GROUP BY 1, 2""",
        hospital,
        at,
    )
    return [(r["hospital_id"], r["discipline"], int(r["n"])) for r in rows]
