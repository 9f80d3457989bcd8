"""DOMAIN.md, "Measuring whether it works": paired pre/post change with a t interval."""

from __future__ import annotations

import math

import pytest
from huddle_analytics.domain.outcomes import PairedChange, paired_change
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats


def test_paired_change_hand_computed_95_percent_interval() -> None:
    # differences post - pre = [-2, -3, -1]; mean -2; sd sqrt((0 + 1 + 1) / 2) = 1
    # se = 1 / sqrt(3) = 0.577350; t(0.975, df 2) = 4.302653; half width 2.484138
    change = paired_change([10, 12, 14], [8, 9, 13])
    assert change.n == 3
    assert change.mean_pre == 12
    assert change.mean_post == 10
    assert change.mean_difference == -2
    assert change.ci_low == pytest.approx(-2 - 2.484138, abs=1e-6)
    assert change.ci_high == pytest.approx(-2 + 2.484138, abs=1e-6)
    assert change.confidence == 0.95


def test_paired_change_hand_computed_90_percent_interval() -> None:
    # Same data; t(0.95, df 2) = 2.919986; half width 2.919986 / sqrt(3) = 1.685855
    change = paired_change([10, 12, 14], [8, 9, 13], confidence=0.90)
    assert change.ci_low == pytest.approx(-2 - 1.685855, abs=1e-6)
    assert change.ci_high == pytest.approx(-2 + 1.685855, abs=1e-6)
    assert change.confidence == 0.90


def test_paired_change_agrees_with_scipy_paired_t_test() -> None:
    pre = [22.0, 30.0, 41.0, 18.0, 27.0, 35.0, 29.0]
    post = [19.0, 26.0, 40.0, 20.0, 21.0, 30.0, 28.0]
    change = paired_change(pre, post, confidence=0.99)
    expected = stats.ttest_rel(post, pre).confidence_interval(confidence_level=0.99)
    assert change.ci_low == pytest.approx(expected.low)
    assert change.ci_high == pytest.approx(expected.high)


def test_paired_change_when_all_differences_are_equal_the_interval_is_the_point() -> None:
    change = paired_change([1, 2, 3], [3, 4, 5])
    assert change == PairedChange(
        n=3,
        mean_pre=2,
        mean_post=4,
        mean_difference=2,
        ci_low=2,
        ci_high=2,
        confidence=0.95,
    )
    unchanged = paired_change([7.5, 7.5], [7.5, 7.5])
    assert (unchanged.mean_difference, unchanged.ci_low, unchanged.ci_high) == (0, 0, 0)


def test_paired_change_needs_equal_lengths() -> None:
    with pytest.raises(ValueError, match="pre and post must pair up one to one, got 3 and 2"):
        paired_change([1, 2, 3], [1, 2])


@pytest.mark.parametrize(("pre", "post"), [([], []), ([4.0], [5.0])])
def test_paired_change_needs_at_least_2_pairs(pre: list[float], post: list[float]) -> None:
    with pytest.raises(ValueError, match=f"at least 2 pairs, got {len(pre)}"):
        paired_change(pre, post)


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, 95])
def test_paired_change_confidence_is_strictly_between_0_and_1(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        paired_change([1, 2], [2, 4], confidence=confidence)


@pytest.mark.parametrize(
    ("pre", "post", "message"),
    [
        ([1, math.nan], [1, 2], "pre value 2 must be a finite number"),
        ([1, 2], [math.inf, 2], "post value 1 must be a finite number"),
        ([1, True], [1, 2], "pre value 2 must be a finite number"),
        ([1, 2], [1, "2"], "post value 2 must be a finite number"),
        ("12", [1, 2], "pre must be a sequence of numbers"),
    ],
)
def test_paired_change_refuses_values_that_are_not_finite_numbers(
    pre: object, post: object, message: str
) -> None:
    with pytest.raises(ValueError, match="must be a") as refused:
        paired_change(pre, post)  # type: ignore[arg-type]
    assert str(refused.value) == message


scores = st.floats(min_value=-1000, max_value=1000, allow_nan=False, allow_infinity=False)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    n = draw(st.integers(min_value=2, max_value=40))
    pre = draw(st.lists(scores, min_size=n, max_size=n))
    post = draw(st.lists(scores, min_size=n, max_size=n))
    return pre, post


@given(pairs(), st.floats(min_value=0.5, max_value=0.999))
def test_paired_change_interval_is_centred_on_the_mean_difference(
    case: tuple[list[float], list[float]], confidence: float
) -> None:
    pre, post = case
    change = paired_change(pre, post, confidence)
    assert change.ci_low <= change.mean_difference <= change.ci_high
    assert change.mean_difference - change.ci_low == pytest.approx(
        change.ci_high - change.mean_difference, abs=1e-6
    )
    assert change.mean_difference == pytest.approx(change.mean_post - change.mean_pre, abs=1e-6)


@given(pairs())
def test_paired_change_swapping_pre_and_post_mirrors_the_interval(
    case: tuple[list[float], list[float]],
) -> None:
    pre, post = case
    forward = paired_change(pre, post)
    backward = paired_change(post, pre)
    assert backward.mean_difference == pytest.approx(-forward.mean_difference, abs=1e-6)
    assert backward.ci_low == pytest.approx(-forward.ci_high, abs=1e-6)
    assert backward.ci_high == pytest.approx(-forward.ci_low, abs=1e-6)


@given(pairs(), st.floats(min_value=0.5, max_value=0.99), st.floats(min_value=0.5, max_value=0.99))
def test_paired_change_higher_confidence_never_narrows_the_interval(
    case: tuple[list[float], list[float]], first: float, second: float
) -> None:
    assume(first != second)
    lower, higher = sorted((first, second))
    pre, post = case
    narrow = paired_change(pre, post, lower)
    wide = paired_change(pre, post, higher)
    assert wide.ci_high - wide.ci_low >= narrow.ci_high - narrow.ci_low - 1e-9
