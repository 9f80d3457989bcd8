"""Is a new JSON Schema a compatible evolution of an old one? Pure functions over schema dicts.

"Compatible" means every message valid under the old schema is still valid under the new one, so
consumers on the new contract can read everything already on the topics (retention, replays, dead
letters). The rules follow from that, made stricter where the contract asks for it:

- no property removed (consumers refuse unknown fields, so old data holding it would be refused);
- no property newly required;
- no type changed (integer may widen to number), no enum or const value removed;
- no bound tightened (lengths, ranges, item counts), no pattern or format changed;
- ``additionalProperties`` unchanged: tightening refuses old data, loosening lets unknown fields
  through, which the contract forbids;
- unions (anyOf / oneOf, e.g. nullable fields): every old alternative must still be accepted.

It is conservative: when it cannot prove compatibility it reports an incompatibility.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Schema = Mapping[str, Any] | bool

# Keywords this checker does not reason about: any change to them is reported, not guessed at.
_UNMODELLED = (
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "prefixItems",
    "contains",
    "unevaluatedProperties",
    "unevaluatedItems",
)
_LOWER_BOUNDS = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
_UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")


@dataclass(frozen=True)
class Incompatibility:
    """One reason why data valid under the old schema may be refused by the new one."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def incompatibilities(old: Schema, new: Schema) -> list[Incompatibility]:
    """Every incompatibility of ``new`` with ``old``; empty when ``new`` is a safe evolution."""
    return _Comparison(old, new).run()


def is_compatible(old: Schema, new: Schema) -> bool:
    return not incompatibilities(old, new)


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.found: list[Incompatibility] = []
        self.seen: set[tuple[str, str]] = set()

    def run(self) -> list[Incompatibility]:
        self.compare(self.old_root, self.new_root, "$")
        return self.found

    def report(self, path: str, reason: str) -> None:
        self.found.append(Incompatibility(path, reason))

    def compare(self, old: Schema, new: Schema, path: str) -> None:
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            pair = (str(old.get("$ref", "")), str(new.get("$ref", "")))
            if all(pair):
                # Recursive definitions: a pair of definitions is compared once.
                if pair in self.seen:
                    return
                self.seen.add(pair)
            old = _resolve(old, self.old_root)
            new = _resolve(new, self.new_root)
        if old is False or new is True:
            return
        if new is False:
            self.report(path, "the schema now accepts nothing")
            return
        if old is True:
            old = {}
        assert isinstance(old, Mapping)
        assert isinstance(new, Mapping)
        if _alternatives(old) is not None or _alternatives(new) is not None:
            self.compare_unions(old, new, path)
            return
        self.compare_keywords(old, new, path)

    def compare_unions(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        new_branches = _alternatives(new) or [new]
        for branch in _alternatives(old) or [old]:
            trials = [self.trial(branch, candidate, path) for candidate in new_branches]
            if any(not problems for problems in trials):
                continue
            if len(trials) == 1:
                self.found.extend(trials[0])
            else:
                self.report(
                    path,
                    f"old alternative {_describe(branch)} is no longer accepted",
                )

    def trial(self, old: Schema, new: Schema, path: str) -> list[Incompatibility]:
        """The incompatibilities of one pairing, without recording them."""
        attempt = _Comparison(self.old_root, self.new_root)
        attempt.seen = set(self.seen)
        attempt.compare(old, new, path)
        return attempt.found

    def compare_keywords(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_types, new_types = _types(old), _types(new)
        if new_types is not None:
            if old_types is None:
                self.report(path, f"type is now restricted to {_names(new_types)}")
            else:
                lost = {t for t in old_types if not _type_accepted(t, new_types)}
                if lost:
                    self.report(
                        path, f"type changed from {_names(old_types)} to {_names(new_types)}"
                    )
        self.compare_values(old, new, path)
        self.compare_bounds(old, new, path)
        for keyword in ("pattern", "format"):
            if keyword in new and old.get(keyword) != new[keyword]:
                self.report(
                    path, f"{keyword} changed from {old.get(keyword)!r} to {new[keyword]!r}"
                )
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            self.report(path, "items must now be unique")
        if "multipleOf" in new and old.get("multipleOf") != new["multipleOf"]:
            self.report(path, f"multipleOf changed to {new['multipleOf']!r}")
        for keyword in _UNMODELLED:
            if old.get(keyword) != new.get(keyword):
                self.report(path, f"{keyword} changed; compatibility cannot be checked")
        if "items" in old or "items" in new:
            self.compare(old.get("items", True), new.get("items", True), f"{path}[]")
        if _is_object(old) or _is_object(new):
            self.compare_objects(old, new, path)

    def compare_values(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        new_values = _values(new)
        if new_values is None:
            return
        old_values = _values(old)
        if old_values is None:
            self.report(path, f"values are now restricted to {sorted(new_values)}")
            return
        removed = sorted(old_values - new_values)
        if removed:
            self.report(path, f"enum value(s) removed: {', '.join(removed)}")

    def compare_bounds(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        for keyword in _LOWER_BOUNDS:
            if keyword in new and (keyword not in old or new[keyword] > old[keyword]):
                self.report(path, f"{keyword} raised from {old.get(keyword)} to {new[keyword]}")
        for keyword in _UPPER_BOUNDS:
            if keyword in new and (keyword not in old or new[keyword] < old[keyword]):
                self.report(path, f"{keyword} lowered from {old.get(keyword)} to {new[keyword]}")

    def compare_objects(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_properties: Mapping[str, Schema] = old.get("properties", {})
        new_properties: Mapping[str, Schema] = new.get("properties", {})
        for name in old_properties:
            if name not in new_properties:
                self.report(f"{path}.{name}", "property removed")
            else:
                self.compare(old_properties[name], new_properties[name], f"{path}.{name}")
        newly_required = set(new.get("required", ())) - set(old.get("required", ()))
        for name in sorted(newly_required):
            self.report(f"{path}.{name}", "property is newly required")
        old_extra: Schema = old.get("additionalProperties", True)
        new_extra: Schema = new.get("additionalProperties", True)
        for name in new_properties:
            if name not in old_properties and old_extra is not False:
                # Old data may already hold this name, as an extra property.
                self.compare(old_extra, new_properties[name], f"{path}.{name}")
        if old_extra is False and new_extra is not False:
            self.report(path, "additionalProperties loosened: unknown fields would be accepted")
        elif old_extra is not False and new_extra is False:
            self.report(path, "additionalProperties tightened: extra fields would be refused")
        elif old_extra is not False:
            self.compare(old_extra, new_extra, f"{path}.*")


def _resolve(schema: Mapping[str, Any], root: Schema) -> Schema:
    """Follow local ``$ref`` pointers; sibling keywords (pydantic's ``default``) are kept."""
    seen: set[str] = set()
    while "$ref" in schema:
        reference = schema["$ref"]
        if not isinstance(reference, str) or not reference.startswith("#"):
            raise ValueError(f"only local $ref pointers are supported, not {reference!r}")
        if reference in seen:
            raise ValueError(f"$ref cycle at {reference!r}")
        seen.add(reference)
        target: Any = root
        for part in reference[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                raise ValueError(f"unresolvable $ref {reference!r}")
            target = target[part]
        if isinstance(target, bool):
            return target
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**target, **siblings}
    return schema


def _alternatives(schema: Mapping[str, Any]) -> list[Schema] | None:
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            branches: list[Schema] = list(schema[keyword])
            return branches
    return None


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    values = (
        schema["enum"] if "enum" in schema else [schema["const"]] if "const" in schema else None
    )
    if values is None:
        return None
    return {_json_type(value) for value in values}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_accepted(old_type: str, new_types: set[str]) -> bool:
    return old_type in new_types or (old_type == "integer" and "number" in new_types)


def _values(schema: Mapping[str, Any]) -> set[str] | None:
    """The allowed values as canonical JSON text, so that 1, "1" and true stay distinct."""
    if "const" in schema:
        return {json.dumps(schema["const"], sort_keys=True)}
    if "enum" in schema:
        return {json.dumps(value, sort_keys=True) for value in schema["enum"]}
    return None


def _is_object(schema: Mapping[str, Any]) -> bool:
    types = _types(schema)
    return (
        "properties" in schema or "required" in schema or (types is not None and "object" in types)
    )


def _names(types: set[str]) -> str:
    return "|".join(sorted(types))


def _describe(schema: Schema) -> str:
    if isinstance(schema, bool):
        return str(schema).lower()
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    types = _types(schema)
    return _names(types) if types else "(any)"
