"""No direct identifiers on the bus: no field is meant for one, and no field can hold free text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, get_args

import pytest
from huddle_contracts.export import CONTRACTS_ROOT, SCHEMAS_DIR, schema_file_name
from huddle_contracts.registry import EVENT_TYPES
from huddle_contracts.vocabulary import LanguageTag, NetworkId, Pseudonym
from pydantic import BaseModel, TypeAdapter, ValidationError

IDENTIFYING_WORDS = (
    "name",
    "email",
    "e_mail",
    "phone",
    "mobile",
    "address",
    "employee",
    "mrn",
    "patient",
    "nhs",
    "ssn",
    "narrative",
    "description",
    "note",
    "comment",
    "free_text",
)
# Strings are safe only when their shape is fixed: identifiers, pseudonyms, enums, times.
SAFE_STRING_KEYWORDS = ("pattern", "enum", "const")
SAFE_STRING_FORMATS = ("uuid", "date-time")


def nested_models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """``model`` and every model reachable through its fields' annotations."""
    seen: set[type[BaseModel]] = set()
    pending = [model]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        yield current
        for info in current.model_fields.values():
            pending.extend(_models_in(info.annotation))


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in get_args(annotation):
        yield from _models_in(argument)


def identifying_fields(model: type[BaseModel]) -> list[str]:
    found = []
    for current in nested_models(model):
        for name, info in current.model_fields.items():
            for spelling in {name, info.alias or name, info.serialization_alias or name}:
                if any(word in spelling.lower() for word in IDENTIFYING_WORDS):
                    found.append(f"{current.__name__}.{spelling}")
    return found


def free_text_fields(schema: Any, path: str = "$") -> Iterator[str]:
    if isinstance(schema, dict):
        if schema.get("type") == "string" and not (
            any(keyword in schema for keyword in SAFE_STRING_KEYWORDS)
            or schema.get("format") in SAFE_STRING_FORMATS
        ):
            yield path
        for key, value in schema.items():
            yield from free_text_fields(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from free_text_fields(value, f"{path}[{index}]")


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_no_event_field_can_carry_a_direct_identifier(event_type: str) -> None:
    assert identifying_fields(EVENT_TYPES[event_type]) == []


def test_the_identifier_check_finds_a_nested_offender() -> None:
    class Contact(BaseModel):
        mobile_number: str

    class Report(BaseModel):
        unit_id: str
        contacts: tuple[Contact, ...]
        reporter: str | None = None

    assert identifying_fields(Report) == ["Contact.mobile_number"]


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_no_event_field_is_free_text(event_type: str) -> None:
    path = CONTRACTS_ROOT / SCHEMAS_DIR / schema_file_name(event_type)
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert list(free_text_fields(schema)) == []


def test_the_free_text_check_finds_an_unconstrained_string() -> None:
    schema = {"properties": {"ok": {"type": "string", "format": "uuid"}, "bad": {"type": "string"}}}
    assert list(free_text_fields(schema)) == ["$.properties.bad"]


@pytest.mark.parametrize(
    "text",
    [
        "Jane Doe",
        "jane.doe@example.org",
        "+44 20 7946 0000",
        "E1234567",
        "p_" + "A" * 32,
        "p_" + "a" * 31,
        "p_" + "a" * 32 + "\n",
    ],
)
def test_a_pseudonym_cannot_hold_a_name_an_email_or_a_number(text: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Pseudonym).validate_python(text)


@pytest.mark.parametrize("text", ["St Mary's", "north coast", "-leading", "UPPER", "a" * 64, ""])
def test_a_place_identifier_is_a_slug(text: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(NetworkId).validate_python(text)


@pytest.mark.parametrize("text", ["en", "fr-CA", "zh-Hant", "es-419", "sgn-BE-FR"])
def test_language_tags_in_common_form_are_accepted(text: str) -> None:
    assert TypeAdapter(LanguageTag).validate_python(text) == text


@pytest.mark.parametrize("text", ["English", "EN", "e", "en_GB", "en-"])
def test_other_language_texts_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(LanguageTag).validate_python(text)
