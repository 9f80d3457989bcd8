"""One pseudonym per person per network, the same in every service."""

from __future__ import annotations

import pytest
from huddle_contracts.pseudonyms import is_pseudonym, pseudonymise
from hypothesis import given
from hypothesis import strategies as st

SECRET = b"north-coast-secret-0123456789"


def test_the_algorithm_is_pinned() -> None:
    # Every service must derive the same value: changing this breaks matching across services.
    assert pseudonymise(SECRET, "E1234567") == "p_6537e957acfe3d39aa23fba8b29c2536"


@given(staff_ref=st.text(min_size=1))
def test_a_pseudonym_has_the_contract_shape_and_is_stable(staff_ref: str) -> None:
    pseudonym = pseudonymise(SECRET, staff_ref)
    assert is_pseudonym(pseudonym)
    assert pseudonymise(SECRET, staff_ref) == pseudonym


def test_another_network_gets_another_pseudonym() -> None:
    assert pseudonymise(SECRET, "E1234567") != pseudonymise(
        b"south-coast-secret-987654", "E1234567"
    )


def test_a_weak_secret_or_an_empty_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        pseudonymise(b"short", "E1234567")
    with pytest.raises(ValueError, match="must not be empty"):
        pseudonymise(SECRET, "")
