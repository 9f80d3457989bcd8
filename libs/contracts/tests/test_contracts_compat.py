"""Backward compatibility: the checker itself, then today's schemas against every release."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from huddle_contracts.compat import incompatibilities, is_compatible
from huddle_contracts.export import (
    CONTRACTS_ROOT,
    RELEASED_DIR,
    SCHEMAS_DIR,
    event_schema,
    schema_file_name,
)
from huddle_contracts.registry import EVENT_TYPES
from huddle_contracts.vocabulary import Urgency

RELEASES = sorted(p for p in (CONTRACTS_ROOT / SCHEMAS_DIR / RELEASED_DIR).iterdir() if p.is_dir())

OLD: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "case_id": {"type": "string", "format": "uuid"},
        "urgency": {"$ref": "#/$defs/Urgency"},
        "minutes": {"type": "integer", "minimum": 1, "maximum": 600},
        "unit_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "language": {"anyOf": [{"type": "string", "pattern": "^[a-z]{2}$"}, {"type": "null"}]},
    },
    "required": ["case_id", "urgency"],
    "$defs": {"Urgency": {"type": "string", "enum": ["routine", "urgent", "crisis"]}},
}


def add_required_mode(schema: dict[str, Any]) -> None:
    schema["properties"]["mode"] = {"type": "string", "enum": ["phone", "video"]}
    schema["required"].append("mode")


def evolved(change: Any) -> dict[str, Any]:
    new = copy.deepcopy(OLD)
    change(new)
    return new


def reasons(new: dict[str, Any]) -> list[str]:
    return [str(problem) for problem in incompatibilities(OLD, new)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda s: s["properties"].pop("minutes"), "$.minutes: property removed", id="removed"
        ),
        pytest.param(
            lambda s: s["required"].append("minutes"),
            "$.minutes: property is newly required",
            id="newly-required",
        ),
        pytest.param(add_required_mode, "$.mode: property is newly required", id="new-field"),
        pytest.param(
            lambda s: s["properties"]["minutes"].update(type="string"),
            "$.minutes: type changed from integer to string",
            id="type-changed",
        ),
        pytest.param(
            lambda s: s["$defs"]["Urgency"]["enum"].remove("crisis"),
            '$.urgency: enum value(s) removed: "crisis"',
            id="enum-value-removed",
        ),
        pytest.param(
            lambda s: s.update(additionalProperties=True),
            "$: additionalProperties loosened: unknown fields would be accepted",
            id="additional-properties-loosened",
        ),
        pytest.param(
            lambda s: s["properties"]["minutes"].update(maximum=120),
            "$.minutes: maximum lowered from 600 to 120",
            id="bound-tightened",
        ),
        pytest.param(
            lambda s: s["properties"]["unit_ids"]["items"].update(pattern="^[a-z]+$"),
            "$.unit_ids[]: pattern changed from None to '^[a-z]+$'",
            id="item-pattern-added",
        ),
        pytest.param(
            lambda s: s["properties"].update(language={"type": "string", "pattern": "^[a-z]{2}$"}),
            "$.language: type changed from null to string",
            id="nullable-removed",
        ),
        pytest.param(
            lambda s: s["properties"]["case_id"].update(format="date-time"),
            "$.case_id: format changed from 'uuid' to 'date-time'",
            id="format-changed",
        ),
    ],
)
def test_a_breaking_change_is_reported(change: Any, expected: str) -> None:
    new = evolved(change)
    assert expected in reasons(new)
    assert not is_compatible(OLD, new)


def test_additional_properties_tightened_is_reported() -> None:
    old = {"type": "object", "properties": {"a": {"type": "string"}}}
    new = {**old, "additionalProperties": False}
    assert [str(p) for p in incompatibilities(old, new)] == [
        "$: additionalProperties tightened: extra fields would be refused"
    ]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s: None, id="unchanged"),
        pytest.param(
            lambda s: s["properties"].update(
                mode={"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
            ),
            id="new-optional-field",
        ),
        pytest.param(
            lambda s: s["$defs"]["Urgency"]["enum"].append("follow_up"), id="new-enum-value"
        ),
        pytest.param(
            lambda s: s["properties"]["minutes"].update(type="number"), id="integer-widened"
        ),
        pytest.param(lambda s: s["properties"]["minutes"].pop("maximum"), id="bound-relaxed"),
        pytest.param(lambda s: s["required"].remove("urgency"), id="no-longer-required"),
        pytest.param(
            lambda s: s["properties"].update(
                case_id={"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]}
            ),
            id="made-nullable",
        ),
        pytest.param(
            lambda s: s["properties"]["case_id"].update(description="The case.", title="Case"),
            id="documentation-only",
        ),
    ],
)
def test_a_compatible_change_passes(change: Any) -> None:
    new = evolved(change)
    assert incompatibilities(OLD, new) == []


def test_a_change_inside_a_shared_definition_is_found_through_the_real_schemas() -> None:
    old = event_schema(EVENT_TYPES["huddle.support_requested.v1"])
    new = copy.deepcopy(old)
    new["$defs"]["Urgency"]["enum"] = [u.value for u in Urgency if u is not Urgency.CRISIS]
    new["$defs"]["MatchPreferences"]["properties"].pop("gender")

    assert sorted(map(str, incompatibilities(old, new))) == [
        "$.preferences.gender: property removed",
        '$.urgency: enum value(s) removed: "crisis"',
    ]


def test_recursive_definitions_terminate() -> None:
    tree = {
        "$ref": "#/$defs/Node",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            }
        },
    }
    assert is_compatible(tree, copy.deepcopy(tree))


def test_an_unresolvable_reference_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="unresolvable"):
        incompatibilities({"$ref": "#/$defs/Gone"}, {"type": "string"})


def test_the_first_release_is_frozen() -> None:
    assert [release.name for release in RELEASES][:1] == ["v1"]


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_every_released_event_type_still_exists(release: Path) -> None:
    current = CONTRACTS_ROOT / SCHEMAS_DIR
    missing = [p.name for p in sorted(release.glob("*.json")) if not (current / p.name).exists()]
    assert missing == [], f"released event types without a current schema: {missing}"


@pytest.mark.parametrize(
    ("release", "event_type"),
    [
        (release, path.stem)
        for release in RELEASES
        for path in sorted(release.glob("*.json"))
        if (CONTRACTS_ROOT / SCHEMAS_DIR / path.name).exists()
    ],
    ids=lambda value: value.name if isinstance(value, Path) else value,
)
def test_every_current_schema_is_compatible_with_every_release(
    release: Path, event_type: str
) -> None:
    old = json.loads((release / schema_file_name(event_type)).read_text(encoding="utf-8"))
    new = json.loads(
        (CONTRACTS_ROOT / SCHEMAS_DIR / schema_file_name(event_type)).read_text(encoding="utf-8")
    )
    problems = [str(problem) for problem in incompatibilities(old, new)]
    assert problems == [], (
        f"{event_type} breaks release {release.name}; a breaking change needs a new v2 event "
        f"type and topic: {problems}"
    )
