"""Hypothesis strategies for every event, derived from the models' own annotations.

Registered for ``st.from_type(SomeEvent)``. A new event or field is covered without touching this
file; a field of a type it does not know fails loudly instead of being skipped.
"""

from __future__ import annotations

import types
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

import annotated_types
from huddle_contracts.registry import EVENT_TYPES
from huddle_contracts.vocabulary import (
    LANGUAGE_TAG_PATTERN,
    MONTH_PATTERN,
    PSEUDONYM_PATTERN,
    HospitalId,
    LanguageTag,
    Month,
    NetworkId,
    Pseudonym,
    UnitId,
)
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, StringConstraints, ValidationError

# The constrained string types, by the pattern pydantic keeps in the field's metadata.
CONSTRAINED_STRINGS: dict[object, st.SearchStrategy[str]] = {
    NetworkId: st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True),
    HospitalId: st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True),
    UnitId: st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True),
    Pseudonym: st.from_regex(PSEUDONYM_PATTERN, fullmatch=True),
    LanguageTag: st.from_regex(LANGUAGE_TAG_PATTERN, fullmatch=True),
    Month: st.from_regex(MONTH_PATTERN, fullmatch=True),
}
_BY_PATTERN = {
    get_args(alias)[1].pattern: strategy for alias, strategy in CONSTRAINED_STRINGS.items()
}

# Offsets from UTC as hospitals use them; the bus must keep the instant whatever the offset.
_ZONES = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
AWARE_DATETIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_ZONES
)


M = TypeVar("M", bound=BaseModel)


def event_strategy(model: type[M]) -> st.SearchStrategy[M]:
    """Valid instances of ``model``; combinations refused by its validators are filtered out."""
    fields = {
        name: strategy_for(info.annotation, tuple(info.metadata))
        for name, info in model.model_fields.items()
    }
    return (
        st.fixed_dictionaries(fields)
        .filter(lambda values: _valid(model, values))
        .map(lambda values: model(**values))
    )


def _valid(model: type[BaseModel], values: dict[str, Any]) -> bool:
    try:
        model(**values)
    except ValidationError:
        return False
    return True


def strategy_for(annotation: Any, metadata: tuple[Any, ...] = ()) -> st.SearchStrategy[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return strategy_for(base, (*metadata, *extra))
    if origin in (Union, types.UnionType):
        return st.one_of(*(strategy_for(arg) for arg in get_args(annotation)))
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if origin is tuple:
        item, ellipsis = get_args(annotation)
        assert ellipsis is Ellipsis, f"fixed-length tuples are not supported: {annotation}"
        low = _bound(metadata, annotated_types.MinLen, "min_length", 0)
        return st.lists(strategy_for(item), min_size=low, max_size=low + 4).map(tuple)
    if annotation is type(None):
        return st.none()
    if annotation is str:
        patterns = [m.pattern for m in metadata if isinstance(m, StringConstraints) and m.pattern]
        assert patterns, "an unconstrained str field: events carry no free text"
        return _BY_PATTERN[patterns[0]]
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        low = _bound(metadata, annotated_types.Ge, "ge", -(2**31))
        high = _bound(metadata, annotated_types.Le, "le", 2**31)
        return st.integers(min_value=low, max_value=high)
    if annotation is UUID:
        return st.uuids()
    if annotation is AwareDatetime:
        return AWARE_DATETIMES
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from(list(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return event_strategy(annotation)
    raise NotImplementedError(f"no strategy for {annotation!r}; add one to tests/conftest.py")


def _bound(metadata: tuple[Any, ...], kind: type, attribute: str, default: int) -> int:
    for item in metadata:
        if isinstance(item, kind):
            value: int = getattr(item, attribute)
            return value
    return default


def register_event_strategies() -> None:
    """Let ``st.from_type(SupportRequested)`` and friends build valid events anywhere."""
    for model in EVENT_TYPES.values():
        st.register_type_strategy(model, event_strategy(model))


register_event_strategies()
