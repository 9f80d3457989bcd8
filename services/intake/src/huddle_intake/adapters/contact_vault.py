"""Contact details sealed with Fernet (AES-128-CBC + HMAC) before they reach the database."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr

from huddle_intake.domain.support_request import ContactDetails


class ContactVault:
    def __init__(self, key: SecretStr) -> None:
        self._fernet = Fernet(key.get_secret_value().encode())

    def seal(self, contact: ContactDetails) -> bytes:
        return self._fernet.encrypt(json.dumps(contact.as_dict()).encode())

    def open(self, sealed: bytes) -> ContactDetails:
        return ContactDetails(**json.loads(self._fernet.decrypt(sealed)))

    def seal_text(self, text: str) -> bytes:
        return self._fernet.encrypt(text.encode())

    def open_text(self, sealed: bytes) -> str:
        return self._fernet.decrypt(sealed).decode()

    def seal_document(self, document: Mapping[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(document, separators=(",", ":")).encode())

    def open_document(self, sealed: bytes) -> dict[str, Any]:
        opened: dict[str, Any] = json.loads(self._fernet.decrypt(sealed))
        return opened
