"""The analysts' stream's anonymisation rules (DOMAIN.md, Anonymised reporting)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from huddle_analytics.application.releases import cutoff
from huddle_analytics.domain.load import gini
from huddle_analytics.domain.periods import Grain, label, waited_band
from huddle_analytics.domain.release import Unit, release
from huddle_contracts.vocabulary import DurationBand
from hypothesis import given, settings
from hypothesis import strategies as st


def unit(
    key: str, hospital: str, discipline: str | None = "nurse", area: str | None = "icu"
) -> Unit:
    return Unit(
        key=key,
        kind="case",
        quasi={"hospital": hospital, "discipline": discipline, "clinical_area": area},
    )


def test_every_released_group_holds_at_least_k_units() -> None:
    units = [unit(f"a{i}", "north") for i in range(11)] + [unit(f"b{i}", "south") for i in range(3)]
    decided = release(units, k=11)
    assert {key for key in decided} == {f"a{i}" for i in range(11)}
    assert all(d.shown == ("hospital", "discipline", "clinical_area") for d in decided.values())


def test_small_groups_are_coarsened_before_they_are_withheld() -> None:
    # Six ICU nurses and six ED nurses: neither group reaches 11, together they do.
    units = [unit(f"i{i}", "north", area="icu") for i in range(6)]
    units += [unit(f"e{i}", "north", area="emergency") for i in range(6)]
    decided = release(units, k=11)
    assert len(decided) == 12
    assert {d.coarsened for d in decided.values()} == {("clinical_area",)}


def test_a_group_that_never_reaches_k_waits() -> None:
    decided = release([unit(f"x{i}", "north") for i in range(10)], k=11)
    assert decided == {}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["north", "south", "east"]),
            st.sampled_from(["nurse", "physician", None]),
            st.sampled_from(["icu", "emergency", None]),
        ),
        max_size=80,
    ),
    st.integers(min_value=2, max_value=15),
)
def test_no_published_group_of_people_is_smaller_than_k(
    people: list[tuple[str, str | None, str | None]], k: int
) -> None:
    units = [unit(str(i), h, d, a) for i, (h, d, a) in enumerate(people)]
    by_key = {u.key: u for u in units}
    decided = release(units, k)
    groups = Counter(
        (
            d.shown,
            *(
                by_key[key].quasi[q] if q in d.shown else None
                for q in ("hospital", "discipline", "clinical_area")
            ),
        )
        for key, d in decided.items()
    )
    assert all(n >= k for n in groups.values())
    # Whatever waits could not have formed a group of k even at the network level.
    assert len(units) - len(decided) < k


def test_times_are_coarsened_to_the_month_and_waits_to_bands() -> None:
    moment = datetime(2026, 8, 14, 13, 7, 41, tzinfo=UTC)
    assert label(moment, Grain.MONTH) == "2026-08"
    assert label(moment, Grain.QUARTER) == "2026-Q3"
    assert waited_band(moment, moment + timedelta(minutes=29)) is DurationBand.UNDER_30_MINUTES
    assert waited_band(moment, moment + timedelta(minutes=30)) is DurationBand.UNDER_2_HOURS
    assert waited_band(moment, moment + timedelta(days=4)) is DurationBand.LONGER


def test_a_month_is_released_only_after_it_has_closed_and_the_grace_period_passed() -> None:
    grace = timedelta(hours=24)
    assert cutoff(datetime(2026, 9, 1, 12, tzinfo=UTC), grace) == datetime(2026, 8, 1, tzinfo=UTC)
    assert cutoff(datetime(2026, 9, 2, 1, tzinfo=UTC), grace) == datetime(2026, 9, 1, tzinfo=UTC)


def test_peer_load_fairness_is_zero_when_even_and_grows_when_uneven() -> None:
    assert gini([3, 3, 3, 3]) == 0
    assert gini([0, 0, 0, 12]) > gini([1, 2, 4, 5]) > 0
