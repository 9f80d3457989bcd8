"""The analysts' stream's anonymisation rules (DOMAIN.md, Anonymised reporting)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from huddle_analytics.application.releases import cutoff
from huddle_analytics.domain.load import gini
from huddle_analytics.domain.periods import Grain, label, waited_band
from huddle_analytics.domain.release import QUASI_IDENTIFIERS, Item, Unit, release
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


def requested(key: str, **values: object) -> Item:
    return Item(
        unit=key, group=("support_requested", "2026-08"), values=tuple(sorted(values.items()))
    )


def test_every_released_group_holds_at_least_k_units() -> None:
    units = [unit(f"a{i}", "north") for i in range(11)] + [unit(f"b{i}", "south") for i in range(3)]
    decided = release(units, [requested(u.key) for u in units], k=11)
    assert set(decided.units) == {f"a{i}" for i in range(11)}
    assert all(
        d.shown == ("hospital", "discipline", "clinical_area") for d in decided.units.values()
    )


def test_small_groups_are_coarsened_before_they_are_withheld() -> None:
    # Six ICU nurses and six ED nurses: neither group reaches 11, together they do.
    units = [unit(f"i{i}", "north", area="icu") for i in range(6)]
    units += [unit(f"e{i}", "north", area="emergency") for i in range(6)]
    decided = release(units, [requested(u.key) for u in units], k=11)
    assert len(decided.units) == 12
    assert {d.coarsened for d in decided.units.values()} == {("clinical_area",)}


def test_a_records_own_values_go_before_its_group_is_coarsened() -> None:
    # Eleven requests from one ward, two of them urgent: "urgent" would be a group of two.
    units = [unit(f"u{i}", "north") for i in range(11)]
    items = [
        requested(u.key, urgency="urgent" if i < 2 else "routine") for i, u in enumerate(units)
    ]
    decided = release(units, items, k=11)
    assert len(decided.units) == 11
    assert {d.coarsened for d in decided.units.values()} == {()}
    assert decided.keeps_values == [False] * 11


def test_a_group_that_never_reaches_k_waits() -> None:
    units = [unit(f"x{i}", "north") for i in range(10)]
    assert release(units, [requested(u.key) for u in units], k=11).units == {}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["north", "south", "east"]),
            st.sampled_from(["nurse", "physician", None]),
            st.sampled_from(["icu", "emergency", None]),
            st.lists(
                st.tuples(
                    st.sampled_from(["support_requested", "referral_made", "first_contact"]),
                    st.sampled_from(["2026-07", "2026-08"]),
                    st.sampled_from(["urgent", "routine"]),
                ),
                min_size=1,
                max_size=3,
            ),
        ),
        max_size=60,
    ),
    st.integers(min_value=2, max_value=15),
)
def test_no_published_group_of_records_is_smaller_than_k(
    cases: list[tuple[str, str | None, str | None, list[tuple[str, str, str]]]], k: int
) -> None:
    units = [unit(str(i), h, d, a) for i, (h, d, a, _) in enumerate(cases)]
    items: list[Item] = []
    anchors: list[bool] = []
    for i, (_, _, _, records) in enumerate(cases):
        for n, (kind, month, urgency) in enumerate(records):
            items.append(Item(unit=str(i), group=(kind, month), values=(("urgency", urgency),)))
            anchors.append(n == 0)
    by_key = {u.key: u for u in units}
    decided = release(units, items, k, anchors)
    published: Counter[tuple[object, ...]] = Counter()
    linked: dict[str, set[tuple[object, ...]]] = {}
    for i in decided.released(items):
        item = items[i]
        values = item.values if decided.keeps_values[i] else ()
        if decided.detached[i]:
            published[(item.group, "detached", values)] += 1
            continue
        shown = decided.units[item.unit].shown
        who = tuple(by_key[item.unit].quasi[q] if q in shown else None for q in QUASI_IDENTIFIERS)
        # What an analyst sees of the record, coarsening marks included.
        published[(item.group, shown, who, values)] += 1
        linked.setdefault(item.unit, set()).add((shown, who))
    assert all(n >= k for n in published.values()), published
    # Records linked to one unit all describe it alike: linking them reveals nothing finer.
    assert all(len(descriptions) == 1 for descriptions in linked.values())


def test_a_rare_record_is_detached_from_its_case_rather_than_coarsening_the_case() -> None:
    units = [unit(f"c{i}", "north") for i in range(12)]
    items = [requested(u.key) for u in units]
    anchors = [True] * 12
    # Two of the twelve cases were referred on: "referrals in north" would be a group of two.
    items += [Item(unit=f"c{i}", group=("referral_made", "2026-08"), values=()) for i in range(2)]
    anchors += [False, False]
    decided = release(units, items, 11, anchors)
    assert {d.shown for d in decided.units.values()} == {
        ("hospital", "discipline", "clinical_area")
    }
    assert decided.detached[12:] == [True, True]
    assert {12, 13} <= decided.waiting  # detached, they are still a group of two: they wait


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
