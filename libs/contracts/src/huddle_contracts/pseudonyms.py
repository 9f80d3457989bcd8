"""The one pseudonym function of the platform: HMAC-SHA256 of a stable staff reference.

Every service holding the network's secret derives the same pseudonym for the same person, so
matching can tell that a peer was involved in an event; without the secret it cannot be reversed.
Exports to analysts use random surrogates instead (keyed hashes are not Safe Harbor codes).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from .vocabulary import PSEUDONYM_PATTERN

PREFIX = "p_"
# 128 bits of the HMAC: collision-free at workforce scale, and short enough for keys and logs.
_HEX_DIGITS = 32
# A shorter key would make the HMAC guessable by brute force over staff numbers.
MIN_SECRET_BYTES = 16

_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)


def pseudonymise(network_secret: bytes, staff_ref: str) -> str:
    """The pseudonym of the staff member known by ``staff_ref`` in the network owning the secret.

    ``staff_ref`` is the stable identifier from the workforce directory; it is used exactly as
    given, so callers normalise it (e.g. strip, upper-case) the same way everywhere.
    """
    if len(network_secret) < MIN_SECRET_BYTES:
        raise ValueError(f"network secret must be at least {MIN_SECRET_BYTES} bytes")
    if not staff_ref:
        raise ValueError("staff reference must not be empty")
    digest = hmac.new(network_secret, staff_ref.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:_HEX_DIGITS]


def is_pseudonym(text: str) -> bool:
    """Whether ``text`` has the shape of a pseudonym (it says nothing of who it is)."""
    return _PSEUDONYM.fullmatch(text) is not None
