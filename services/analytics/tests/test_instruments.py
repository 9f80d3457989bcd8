"""DOMAIN.md, "Measuring whether it works": each instrument's scoring rule, by name."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest
from huddle_analytics.domain.instruments import (
    SPECS,
    Instrument,
    InvalidAnswers,
    external_score,
    needs_crisis_resources,
    score,
)
from hypothesis import given
from hypothesis import strategies as st

SCORED = [i for i in Instrument if not SPECS[i].external]

# Published range of every measure, written out independently of the module under test.
MEASURE_RANGES: Mapping[Instrument, Mapping[str, tuple[float, float]]] = {
    Instrument.PROQOL5: {
        "compassion_satisfaction": (10, 50),
        "burnout": (10, 50),
        "secondary_traumatic_stress": (10, 50),
    },
    Instrument.MINI_Z: {"burnout_item": (1, 5)},
    Instrument.BRS: {"resilience": (1, 5)},
    Instrument.IES_R: {
        "total": (0, 88),
        "intrusion": (0, 4),
        "avoidance": (0, 4),
        "hyperarousal": (0, 4),
    },
    Instrument.SVEST: {
        name: (1, 5)
        for name in (
            "psychological_distress",
            "physical_distress",
            "colleague_support",
            "supervisor_support",
            "institutional_support",
            "non_work_related_support",
            "professional_self_efficacy",
            "turnover_intentions",
            "absenteeism",
        )
    },
    Instrument.PHQ9: {"total": (0, 27)},
    Instrument.GAD7: {"total": (0, 21)},
}


def answers_with(count: int, values: Mapping[int, int], fill: int) -> list[int]:
    """`count` answers, all `fill` except the 1-based positions in `values`."""
    return [values.get(position, fill) for position in range(1, count + 1)]


def phq9_with_total(total: int) -> list[int]:
    """PHQ-9 answers adding up to `total`, item 9 kept at 0 where the total allows it."""
    answers = [0] * 9
    left = total
    for index in range(9):
        answers[index] = min(3, left)
        left -= answers[index]
    return answers


def gad7_with_total(total: int) -> list[int]:
    answers = [0] * 7
    left = total
    for index in range(7):
        answers[index] = min(3, left)
        left -= answers[index]
    return answers


def refusal(instrument: Instrument, answers: Sequence[object]) -> str:
    with pytest.raises(InvalidAnswers) as refused:
        score(instrument, answers)  # type: ignore[arg-type]
    return str(refused.value)


# --- ProQOL 5 -----------------------------------------------------------------------------------


def test_proqol_worked_example_sums_each_subscale() -> None:
    answers = [
        5,
        2,
        4,
        4,
        1,
        4,
        2,
        1,
        2,
        1,
        2,
        5,
        1,
        1,
        5,
        4,
        4,
        4,
        2,
        4,
        2,
        5,
        2,
        5,
        1,
        2,
        4,
        1,
        5,
        4,
    ]
    result = score(Instrument.PROQOL5, answers)
    # CS items 3,6,12,16,18,20,22,24,27,30: 4+4+5+4+4+4+5+5+4+4 = 43
    # BO items 1*,4*,8,10,15*,17*,19,21,26,29* (* reversed 6-x): 1+2+1+1+1+2+2+2+2+1 = 15
    # STS items 2,5,7,9,11,13,14,23,25,28: 2+1+2+2+2+1+1+2+1+1 = 15
    assert result.measures == {
        "compassion_satisfaction": 43,
        "burnout": 15,
        "secondary_traumatic_stress": 15,
    }
    assert result.bands == {
        "compassion_satisfaction": "high",
        "burnout": "low",
        "secondary_traumatic_stress": "low",
    }
    assert result.flags == frozenset()


def test_proqol_burnout_reverses_items_1_4_15_17_29() -> None:
    reversed_items = (1, 4, 15, 17, 29)
    # Reversed items answered 1 count 5 each; the other five burnout items stay 3: 5*5 + 5*3 = 40
    low_on_reversed = answers_with(30, dict.fromkeys(reversed_items, 1), fill=3)
    assert score(Instrument.PROQOL5, low_on_reversed).measures["burnout"] == 40
    # Reversed items answered 5 count 1 each: 5*1 + 5*3 = 20
    high_on_reversed = answers_with(30, dict.fromkeys(reversed_items, 5), fill=3)
    assert score(Instrument.PROQOL5, high_on_reversed).measures["burnout"] == 20
    # 2 <-> 4 as well: 5*4 + 5*3 = 35
    twos = answers_with(30, dict.fromkeys(reversed_items, 2), fill=3)
    assert score(Instrument.PROQOL5, twos).measures["burnout"] == 35
    # The other two subscales reverse nothing: all 1s sum to 10, not 50.
    all_ones = score(Instrument.PROQOL5, [1] * 30).measures
    assert all_ones["compassion_satisfaction"] == 10
    assert all_ones["secondary_traumatic_stress"] == 10
    assert all_ones["burnout"] == 5 * 5 + 5 * 1


@pytest.mark.parametrize(
    ("sts_answers", "total", "band"),
    [
        ([2] * 8 + [3] * 2, 22, "low"),  # 16 + 6
        ([2] * 7 + [3] * 3, 23, "moderate"),  # 14 + 9
        ([4] * 9 + [5] * 1, 41, "moderate"),  # 36 + 5
        ([4] * 8 + [5] * 2, 42, "high"),  # 32 + 10
    ],
)
def test_proqol_bands_22_or_less_low_23_to_41_moderate_42_or_more_high(
    sts_answers: list[int], total: int, band: str
) -> None:
    sts_items = (2, 5, 7, 9, 11, 13, 14, 23, 25, 28)
    answers = answers_with(30, dict(zip(sts_items, sts_answers, strict=True)), fill=3)
    result = score(Instrument.PROQOL5, answers)
    assert result.measures["secondary_traumatic_stress"] == total
    assert result.bands["secondary_traumatic_stress"] == band


# --- Mini-Z -------------------------------------------------------------------------------------


def test_mini_z_item_3_at_3_or_more_means_burnout() -> None:
    burnt_out = score(Instrument.MINI_Z, answers_with(10, {3: 3}, fill=1))
    assert burnt_out.measures == {"burnout_item": 3}
    assert burnt_out.flags == {"burnout"}
    assert "burnout" in score(Instrument.MINI_Z, answers_with(10, {3: 5}, fill=1)).flags
    # Only item 3 decides: every other item at its worst and item 3 at 2 is not burnout.
    not_burnt_out = score(Instrument.MINI_Z, answers_with(10, {3: 2}, fill=5))
    assert not_burnt_out.measures == {"burnout_item": 2}
    assert not_burnt_out.flags == frozenset()


def test_mini_z_1_0_has_no_invented_total() -> None:
    # The "joy" summary belongs to Mini-Z 2.0; version 1.0 scores only its burnout item.
    assert SPECS[Instrument.MINI_Z].measures == ("burnout_item",)
    assert set(score(Instrument.MINI_Z, [3] * 10).measures) == {"burnout_item"}


# --- Brief Resilience Scale ---------------------------------------------------------------------


def test_brs_items_2_4_6_reversed_and_below_3_is_low() -> None:
    # 3, 4->2, 3, 4->2, 3, 4->2 = 15; 15 / 6 = 2.5
    result = score(Instrument.BRS, [3, 4, 3, 4, 3, 4])
    assert result.measures == {"resilience": 2.5}
    assert result.bands == {"resilience": "low"}
    assert result.flags == {"low_resilience"}


@pytest.mark.parametrize(
    ("answers", "mean", "band"),
    [
        ([3, 3, 3, 3, 2, 3], 17 / 6, "low"),  # 3+3+3+3+2+3 = 17 -> 2.83
        ([3, 3, 3, 3, 3, 3], 18 / 6, "normal"),  # 18 -> 3.00 exactly
        ([5, 2, 4, 2, 4, 2], 25 / 6, "normal"),  # 5+4+4+4+4+4 = 25 -> 4.17
        ([5, 2, 5, 2, 4, 2], 26 / 6, "high"),  # 5+4+5+4+4+4 = 26 -> 4.33 (> 4.30)
        ([5, 1, 5, 1, 5, 1], 5.0, "high"),  # 30 -> 5.00
    ],
)
def test_brs_bands_below_3_low_3_to_4_30_normal_above_4_30_high(
    answers: list[int], mean: float, band: str
) -> None:
    result = score(Instrument.BRS, answers)
    assert result.measures["resilience"] == pytest.approx(mean)
    assert result.bands["resilience"] == band
    assert ("low_resilience" in result.flags) == (band == "low")


# --- IES-R --------------------------------------------------------------------------------------


def test_ies_r_33_or_more_is_probable_ptsd() -> None:
    just_below = score(Instrument.IES_R, [2] * 10 + [1] * 12)  # 20 + 12 = 32
    assert just_below.measures["total"] == 32
    assert "probable_ptsd" not in just_below.flags
    at_cut_off = score(Instrument.IES_R, [2] * 11 + [1] * 11)  # 22 + 11 = 33
    assert at_cut_off.measures["total"] == 33
    assert at_cut_off.flags == {"probable_ptsd"}


def test_ies_r_subscales_are_means_of_intrusion_avoidance_hyperarousal_items() -> None:
    intrusion = dict(zip((1, 2, 3, 6, 9, 14, 16, 20), (4, 4, 4, 4, 3, 3, 2, 2), strict=True))
    avoidance = dict.fromkeys((5, 7, 8, 11, 12, 13, 17, 22), 2)
    hyperarousal = dict(zip((4, 10, 15, 18, 19, 21), (1, 1, 1, 0, 0, 0), strict=True))
    answers = answers_with(22, intrusion | avoidance | hyperarousal, fill=-1)
    assert -1 not in answers
    result = score(Instrument.IES_R, answers)
    # intrusion 26/8 = 3.25; avoidance 16/8 = 2.0; hyperarousal 3/6 = 0.5; total 26+16+3 = 45
    assert result.measures == {
        "total": 45,
        "intrusion": 3.25,
        "avoidance": 2.0,
        "hyperarousal": 0.5,
    }
    assert result.flags == {"probable_ptsd"}


# --- PHQ-9 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately_severe"),
        (19, "moderately_severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_bands_5_10_15_20(total: int, band: str) -> None:
    result = score(Instrument.PHQ9, phq9_with_total(total))
    assert result.measures == {"total": total}
    assert result.bands == {"total": band}


def test_phq9_item_9_above_zero_shows_crisis_resources() -> None:
    # Total 1, "minimal", and still an escalation: item 9 alone decides.
    only_item_9 = [0] * 8 + [1]
    result = score(Instrument.PHQ9, only_item_9)
    assert result.measures == {"total": 1}
    assert result.bands == {"total": "minimal"}
    assert result.flags == {"crisis"}
    assert needs_crisis_resources(Instrument.PHQ9, only_item_9)
    # Total 24, "severe", but item 9 at 0 is no crisis flag.
    severe_without_item_9 = [3] * 8 + [0]
    assert score(Instrument.PHQ9, severe_without_item_9).flags == frozenset()
    assert not needs_crisis_resources(Instrument.PHQ9, severe_without_item_9)


def test_only_phq9_shows_crisis_resources() -> None:
    assert not needs_crisis_resources(Instrument.GAD7, [3] * 7)
    assert not needs_crisis_resources(Instrument.IES_R, [4] * 22)
    with pytest.raises(InvalidAnswers, match="PHQ-9 has 9 items, got 8"):
        needs_crisis_resources(Instrument.PHQ9, [0] * 7 + [3])


# --- GAD-7 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_bands_5_10_15(total: int, band: str) -> None:
    result = score(Instrument.GAD7, gad7_with_total(total))
    assert result.measures == {"total": total}
    assert result.bands == {"total": band}
    assert result.flags == frozenset()


# --- SVEST --------------------------------------------------------------------------------------


def test_svest_mean_per_dimension_and_outcome_with_items_9_11_15_19_25_reversed() -> None:
    answers = [
        *(4, 4, 5, 3),  # 1-4 psychological distress: 16/4 = 4.0
        *(2, 3, 2, 1),  # 5-8 physical distress: 8/4 = 2.0
        *(2, 4, 1, 5),  # 9-12 colleague support, 9 and 11 reversed: (4+4+5+5)/4 = 4.5
        *(4, 4, 2, 5),  # 13-16 supervisor support, 15 reversed: (4+4+4+5)/4 = 4.25
        *(3, 3, 4),  # 17-19 institutional support, 19 reversed: (3+3+2)/3 = 2.667
        *(5, 4),  # 20-21 non-work-related support: 9/2 = 4.5
        *(2, 1, 2, 4),  # 22-25 professional self-efficacy, 25 reversed: (2+1+2+2)/4 = 1.75
        *(1, 2),  # 26-27 turnover intentions: 3/2 = 1.5
        *(1, 1),  # 28-29 absenteeism: 2/2 = 1.0
    ]
    result = score(Instrument.SVEST, answers)
    assert result.measures == pytest.approx(
        {
            "psychological_distress": 4.0,
            "physical_distress": 2.0,
            "colleague_support": 4.5,
            "supervisor_support": 4.25,
            "institutional_support": 8 / 3,
            "non_work_related_support": 4.5,
            "professional_self_efficacy": 1.75,
            "turnover_intentions": 1.5,
            "absenteeism": 1.0,
        }
    )
    assert tuple(result.measures) == SPECS[Instrument.SVEST].measures
    assert result.bands == {}
    assert result.flags == frozenset()


def test_svest_has_29_items_in_7_dimensions_and_2_outcomes() -> None:
    spec = SPECS[Instrument.SVEST]
    assert (spec.items, spec.minimum, spec.maximum) == (29, 1, 5)
    assert len(spec.measures) == 9
    assert spec.measures[-2:] == ("turnover_intentions", "absenteeism")


# --- MBI ----------------------------------------------------------------------------------------


def test_mbi_enters_only_as_an_external_score() -> None:
    assert SPECS[Instrument.MBI].external
    assert [i for i in Instrument if SPECS[i].external] == [Instrument.MBI]
    with pytest.raises(InvalidAnswers, match="external_score"):
        score(Instrument.MBI, [0] * 22)
    entered = external_score(
        Instrument.MBI,
        {"emotional_exhaustion": 27, "depersonalisation": 10.5, "personal_accomplishment": 40},
    )
    assert entered.instrument is Instrument.MBI
    assert entered.measures == {
        "emotional_exhaustion": 27.0,
        "depersonalisation": 10.5,
        "personal_accomplishment": 40.0,
    }
    assert entered.bands == {}
    assert entered.flags == frozenset()


def test_mbi_external_scores_accept_their_range_ends() -> None:
    lowest = {"emotional_exhaustion": 0, "depersonalisation": 0, "personal_accomplishment": 0}
    highest = {"emotional_exhaustion": 54, "depersonalisation": 30, "personal_accomplishment": 48}
    assert external_score(Instrument.MBI, lowest).measures == lowest
    assert external_score(Instrument.MBI, highest).measures == highest


@pytest.mark.parametrize(
    ("measures", "message"),
    [
        (
            {"emotional_exhaustion": 55, "depersonalisation": 0, "personal_accomplishment": 0},
            "emotional_exhaustion must be 0 to 54, got 55",
        ),
        (
            {"emotional_exhaustion": 0, "depersonalisation": 31, "personal_accomplishment": 0},
            "depersonalisation must be 0 to 30, got 31",
        ),
        (
            {"emotional_exhaustion": 0, "depersonalisation": 0, "personal_accomplishment": -1},
            "personal_accomplishment must be 0 to 48, got -1",
        ),
        (
            {"emotional_exhaustion": 0, "depersonalisation": 0},
            "MBI needs personal_accomplishment",
        ),
        (
            {
                "emotional_exhaustion": 0,
                "depersonalization": 0,
                "personal_accomplishment": 0,
            },
            "MBI has no measure 'depersonalization'",
        ),
        (
            {"emotional_exhaustion": True, "depersonalisation": 0, "personal_accomplishment": 0},
            "emotional_exhaustion must be a number",
        ),
        (
            {
                "emotional_exhaustion": math.nan,
                "depersonalisation": 0,
                "personal_accomplishment": 0,
            },
            "emotional_exhaustion must be a number",
        ),
    ],
)
def test_mbi_external_scores_are_checked_by_name_and_range(
    measures: dict[str, float], message: str
) -> None:
    with pytest.raises(InvalidAnswers) as refused:
        external_score(Instrument.MBI, measures)
    assert str(refused.value) == message


def test_only_the_mbi_is_entered_as_an_external_score() -> None:
    with pytest.raises(InvalidAnswers) as refused:
        external_score(Instrument.PHQ9, {"total": 12})
    assert str(refused.value) == "PHQ-9 is scored from its answers, not as an external score"


# --- Refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "count", "message"),
    [
        (Instrument.PHQ9, 8, "PHQ-9 has 9 items, got 8"),
        (Instrument.PHQ9, 10, "PHQ-9 has 9 items, got 10"),
        (Instrument.GAD7, 0, "GAD-7 has 7 items, got 0"),
        (Instrument.PROQOL5, 29, "ProQOL 5 has 30 items, got 29"),
        (Instrument.IES_R, 21, "IES-R has 22 items, got 21"),
        (Instrument.SVEST, 30, "SVEST has 29 items, got 30"),
        (Instrument.BRS, 5, "BRS has 6 items, got 5"),
        (Instrument.MINI_Z, 9, "Mini-Z has 10 items, got 9"),
    ],
)
def test_wrong_number_of_answers_is_refused_with_the_count(
    instrument: Instrument, count: int, message: str
) -> None:
    in_range = SPECS[instrument].minimum
    assert refusal(instrument, [in_range] * count) == message


@pytest.mark.parametrize(
    ("instrument", "answers", "message"),
    [
        (Instrument.PHQ9, [1, 2, 7, 0, 1, 2, 3, 0, 1], "item 3 must be 0 to 3, got 7"),
        (Instrument.PHQ9, [1, 2, 3, 0, 1, 2, 3, 0, -1], "item 9 must be 0 to 3, got -1"),
        (Instrument.GAD7, [4, 0, 0, 0, 0, 0, 0], "item 1 must be 0 to 3, got 4"),
        (Instrument.PROQOL5, [3] * 29 + [0], "item 30 must be 1 to 5, got 0"),
        (Instrument.BRS, [1, 2, 3, 4, 5, 6], "item 6 must be 1 to 5, got 6"),
        (Instrument.IES_R, [0] * 21 + [5], "item 22 must be 0 to 4, got 5"),
        (Instrument.SVEST, [3] * 12 + [0] + [3] * 16, "item 13 must be 1 to 5, got 0"),
        (Instrument.MINI_Z, [1, 2, 6, 1, 2, 3, 4, 5, 1, 2], "item 3 must be 1 to 5, got 6"),
    ],
)
def test_answer_out_of_range_names_only_that_item(
    instrument: Instrument, answers: list[int], message: str
) -> None:
    # The exact message proves no other answer is echoed back.
    assert refusal(instrument, answers) == message


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([0, True, 0, 0, 0, 0, 0, 0, 0], "item 2 must be an integer, got bool"),
        ([0, 0, 1.0, 0, 0, 0, 0, 0, 0], "item 3 must be an integer, got float"),
        ([0, 0, 0, "1", 0, 0, 0, 0, 0], "item 4 must be an integer, got str"),
        ([0, 0, 0, 0, None, 0, 0, 0, 0], "item 5 must be an integer, got NoneType"),
        ("000000000", "PHQ-9 answers must be a sequence of integers"),
        ({0, 1, 2}, "PHQ-9 answers must be a sequence of integers"),
    ],
)
def test_answers_must_be_integers_not_bools_floats_or_text(answers: object, message: str) -> None:
    assert refusal(Instrument.PHQ9, answers) == message  # type: ignore[arg-type]


def test_unknown_instrument_is_refused() -> None:
    with pytest.raises(InvalidAnswers, match="unknown instrument 'audit_c'"):
        score("audit_c", [0] * 10)  # type: ignore[arg-type]


def test_instruments_may_be_named_by_their_value() -> None:
    assert score("phq9", [1] * 9).instrument is Instrument.PHQ9  # type: ignore[arg-type]


def test_every_instrument_states_its_licence_in_one_line() -> None:
    for instrument, spec in SPECS.items():
        assert spec.instrument is instrument
        assert spec.licence.strip()
        assert "\n" not in spec.licence
    assert set(SPECS) == set(Instrument)


# --- Properties ---------------------------------------------------------------------------------


@st.composite
def completed(draw: st.DrawFn) -> tuple[Instrument, list[int]]:
    instrument = draw(st.sampled_from(SCORED))
    spec = SPECS[instrument]
    answer = st.integers(min_value=spec.minimum, max_value=spec.maximum)
    return instrument, draw(st.lists(answer, min_size=spec.items, max_size=spec.items))


@given(completed())
def test_every_measure_stays_within_its_published_range(
    case: tuple[Instrument, list[int]],
) -> None:
    instrument, answers = case
    result = score(instrument, answers)
    ranges = MEASURE_RANGES[instrument]
    assert tuple(result.measures) == SPECS[instrument].measures
    assert set(result.measures) == set(ranges)
    for name, value in result.measures.items():
        low, high = ranges[name]
        assert low <= value <= high, name
    assert set(result.bands) <= set(result.measures)


@given(completed())
def test_reversing_every_answer_mirrors_every_measure(case: tuple[Instrument, list[int]]) -> None:
    # Answer a -> min + max - a flips every item, reverse-keyed or not, so each measure m -> lo + hi - m.
    instrument, answers = case
    spec = SPECS[instrument]
    mirrored = [spec.minimum + spec.maximum - a for a in answers]
    before = score(instrument, answers).measures
    after = score(instrument, mirrored).measures
    for name, (low, high) in MEASURE_RANGES[instrument].items():
        assert after[name] == pytest.approx(low + high - before[name]), name


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=9, max_size=9))
def test_phq9_crisis_flag_follows_item_9_alone(answers: list[int]) -> None:
    assert needs_crisis_resources(Instrument.PHQ9, answers) == (answers[8] > 0)
    assert ("crisis" in score(Instrument.PHQ9, answers).flags) == (answers[8] > 0)
