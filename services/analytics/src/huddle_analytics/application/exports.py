"""Exports of the analysts' stream: exactly the records already published on it, by month."""

from __future__ import annotations

from typing import Any

from huddle_contracts.events import AnonymisedProgrammeEvent
from huddle_runtime.unit_of_work import UnitOfWork

from huddle_analytics.adapters import releases as sql

# The month is the record's time; its start (the CloudEvents time) adds nothing to a table.
COLUMNS = [name for name in AnonymisedProgrammeEvent.model_fields if name != "period_start"]


async def published_rows(
    uow: UnitOfWork, *, first: str | None, last: str | None
) -> list[dict[str, Any]]:
    """One flat row per published record (lists become one comma-separated cell)."""
    records = await sql.published(uow.conn, first=first, last=last)
    return [{c: _flat(r.get(c)) for c in COLUMNS} for r in records]


def _flat(value: Any) -> Any:
    return ",".join(value) if isinstance(value, list) else value
