"""A search's patience with a peer another search holds: waits run out under load, and then
searches go on without waiting for a while."""

from __future__ import annotations

from huddle_matching.application.search import HeldPeerWait


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_wait_that_got_the_peer_keeps_searches_waiting() -> None:
    clock = Monotonic()
    wait = HeldPeerWait(monotonic=clock)
    wait.record(got=True)
    assert wait.may_wait() and (wait.waited, wait.ran_out) == (1, 0)


def test_a_wait_that_ran_out_stops_waits_for_the_rest_period_only() -> None:
    clock = Monotonic()
    wait = HeldPeerWait(rest_s=1.0, monotonic=clock)
    assert wait.may_wait()
    wait.record(got=False)
    clock.now += 0.999
    assert not wait.may_wait()
    clock.now += 0.001
    assert wait.may_wait() and (wait.waited, wait.ran_out) == (1, 1)
