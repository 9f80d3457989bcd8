"""The survey code: random, held only by the respondent, it pairs their pre and post answers.

Huddle keeps only a hash of it, so neither a database reader nor an analyst can link answers to a
person, and a respondent who loses the code simply cannot be paired (Safe Harbor asks for codes
not derived from the person).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

_GROUPS = 4
_SHAPE = re.compile(r"^[A-Z2-7]{16}$")


class InvalidSurveyCode(ValueError):
    pass


def new_survey_code() -> str:
    """80 random bits, written as four groups of four letters and digits, e.g. ``K7QX-...``."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _normalised(code: str) -> str:
    compact = code.replace("-", "").replace(" ", "").upper()
    if not _SHAPE.match(compact):
        raise InvalidSurveyCode("a survey code is 16 letters and digits, e.g. ABCD-EFGH-2345-JKLM")
    return compact


def code_hash(code: str) -> bytes:
    return hashlib.sha256(_normalised(code).encode()).digest()
