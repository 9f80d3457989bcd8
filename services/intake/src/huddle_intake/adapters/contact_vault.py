"""Contact details sealed with Fernet (AES-128-CBC + HMAC) before they reach the database."""

from __future__ import annotations

import json

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
