"""Validation errors told back to a reporter without a word of what it sent.

A report may hold a patient's name anywhere, so a message that quotes any string of the input
is replaced by a neutral one before it leaves intake.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

# Shorter strings ("MD", "en") are too common to mark a message as quoting the input.
_QUOTABLE_LENGTH = 3
MAX_ERRORS_TOLD = 5


def describe(exc: ValidationError, document: Any) -> str:
    """``path: problem`` for the first errors, never quoting the document's strings."""
    quoted = {text for text in _strings(document) if len(text) >= _QUOTABLE_LENGTH}
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    parts = []
    for error in errors[:MAX_ERRORS_TOLD]:
        where = ".".join(str(part) for part in error["loc"]) or "the document"
        message = str(error["msg"]).removeprefix("Value error, ")
        if any(text in message for text in quoted):
            message = "is not valid"
        parts.append(f"{where}: {message}")
    if len(errors) > MAX_ERRORS_TOLD:
        parts.append(f"and {len(errors) - MAX_ERRORS_TOLD} more")
    return "; ".join(parts)


def _strings(document: Any) -> Iterator[str]:
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
