"""Matching's own Prometheus metrics, on the service's registry (nothing here names a person)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from huddle_matching.application.search import HeldPeerWait


class HeldPeerWaits(Collector):
    """``HeldPeerWait``'s counts, read at each scrape: waits that run out mean large consumer
    batches hold the peers, and searches stop waiting for a while."""

    def __init__(self, current: Callable[[], HeldPeerWait]) -> None:
        self._current = current

    def collect(self) -> Iterator[Metric]:
        wait = self._current()
        yield CounterMetricFamily(
            "huddle_matching_held_peer_waits",
            "Searches that waited for a peer another search was offering a case to",
            value=wait.waited,
        )
        yield CounterMetricFamily(
            "huddle_matching_held_peer_waits_run_out",
            "Waits for a held peer that ran out (searches then stop waiting for a while)",
            value=wait.ran_out,
        )
