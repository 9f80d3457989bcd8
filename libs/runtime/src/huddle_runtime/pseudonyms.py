"""Per-network pseudonym secrets, derived from the service's master key (which never leaves it)."""

from __future__ import annotations

import functools
import hashlib
import hmac

from huddle_contracts.pseudonyms import pseudonymise
from pydantic import SecretStr


def network_secret(master_key: SecretStr, network_id: str) -> bytes:
    """A per-network secret, so that pseudonyms cannot be linked across networks."""
    return _network_secret(master_key.get_secret_value(), network_id)


@functools.lru_cache(maxsize=1024)
def _network_secret(master_key: str, network_id: str) -> bytes:
    # Derived once per network, not per pseudonym: a back-fill derives thousands a second.
    return hmac.new(
        master_key.encode(), f"huddle/network/{network_id}".encode(), hashlib.sha256
    ).digest()


def pseudonym_for(master_key: SecretStr, network_id: str, staff_ref: str) -> str:
    """The platform-wide pseudonym of a staff member (same in every service holding the key)."""
    return pseudonymise(network_secret(master_key, network_id), staff_ref.strip())
