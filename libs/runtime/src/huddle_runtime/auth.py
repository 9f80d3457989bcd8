"""Bearer JWT validation against a JWKS, and the caller's roles and tenancy claims."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Protocol

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.utils import base64url_decode

from huddle_runtime.problems import Problem
from huddle_runtime.settings import AuthSettings
from huddle_runtime.tenancy import Tenant


class Role(StrEnum):
    WORKER = "worker"
    PEER = "peer"
    COORDINATOR = "coordinator"
    NETWORK_ADMIN = "network_admin"
    ANALYST = "analyst"
    REPORTER = "reporter"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token subject, roles and the network (and hospital) they act in."""

    subject: str
    roles: frozenset[Role]
    network_id: str
    hospital_id: str | None

    @property
    def tenant(self) -> Tenant:
        return Tenant(self.network_id, self.hospital_id)

    def has_any(self, roles: Iterable[Role]) -> bool:
        return bool(self.roles & set(roles))


class Unauthorized(Problem):
    status = 401
    title = "Not authenticated"
    type_suffix = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="huddle"'}


class Forbidden(Problem):
    status = 403
    title = "Not allowed"
    type_suffix = "forbidden"


class AuthNotConfigured(Problem):
    status = 503
    title = "Authentication not configured"
    type_suffix = "auth-not-configured"


class TokenVerifier:
    """Checks signature (allow-listed algorithms only), issuer, audience, expiry and claims."""

    def __init__(self, settings: AuthSettings) -> None:
        if not settings.configured:
            raise ValueError("no JWKS is configured: the service cannot check tokens")
        self._settings = settings
        self._keys: _KeySource = (
            _JwksEndpoint(settings.jwks_url) if settings.jwks_url else _JwksFile(settings.jwks_file)
        )

    async def verify(self, token: str) -> Principal:
        header = _unverified_header(token)
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in self._settings.algorithms:
            raise Unauthorized(f"token algorithm {algorithm!r} is not accepted")
        if not isinstance(kid, str):
            raise Unauthorized(f"token signing key is not known: no key id {kid!r}")
        try:
            # Fetching keys does blocking IO (urllib, file): off the event loop, when not cached.
            key = self._keys.cached(kid)
            if key is None:
                key = await asyncio.to_thread(self._keys.signing_key, kid)
            # The one full parse: signature, algorithm allow-list, header and every claim.
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=self._settings.algorithms,
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_seconds,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized(f"token audience is not {self._settings.audience!r}") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized(f"token issuer is not {self._settings.issuer!r}") from exc
        except jwt.PyJWKClientError as exc:
            raise Unauthorized(f"token signing key is not known: {exc}") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        return _principal(claims)


def _unverified_header(token: str) -> dict[str, Any]:
    """Only the header, to choose the key: ``jwt.decode`` parses and checks it all again."""
    try:
        header = json.loads(base64url_decode(token.split(".", 1)[0]))
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise Unauthorized(f"malformed bearer token: {exc}") from exc
    if not isinstance(header, dict):
        raise Unauthorized("malformed bearer token: the header is not a JSON object")
    return header


class _KeySource(Protocol):
    def cached(self, kid: str) -> jwt.PyJWK | None:
        """The key if it is known and fresh, without any IO; ``None`` means ask ``signing_key``."""

    def signing_key(self, kid: str) -> jwt.PyJWK:
        """The key, fetching the JWKS if needed (blocking IO)."""


class _JwksEndpoint:
    """An https JWKS, cached for five minutes and refetched when a new key id appears (key
    rotation); a key removed from the JWKS is refused once the cached set expires."""

    def __init__(self, url: str | None) -> None:
        assert url is not None
        self._client = jwt.PyJWKClient(url, cache_keys=False, lifespan=300)

    def cached(self, kid: str) -> jwt.PyJWK | None:
        cache = self._client.jwk_set_cache
        keys = cache.get() if cache is not None else None
        if keys is None:
            return None
        signing = [k for k in keys.keys if k.public_key_use in ("sig", None)]
        return self._client.match_kid(signing, kid)

    def signing_key(self, kid: str) -> jwt.PyJWK:
        return self._client.get_signing_key(kid)


# How long a JWKS file's keys are trusted before its modification time is looked at again.
FILE_RECHECK_SECONDS = 1.0


class _JwksFile:
    """A JWKS file, re-read when it changes (a rotated mounted secret): a new key id is looked
    up at once, a removed key is refused within ``FILE_RECHECK_SECONDS``."""

    def __init__(self, path: str | None) -> None:
        assert path is not None
        self._path = Path(path)
        self._mtime = -1.0
        self._checked_at = -FILE_RECHECK_SECONDS
        self._keys: dict[str, jwt.PyJWK] = {}

    def cached(self, kid: str) -> jwt.PyJWK | None:
        if time.monotonic() - self._checked_at >= FILE_RECHECK_SECONDS:
            return None
        return self._keys.get(kid)

    def signing_key(self, kid: str) -> jwt.PyJWK:
        mtime = self._path.stat().st_mtime
        if mtime != self._mtime:
            keys = jwt.PyJWKSet.from_json(self._path.read_text()).keys
            self._keys = {k.key_id: k for k in keys if k.key_id}
            self._mtime = mtime
        self._checked_at = time.monotonic()
        if kid not in self._keys:
            raise jwt.PyJWKClientError(f"no key with kid {kid!r} in the JWKS")
        return self._keys[kid]


def _principal(claims: dict[str, Any]) -> Principal:
    network = claims.get("network_id")
    if not isinstance(network, str) or not network:
        raise Unauthorized("token has no network_id claim")
    raw_roles = claims.get("roles", [])
    if not isinstance(raw_roles, list):
        raise Unauthorized("token roles claim must be a list")
    roles = frozenset(Role(r) for r in raw_roles if r in Role.__members__.values())
    hospital = claims.get("hospital_id")
    return Principal(
        subject=str(claims["sub"]),
        roles=roles,
        network_id=network,
        hospital_id=hospital if isinstance(hospital, str) and hospital else None,
    )


_bearer = HTTPBearer(auto_error=False)


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    verifier: TokenVerifier | None = request.app.state.token_verifier
    if verifier is None:
        raise AuthNotConfigured("no JWKS is configured (HUDDLE_AUTH_JWKS_URL or _JWKS_FILE)")
    return await verifier.verify(credentials.credentials)


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits callers holding at least one of ``roles``."""

    async def dependency(
        principal: Annotated[Principal, Depends(authenticated)],
    ) -> Principal:
        if not principal.has_any(roles):
            raise Forbidden(
                "this action needs one of the roles: " + ", ".join(r.value for r in roles)
            )
        return principal

    return dependency
