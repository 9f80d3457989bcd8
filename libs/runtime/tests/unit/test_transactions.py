"""How a unit of work talks to PostgreSQL: what it sends, in how many round trips."""

from __future__ import annotations

import asyncio

import pytest
from huddle_runtime.tenancy import Tenant, scope_statement
from huddle_runtime.unit_of_work import TransactionRolledBack, transaction, unit_of_work_on


class FakeConnection:
    """The part of asyncpg's connection a unit of work uses; each ``execute`` is a round trip."""

    def __init__(
        self,
        *,
        fail_on: str | None = None,
        failure: BaseException | None = None,
        aborted: bool = False,
    ) -> None:
        self.sent: list[str] = []
        self.depth = 0
        self.fail_on = fail_on
        self.failure = failure
        self.aborted = aborted  # a statement failed inside: COMMIT answers ROLLBACK
        self.terminated = False

    def is_in_transaction(self) -> bool:
        return self.depth > 0

    def is_closed(self) -> bool:
        return self.terminated

    def terminate(self) -> None:
        self.terminated = True

    async def execute(self, query: str, *args: object) -> str:
        self.sent.append(query)
        for statement in query.split("; "):
            if self.fail_on and statement.startswith(self.fail_on):
                raise self.failure or RuntimeError(f"{statement} failed")
            if statement == "BEGIN":
                self.depth += 1
            elif statement in ("COMMIT", "ROLLBACK"):
                self.depth = 0
                if statement == "COMMIT" and self.aborted:
                    return "ROLLBACK"
        return "OK"


async def test_a_unit_of_work_begins_and_scopes_its_transaction_in_one_round_trip() -> None:
    conn = FakeConnection()
    async with unit_of_work_on(conn, Tenant("north", "st-olav"), source="/test") as uow:  # type: ignore[arg-type]
        await uow.conn.execute("INSERT INTO note VALUES (1)")
    assert conn.sent == [
        f"BEGIN; {scope_statement(Tenant('north', 'st-olav'))}",
        "INSERT INTO note VALUES (1)",
        "COMMIT",
    ]


async def test_a_failed_unit_of_work_rolls_back_and_commits_nothing() -> None:
    conn = FakeConnection()
    with pytest.raises(ValueError, match="the handler failed"):
        async with transaction(conn, "SELECT 1"):  # type: ignore[arg-type]
            raise ValueError("the handler failed")
    assert conn.sent == ["BEGIN; SELECT 1", "ROLLBACK"]
    assert not conn.is_in_transaction()


async def test_a_begin_cancelled_before_its_answer_is_rolled_back_all_the_same() -> None:
    # Cancelled while BEGIN was in flight: the server may have begun it, the client cannot know.
    conn = FakeConnection(fail_on="BEGIN", failure=asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        async with transaction(conn, "SELECT 1"):  # type: ignore[arg-type]
            pytest.fail("the body must not run")
    assert conn.sent == ["BEGIN; SELECT 1", "ROLLBACK"]


async def test_a_commit_the_server_answers_with_rollback_is_a_failure() -> None:
    conn = FakeConnection(aborted=True)  # the body swallowed a failed statement
    with pytest.raises(TransactionRolledBack):
        async with transaction(conn, "SELECT 1"):  # type: ignore[arg-type]
            pass


async def test_when_the_rollback_fails_the_connection_is_ended_and_the_first_error_raised() -> None:
    conn = FakeConnection(fail_on="ROLLBACK", failure=ConnectionResetError("gone"))
    with pytest.raises(ValueError, match="the handler failed"):
        async with transaction(conn, "SELECT 1"):  # type: ignore[arg-type]
            raise ValueError("the handler failed")
    assert conn.terminated


async def test_a_scope_that_fails_after_begin_rolls_the_transaction_back() -> None:
    conn = FakeConnection(fail_on="SELECT set_config")
    with pytest.raises(RuntimeError):
        async with transaction(conn, scope_statement(Tenant("north"))):  # type: ignore[arg-type]
            pytest.fail("the body must not run")
    assert conn.sent[-1] == "ROLLBACK"
    assert not conn.is_in_transaction()


async def test_inside_a_transaction_a_unit_of_work_is_a_savepoint_scoped_after_it() -> None:
    conn = FakeConnection()
    conn.depth = 1  # a consumer's batch, begun by asyncpg
    with pytest.raises(ValueError, match="this record failed"):
        async with transaction(conn, "SELECT 1"):  # type: ignore[arg-type]
            raise ValueError("this record failed")
    async with transaction(conn, "SELECT 2"):  # type: ignore[arg-type]
        pass
    assert conn.sent == [
        "SAVEPOINT huddle_unit",
        "SELECT 1",
        "ROLLBACK TO SAVEPOINT huddle_unit; RELEASE SAVEPOINT huddle_unit",
        "SAVEPOINT huddle_unit",
        "SELECT 2",
        "RELEASE SAVEPOINT huddle_unit",
    ]
    assert conn.is_in_transaction()


def test_a_tenant_with_a_nul_character_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        scope_statement(Tenant("north\0"))
