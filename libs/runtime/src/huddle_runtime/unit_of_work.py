"""The one transaction boundary: state changes and outgoing events commit together or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from huddle_contracts.events import Event

from huddle_runtime.outbox import add_to_outbox, outbox_message
from huddle_runtime.tenancy import Tenant, scope_statement


class UnitOfWork:
    """A transaction scoped to one tenant; ``publish`` queues events for the outbox."""

    def __init__(self, conn: asyncpg.Connection, tenant: Tenant | None) -> None:
        self.conn = conn
        self.tenant = tenant
        self._events: list[Event] = []

    def publish(self, event: Event) -> None:
        if self.tenant is not None and getattr(event, "network_id", None) != self.tenant.network_id:
            raise PermissionError("an event must belong to the unit of work's network")
        self._events.append(event)

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(self._events)


@asynccontextmanager
async def unit_of_work(
    pool: asyncpg.Pool, tenant: Tenant | None, *, source: str
) -> AsyncIterator[UnitOfWork]:
    """Commit the work and its outbox rows on success; roll both back on any exception."""
    async with pool.acquire() as conn, unit_of_work_on(conn, tenant, source=source) as uow:
        yield uow


@asynccontextmanager
async def unit_of_work_on(
    conn: asyncpg.Connection, tenant: Tenant | None, *, source: str
) -> AsyncIterator[UnitOfWork]:
    """The same on a connection the caller holds: inside the caller's transaction it is a
    savepoint, so a batch of units commits with one fsync and a failed one leaves no trace."""
    async with transaction(conn, scope_statement(tenant)):
        uow = UnitOfWork(conn, tenant)
        yield uow
        await add_to_outbox(conn, [outbox_message(e, source=source) for e in uow.events])


_SAVEPOINT = "huddle_unit"
"""One name for every level: PostgreSQL keeps a shadowed savepoint, and RELEASE and ROLLBACK TO
take the latest of a name, which nesting makes the right one."""


class TransactionRolledBack(Exception):
    """COMMIT was answered ROLLBACK: a statement inside failed and its error was swallowed."""


@asynccontextmanager
async def transaction(conn: asyncpg.Connection, scope: str = "") -> AsyncIterator[None]:
    """A transaction begun together with ``scope`` (statements of literals, e.g. the tenant's) in
    one round trip, where asyncpg's ``Connection.transaction`` sends BEGIN alone and a unit of
    work is only a few statements; inside a transaction (whoever began it), a savepoint.
    Committed (released) on success, rolled back on any exception. Inside it, asyncpg's
    ``conn.transaction()`` refuses to run (the transaction was begun by hand): nest this instead.
    """
    if conn.is_in_transaction():
        # SAVEPOINT alone, so a failure is never unclear: rare (a batch retried record by
        # record, matching's wait for a held peer).
        await conn.execute(f"SAVEPOINT {_SAVEPOINT}")
        end = f"RELEASE SAVEPOINT {_SAVEPOINT}"
        undo = f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; {end}"
        then = scope
    else:
        end, undo, then = "COMMIT", "ROLLBACK", ""
        try:
            await conn.execute(f"BEGIN; {scope}" if scope else "BEGIN")
        except BaseException:
            # Whether BEGIN ran is unknown after a cancellation: ROLLBACK outside one is a no-op.
            await _undo(conn, undo)
            raise
    try:
        if then:
            await conn.execute(then)
        yield
    except BaseException:
        await _undo(conn, undo)
        raise
    if await conn.execute(end) == "ROLLBACK":
        raise TransactionRolledBack("the transaction was rolled back at its commit")


async def _undo(conn: asyncpg.Connection, undo: str) -> None:
    """Roll back; if even that fails, end the connection (the caller's error is the one raised)."""
    if conn.is_closed():
        return
    try:
        await conn.execute(undo)
    except Exception:
        conn.terminate()  # nothing of the transaction outlives its connection
    except BaseException:  # cancelled while rolling back: end it all the same, and stop
        conn.terminate()
        raise
