"""Webhook signatures in Stripe's scheme: ``X-Huddle-Signature: t=<unix>,v1=<hex>``.

``v1`` is the hex HMAC-SHA256, under the endpoint's secret, of ``"<t>.<raw body>"``. Receivers
recompute it over the raw bytes they received, compare in constant time, and refuse timestamps
outside their tolerance (replays). ``X-Huddle-Delivery`` carries the notification id, the same on
every retry, so that receivers can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Huddle-Signature"
DELIVERY_HEADER = "X-Huddle-Delivery"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex ``v1`` value for ``body`` sent at ``timestamp``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, body, t)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` within the tolerance (for receivers).

    Several ``v1`` values are accepted (a sender rolling its secret may send one per secret).
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, body, timestamp)
    return any(hmac.compare_digest(expected, c) for c in candidates)
