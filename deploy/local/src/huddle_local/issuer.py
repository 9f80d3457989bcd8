"""A local token issuer: an RSA key pair on disk, its JWKS, and RS256 JWTs for local use/tests.

``LocalIssuer(dir)`` creates ``<dir>/private.pem`` (0600) and ``<dir>/jwks.json`` on first use
and reuses them afterwards, so tokens minted by a CLI stay valid for services reading the JWKS.
Nothing here does IO at import time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from huddle_local._util import file_lock

ISSUER = "huddle-local"
AUDIENCE = "huddle"
ALGORITHM = "RS256"


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of an RSA JWK (base64url, no padding)."""
    members = {"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")
    )


class LocalIssuer:
    """Signs RS256 JWTs with a key kept in ``directory``; publishes the public key as a JWKS."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).resolve()
        self._private_key: Any = None
        self._kid: str | None = None

    @property
    def private_key_path(self) -> Path:
        return self.directory / "private.pem"

    @property
    def jwks_path(self) -> Path:
        return self.directory / "jwks.json"

    @property
    def jwks_url(self) -> str:
        """``file://`` URL of the JWKS (created if missing)."""
        self.ensure_keys()
        return self.jwks_path.as_uri()

    @property
    def kid(self) -> str:
        self.ensure_keys()
        assert self._kid is not None
        return self._kid

    @property
    def jwks(self) -> dict[str, Any]:
        self.ensure_keys()
        data: dict[str, Any] = json.loads(self.jwks_path.read_text())
        return data

    def ensure_keys(self) -> None:
        """Create the key pair and JWKS once (safe across processes); load them otherwise."""
        if self._private_key is not None:
            return
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        with file_lock(self.directory / ".issuer.lock"):
            if self.private_key_path.exists():
                key = serialization.load_pem_private_key(
                    self.private_key_path.read_bytes(), password=None
                )
                if not isinstance(key, rsa.RSAPrivateKey):
                    raise TypeError(f"{self.private_key_path} is not an RSA private key")
            else:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem = key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                tmp = self.private_key_path.with_suffix(".pem.tmp")
                tmp.unlink(missing_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(pem)
                tmp.replace(self.private_key_path)
                self.jwks_path.unlink(missing_ok=True)
            jwk = self._public_jwk(key)
            if not self.jwks_path.exists():
                tmp_jwks = self.jwks_path.with_suffix(".json.tmp")
                tmp_jwks.write_text(json.dumps({"keys": [jwk]}, indent=2) + "\n")
                tmp_jwks.replace(self.jwks_path)
        self._private_key = key
        self._kid = jwk["kid"]

    @staticmethod
    def _public_jwk(key: Any) -> dict[str, Any]:
        from jwt.algorithms import RSAAlgorithm

        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return {
            "kty": "RSA",
            "n": jwk["n"],
            "e": jwk["e"],
            "kid": jwk_thumbprint(jwk),
            "alg": ALGORITHM,
            "use": "sig",
        }

    def mint(
        self,
        *,
        role: str,
        network: str,
        hospital: str | None = None,
        subject: str | None = None,
        audience: str = AUDIENCE,
        issuer: str = ISSUER,
        ttl: timedelta = timedelta(hours=8),
        extra_roles: Iterable[str] = (),
        now: float | None = None,
    ) -> str:
        """An RS256 JWT (header ``kid``) for ``role`` in ``network`` (and ``hospital``)."""
        import jwt

        self.ensure_keys()
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject or f"local-{role}",
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(ttl.total_seconds()),
            "roles": list(dict.fromkeys([role, *extra_roles])),
            "network_id": network,
        }
        if hospital is not None:
            claims["hospital_id"] = hospital
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def __repr__(self) -> str:
        return f"LocalIssuer({str(self.directory)!r})"
