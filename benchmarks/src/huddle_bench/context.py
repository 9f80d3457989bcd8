"""What every measure is given: where the servers are, the mode, the seed and the progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.progress import Progress, TaskID


@dataclass
class Context:
    smoke: bool
    seed: int = 6
    kafka_bootstrap: str | None = None
    database_url: str | None = None
    server_pids: dict[str, int] = field(default_factory=dict)
    """The Kafka broker's and the postmaster's pids, when this run started them."""
    backfill_reports: int | None = None
    """Reports per back-fill run instead of its size's default (``--backfill-reports``)."""
    backfill_replicas: int | None = None
    """Intake replicas in the back-fill instead of its default (``--backfill-replicas``)."""
    progress: Progress = field(default_factory=lambda: Progress(disable=True))
    # Built once per session and shared across runs (test data, migrated schemas).
    cache: dict[str, Any] = field(default_factory=dict)

    def kafka(self) -> str:
        if self.kafka_bootstrap is None:
            raise RuntimeError("this measure needs Kafka, but no broker was started")
        return self.kafka_bootstrap

    def database(self) -> str:
        if self.database_url is None:
            raise RuntimeError("this measure needs PostgreSQL, but no server was started")
        return self.database_url

    @contextmanager
    def task(self, description: str, total: float | None) -> Iterator[Tracker]:
        """A progress bar for one step; removed when the step ends."""
        task_id = self.progress.add_task(description, total=total)
        try:
            yield Tracker(self.progress, task_id)
        finally:
            self.progress.remove_task(task_id)


@dataclass
class Tracker:
    progress: Progress
    task_id: TaskID

    def advance(self, amount: float = 1) -> None:
        self.progress.advance(self.task_id, amount)

    def update(self, completed: float) -> None:
        self.progress.update(self.task_id, completed=completed)
