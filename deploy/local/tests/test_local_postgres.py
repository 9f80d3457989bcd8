"""The embedded PostgreSQL server on a loopback port."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from huddle_local._util import free_ports
from huddle_local.postgres import EmbeddedPostgres
from huddle_local.testing import scratch_dir


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    # Not tmp_path: as root the server runs as another user who must traverse its parents.
    path = scratch_dir("huddle-test-pg-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_url_and_args(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path, port=5544, fast=True)
    assert server.url == "postgresql://postgres@127.0.0.1:5544/postgres"
    args = server._server_args()
    assert args[:8] == [
        "-D", str(tmp_path.resolve() / "pgdata"), "-h", "127.0.0.1", "-p", "5544", "-k",
        str(tmp_path.resolve() / "run"),
    ]  # fmt: skip
    assert "fsync=off" in args
    assert "max_connections=200" in args
    assert "fsync=off" not in EmbeddedPostgres(tmp_path)._server_args()
    assert not server.is_running()


@pytest.mark.integration
async def test_accepts_connections_and_queries(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS local_probe (id int PRIMARY KEY, note text)")
        await conn.execute("INSERT INTO local_probe VALUES (1, 'héllo') ON CONFLICT DO NOTHING")
        assert await conn.fetchval("SELECT note FROM local_probe WHERE id = 1") == "héllo"
        assert await conn.fetchval("SELECT current_user") == "postgres"
        assert await conn.fetchval("SHOW server_encoding") == "UTF8"
        assert int(await conn.fetchval("SHOW max_connections")) == 200
        await conn.execute("DROP TABLE local_probe")
    finally:
        await conn.close()


@pytest.mark.integration
async def test_restart_keeps_data_and_stops_by_pid_file(pg_dir: Path) -> None:
    (port,) = free_ports(1)
    first = EmbeddedPostgres(pg_dir, port=port)
    first.start()
    try:
        await first.wait_ready_async(60)
        conn = await asyncpg.connect(first.url)
        await conn.execute("CREATE TABLE kept (x int)")
        await conn.close()
        other = EmbeddedPostgres(pg_dir, port=port)  # e.g. a later `huddle down`
        assert other.pid == first.pid
        other.stop()
        assert not other.is_running()
    finally:
        first.stop()
    with EmbeddedPostgres(pg_dir, port=port) as server:
        conn = await asyncpg.connect(server.url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM kept") == 0
        finally:
            await conn.close()
