"""Scoring of the validated outcome-survey instruments (DOMAIN.md, "Measuring whether it works").

Pure rules: answers by item position in, measures, bands and flags out. Only scoring rules live
here, never item wording, so nothing licensed is shipped; the MBI enters only as external scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from numbers import Integral, Real
from types import MappingProxyType


class Instrument(StrEnum):
    """A validated outcome-survey instrument."""

    PROQOL5 = "proqol5"
    MINI_Z = "mini_z"
    BRS = "brs"
    IES_R = "ies_r"
    SVEST = "svest"
    PHQ9 = "phq9"
    GAD7 = "gad7"
    MBI = "mbi"


class Flag(StrEnum):
    """A finding that needs action or attention, beyond the measure itself."""

    CRISIS = "crisis"
    PROBABLE_PTSD = "probable_ptsd"
    BURNOUT = "burnout"
    LOW_RESILIENCE = "low_resilience"


class InvalidAnswers(ValueError):
    """The answers cannot be scored; the message names the one thing wrong and no other answer."""


@dataclass(frozen=True)
class InstrumentSpec:
    """What an instrument asks and what its scoring returns."""

    instrument: Instrument
    items: int
    minimum: int
    maximum: int
    """Lowest and highest answer to any one item."""
    measures: tuple[str, ...]
    """Names of the measures `score` (or `external_score`) returns, in published order."""
    licence: str
    """Who owns the instrument and why we may ship its scoring."""
    external: bool = False
    """Scored elsewhere under licence; only its measures are entered, never its items."""


@dataclass(frozen=True)
class Score:
    """One completed instrument, scored."""

    instrument: Instrument
    measures: dict[str, float]
    bands: dict[str, str]
    """Band per measure, only where the instrument publishes bands."""
    flags: frozenset[str]


# ProQOL 5 (Stamm 2010, Concise ProQOL Manual; item keys checked against the ProQOL 5 form).
PROQOL_COMPASSION_SATISFACTION = (3, 6, 12, 16, 18, 20, 22, 24, 27, 30)
PROQOL_BURNOUT = (1, 4, 8, 10, 15, 17, 19, 21, 26, 29)
PROQOL_BURNOUT_REVERSED = frozenset({1, 4, 15, 17, 29})
PROQOL_SECONDARY_TRAUMATIC_STRESS = (2, 5, 7, 9, 11, 13, 14, 23, 25, 28)
PROQOL_LOW_AT_MOST = 22
PROQOL_HIGH_AT_LEAST = 42

# Mini-Z 1.0 (Linzer et al.; Rohland 2004): item 3 is the single burnout item, 3 or more = burnout.
# The "joy" summary score belongs to Mini-Z 2.0 (re-aligned items), so 1.0 gets no total here.
MINI_Z_BURNOUT_ITEM = 3
MINI_Z_BURNOUT_AT_LEAST = 3

# Brief Resilience Scale (Smith et al. 2008, Int J Behav Med 15:194): reverse 2, 4, 6; mean.
BRS_REVERSED = frozenset({2, 4, 6})
BRS_LOW_BELOW = 3.00
BRS_HIGH_ABOVE = 4.30

# IES-R (Weiss & Marmar 1997 subscales; Creamer et al. 2003: total >= 33 = probable PTSD).
IES_R_INTRUSION = (1, 2, 3, 6, 9, 14, 16, 20)
IES_R_AVOIDANCE = (5, 7, 8, 11, 12, 13, 17, 22)
IES_R_HYPERAROUSAL = (4, 10, 15, 18, 19, 21)
IES_R_PROBABLE_PTSD_AT_LEAST = 33

# PHQ-9 (Kroenke, Spitzer & Williams 2001): bands at 5/10/15/20; item 9 is self-harm thoughts.
PHQ9_SELF_HARM_ITEM = 9
PHQ9_BANDS = ((20, "severe"), (15, "moderately_severe"), (10, "moderate"), (5, "mild"))

# GAD-7 (Spitzer et al. 2006, Arch Intern Med): bands at 5/10/15.
GAD7_BANDS = ((15, "severe"), (10, "moderate"), (5, "mild"))

# SVEST (Burlison et al. 2017, J Patient Saf 13:93): 29 items, mean per dimension and outcome.
# Item-to-dimension map and reverse keys are as best known from the published instrument: they
# could NOT be checked against its item table here. Reversing 9, 11, 15, 19, 25 keys the support
# dimensions as "higher = more support" and the other six as "higher = worse" (professional
# self-efficacy included: higher = more doubt about one's own competence).
SVEST_DIMENSIONS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "psychological_distress": (1, 2, 3, 4),
        "physical_distress": (5, 6, 7, 8),
        "colleague_support": (9, 10, 11, 12),
        "supervisor_support": (13, 14, 15, 16),
        "institutional_support": (17, 18, 19),
        "non_work_related_support": (20, 21),
        "professional_self_efficacy": (22, 23, 24, 25),
        "turnover_intentions": (26, 27),
        "absenteeism": (28, 29),
    }
)
SVEST_REVERSED = frozenset({9, 11, 15, 19, 25})

# MBI (Maslach, Jackson & Leiter; Mind Garden): subscale sums of 0-6 items, 9 EE, 5 DP, 8 PA.
MBI_RANGES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "emotional_exhaustion": (0, 54),
        "depersonalisation": (0, 30),
        "personal_accomplishment": (0, 48),
    }
)

_TITLES: Mapping[Instrument, str] = MappingProxyType(
    {
        Instrument.PROQOL5: "ProQOL 5",
        Instrument.MINI_Z: "Mini-Z",
        Instrument.BRS: "BRS",
        Instrument.IES_R: "IES-R",
        Instrument.SVEST: "SVEST",
        Instrument.PHQ9: "PHQ-9",
        Instrument.GAD7: "GAD-7",
        Instrument.MBI: "MBI",
    }
)

SPECS: Mapping[Instrument, InstrumentSpec] = MappingProxyType(
    {
        Instrument.PROQOL5: InstrumentSpec(
            instrument=Instrument.PROQOL5,
            items=30,
            minimum=1,
            maximum=5,
            measures=("compassion_satisfaction", "burnout", "secondary_traumatic_stress"),
            licence=(
                "B. Hudnall Stamm / Center for Victims of Torture: free to copy and use with "
                "credit, unchanged and unsold (proqol.org)"
            ),
        ),
        Instrument.MINI_Z: InstrumentSpec(
            instrument=Instrument.MINI_Z,
            items=10,
            minimum=1,
            maximum=5,
            measures=("burnout_item",),
            licence=(
                "Mark Linzer, Hennepin Healthcare: free Mini Z 1.0; we ship only the published "
                "burnout-item cut-off, no item text"
            ),
        ),
        Instrument.BRS: InstrumentSpec(
            instrument=Instrument.BRS,
            items=6,
            minimum=1,
            maximum=5,
            measures=("resilience",),
            licence=(
                "Smith et al. 2008 (Int J Behav Med): published in full for research and "
                "clinical use; we ship only its scoring rule"
            ),
        ),
        Instrument.IES_R: InstrumentSpec(
            instrument=Instrument.IES_R,
            items=22,
            minimum=0,
            maximum=4,
            measures=("total", "intrusion", "avoidance", "hyperarousal"),
            licence=(
                "Weiss & Marmar 1997: free to use from the authors (UCSF); we ship only its "
                "published scoring rule"
            ),
        ),
        Instrument.SVEST: InstrumentSpec(
            instrument=Instrument.SVEST,
            items=29,
            minimum=1,
            maximum=5,
            measures=tuple(SVEST_DIMENSIONS),
            licence=(
                "Burlison et al. 2017 (J Patient Saf), St. Jude: published instrument; we ship "
                "only its scoring rule, no item text"
            ),
        ),
        Instrument.PHQ9: InstrumentSpec(
            instrument=Instrument.PHQ9,
            items=9,
            minimum=0,
            maximum=3,
            measures=("total",),
            licence=(
                "Spitzer, Williams, Kroenke et al. (Pfizer): no permission needed to reproduce, "
                "translate, display or distribute"
            ),
        ),
        Instrument.GAD7: InstrumentSpec(
            instrument=Instrument.GAD7,
            items=7,
            minimum=0,
            maximum=3,
            measures=("total",),
            licence=(
                "Spitzer, Kroenke, Williams & Lowe (Pfizer): no permission needed to reproduce, "
                "translate, display or distribute"
            ),
        ),
        Instrument.MBI: InstrumentSpec(
            instrument=Instrument.MBI,
            items=22,
            minimum=0,
            maximum=6,
            measures=tuple(MBI_RANGES),
            licence=(
                "Mind Garden, Inc. (licensed per use): never shipped; only subscale scores "
                "from a licensed administration are entered"
            ),
            external=True,
        ),
    }
)


def score(instrument: Instrument, answers: Sequence[int]) -> Score:
    """Score one completed instrument from its answers, item 1 first."""
    spec = _spec(instrument)
    if spec.external:
        raise InvalidAnswers(
            f"{_TITLES[spec.instrument]} is licensed (Mind Garden): "
            "enter its subscale scores with external_score, never its items"
        )
    return _SCORERS[spec.instrument](_validated(spec, answers))


def external_score(instrument: Instrument, measures: Mapping[str, float]) -> Score:
    """Enter the subscale scores of a licensed instrument scored elsewhere (only the MBI)."""
    spec = _spec(instrument)
    title = _TITLES[spec.instrument]
    if not spec.external:
        raise InvalidAnswers(f"{title} is scored from its answers, not as an external score")
    if not isinstance(measures, Mapping):
        raise InvalidAnswers(f"{title} scores must be a mapping of measure name to score")
    for name in measures:
        if name not in MBI_RANGES:
            raise InvalidAnswers(f"{title} has no measure {name!r}")
    values: dict[str, float] = {}
    for name, (low, high) in MBI_RANGES.items():
        if name not in measures:
            raise InvalidAnswers(f"{title} needs {name}")
        value = measures[name]
        # bool is a Real too, and NaN passes every range check: both would slip through.
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise InvalidAnswers(f"{name} must be a number")
        if not low <= value <= high:
            raise InvalidAnswers(f"{name} must be {low:g} to {high:g}, got {float(value):g}")
        values[name] = float(value)
    return Score(instrument=spec.instrument, measures=values, bands={}, flags=frozenset())


def needs_crisis_resources(instrument: Instrument, answers: Sequence[int]) -> bool:
    """Whether the answers must show crisis resources at once (PHQ-9 item 9 above 0)."""
    return Flag.CRISIS in score(instrument, answers).flags


def _spec(instrument: Instrument) -> InstrumentSpec:
    try:
        return SPECS[Instrument(instrument)]
    except ValueError:
        raise InvalidAnswers(f"unknown instrument {instrument!r}") from None


def _validated(spec: InstrumentSpec, answers: Sequence[int]) -> tuple[int, ...]:
    title = _TITLES[spec.instrument]
    # A str is a Sequence too; "0123" must not score as four answers.
    if isinstance(answers, str | bytes) or not isinstance(answers, Sequence):
        raise InvalidAnswers(f"{title} answers must be a sequence of integers")
    if len(answers) != spec.items:
        raise InvalidAnswers(f"{title} has {spec.items} items, got {len(answers)}")
    checked: list[int] = []
    for position, answer in enumerate(answers, start=1):
        # bool is an int subclass: True would silently score as 1.
        if isinstance(answer, bool) or not isinstance(answer, Integral):
            raise InvalidAnswers(f"item {position} must be an integer, got {type(answer).__name__}")
        value = int(answer)
        if not spec.minimum <= value <= spec.maximum:
            raise InvalidAnswers(
                f"item {position} must be {spec.minimum} to {spec.maximum}, got {value}"
            )
        checked.append(value)
    return tuple(checked)


def _item(answers: tuple[int, ...], position: int) -> int:
    return answers[position - 1]


def _reversed(spec: InstrumentSpec, value: int) -> int:
    return spec.minimum + spec.maximum - value


def _keyed(answers: tuple[int, ...], spec: InstrumentSpec, reverse: frozenset[int]) -> list[int]:
    """Answers with the reverse-keyed items flipped, still by position."""
    return [
        _reversed(spec, value) if position in reverse else value
        for position, value in enumerate(answers, start=1)
    ]


def _sum(answers: Sequence[int], items: Sequence[int]) -> float:
    return float(sum(answers[position - 1] for position in items))


def _mean(answers: Sequence[int], items: Sequence[int]) -> float:
    return _sum(answers, items) / len(items)


def _cut_band(total: float, bands: Sequence[tuple[int, str]], below: str) -> str:
    for at_least, band in bands:
        if total >= at_least:
            return band
    return below


def _proqol_band(total: float) -> str:
    if total <= PROQOL_LOW_AT_MOST:
        return "low"
    if total >= PROQOL_HIGH_AT_LEAST:
        return "high"
    return "moderate"


def _score_proqol5(answers: tuple[int, ...]) -> Score:
    keyed = _keyed(answers, SPECS[Instrument.PROQOL5], PROQOL_BURNOUT_REVERSED)
    measures = {
        "compassion_satisfaction": _sum(keyed, PROQOL_COMPASSION_SATISFACTION),
        "burnout": _sum(keyed, PROQOL_BURNOUT),
        "secondary_traumatic_stress": _sum(keyed, PROQOL_SECONDARY_TRAUMATIC_STRESS),
    }
    bands = {name: _proqol_band(total) for name, total in measures.items()}
    return Score(Instrument.PROQOL5, measures, bands, frozenset())


def _score_mini_z(answers: tuple[int, ...]) -> Score:
    burnout_item = _item(answers, MINI_Z_BURNOUT_ITEM)
    flags = {Flag.BURNOUT} if burnout_item >= MINI_Z_BURNOUT_AT_LEAST else set()
    return Score(Instrument.MINI_Z, {"burnout_item": float(burnout_item)}, {}, frozenset(flags))


def _score_brs(answers: tuple[int, ...]) -> Score:
    keyed = _keyed(answers, SPECS[Instrument.BRS], BRS_REVERSED)
    resilience = _mean(keyed, range(1, len(keyed) + 1))
    if resilience < BRS_LOW_BELOW:
        band, flags = "low", frozenset({Flag.LOW_RESILIENCE})
    elif resilience > BRS_HIGH_ABOVE:
        band, flags = "high", frozenset()
    else:
        band, flags = "normal", frozenset()
    return Score(Instrument.BRS, {"resilience": resilience}, {"resilience": band}, flags)


def _score_ies_r(answers: tuple[int, ...]) -> Score:
    total = float(sum(answers))
    measures = {
        "total": total,
        "intrusion": _mean(answers, IES_R_INTRUSION),
        "avoidance": _mean(answers, IES_R_AVOIDANCE),
        "hyperarousal": _mean(answers, IES_R_HYPERAROUSAL),
    }
    flags = {Flag.PROBABLE_PTSD} if total >= IES_R_PROBABLE_PTSD_AT_LEAST else set()
    return Score(Instrument.IES_R, measures, {}, frozenset(flags))


def _score_svest(answers: tuple[int, ...]) -> Score:
    keyed = _keyed(answers, SPECS[Instrument.SVEST], SVEST_REVERSED)
    measures = {name: _mean(keyed, items) for name, items in SVEST_DIMENSIONS.items()}
    return Score(Instrument.SVEST, measures, {}, frozenset())


def _score_phq9(answers: tuple[int, ...]) -> Score:
    total = float(sum(answers))
    # Any thought of self-harm escalates at once, whatever the total.
    flags = {Flag.CRISIS} if _item(answers, PHQ9_SELF_HARM_ITEM) > 0 else set()
    band = _cut_band(total, PHQ9_BANDS, below="minimal")
    return Score(Instrument.PHQ9, {"total": total}, {"total": band}, frozenset(flags))


def _score_gad7(answers: tuple[int, ...]) -> Score:
    total = float(sum(answers))
    band = _cut_band(total, GAD7_BANDS, below="minimal")
    return Score(Instrument.GAD7, {"total": total}, {"total": band}, frozenset())


_SCORERS: Mapping[Instrument, Callable[[tuple[int, ...]], Score]] = MappingProxyType(
    {
        Instrument.PROQOL5: _score_proqol5,
        Instrument.MINI_Z: _score_mini_z,
        Instrument.BRS: _score_brs,
        Instrument.IES_R: _score_ies_r,
        Instrument.SVEST: _score_svest,
        Instrument.PHQ9: _score_phq9,
        Instrument.GAD7: _score_gad7,
    }
)
