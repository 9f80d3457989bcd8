"""Bearer token checks at the HTTP edge, with a real local issuer and a file JWKS."""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI
from huddle_local.issuer import LocalIssuer
from huddle_runtime import auth
from huddle_runtime.auth import Principal, Role, TokenVerifier, require_roles
from huddle_runtime.problems import install_problem_handlers
from huddle_runtime.settings import AuthSettings

T = TypeVar("T")


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    return LocalIssuer(tmp_path_factory.mktemp("issuer"))


@pytest.fixture(scope="module")
def app(issuer: LocalIssuer) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.token_verifier = TokenVerifier(AuthSettings(jwks_file=str(issuer.jwks_path)))

    @app.get("/whoami")
    async def whoami(
        principal: Annotated[Principal, Depends(require_roles(Role.WORKER))],
    ) -> dict[str, object]:
        return {"network": principal.network_id, "hospital": principal.hospital_id}

    return app


async def call(app: FastAPI, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        return await client.get("/whoami", headers=headers)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_a_valid_token_admits_the_caller(app: FastAPI, issuer: LocalIssuer) -> None:
    response = await call(app, issuer.mint(role="worker", network="north", hospital="h1"))
    assert response.status_code == 200
    assert response.json() == {"network": "north", "hospital": "h1"}


async def test_no_token_is_refused_with_a_problem(app: FastAPI) -> None:
    response = await call(app, None)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "bearer token is required" in response.json()["detail"]


async def test_an_expired_token_is_refused(app: FastAPI, issuer: LocalIssuer) -> None:
    token = issuer.mint(
        role="worker", network="north", now=time.time() - 7200, ttl=timedelta(hours=1)
    )
    response = await call(app, token)
    assert response.status_code == 401
    assert response.json()["detail"] == "token has expired"


async def test_a_token_for_another_audience_is_refused(app: FastAPI, issuer: LocalIssuer) -> None:
    response = await call(app, issuer.mint(role="worker", network="north", audience="billing"))
    assert response.status_code == 401
    assert "audience" in response.json()["detail"]


async def test_a_token_from_another_issuer_is_refused(app: FastAPI, issuer: LocalIssuer) -> None:
    response = await call(app, issuer.mint(role="worker", network="north", issuer="elsewhere"))
    assert response.status_code == 401
    assert "issuer" in response.json()["detail"]


async def test_an_unsigned_alg_none_token_is_refused(app: FastAPI, issuer: LocalIssuer) -> None:
    good = jwt.decode(
        issuer.mint(role="worker", network="north"), options={"verify_signature": False}
    )
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': issuer.kid})}.{_b64(good)}."
    response = await call(app, unsigned)
    assert response.status_code == 401
    assert "'none' is not accepted" in response.json()["detail"]


async def test_a_symmetric_token_signed_with_the_public_key_is_refused(
    app: FastAPI, issuer: LocalIssuer
) -> None:
    claims = jwt.decode(
        issuer.mint(role="worker", network="north"), options={"verify_signature": False}
    )
    forged = jwt.encode(claims, "x" * 64, algorithm="HS256", headers={"kid": issuer.kid})
    response = await call(app, forged)
    assert response.status_code == 401


async def test_a_token_signed_by_an_unknown_key_is_refused(
    app: FastAPI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stranger = LocalIssuer(tmp_path_factory.mktemp("stranger"))
    response = await call(app, stranger.mint(role="worker", network="north"))
    assert response.status_code == 401
    assert "signing key" in response.json()["detail"]


async def test_a_tampered_token_is_refused(app: FastAPI, issuer: LocalIssuer) -> None:
    header, _, signature = issuer.mint(role="worker", network="north").split(".")
    claims = {
        "sub": "x",
        "roles": ["worker"],
        "network_id": "south",
        "aud": "huddle",
        "iss": "huddle-local",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    response = await call(app, f"{header}.{_b64(claims)}.{signature}")
    assert response.status_code == 401


async def test_a_token_without_the_role_is_forbidden(app: FastAPI, issuer: LocalIssuer) -> None:
    response = await call(app, issuer.mint(role="analyst", network="north"))
    assert response.status_code == 403
    assert "worker" in response.json()["detail"]


async def test_a_token_without_a_network_is_refused(app: FastAPI, issuer: LocalIssuer) -> None:
    token = issuer.mint(role="worker", network="")
    response = await call(app, token)
    assert response.status_code == 401
    assert "network_id" in response.json()["detail"]


def test_symmetric_and_none_algorithms_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        AuthSettings(jwks_url="file:///x", algorithms=["HS256"])
    with pytest.raises(ValueError, match="not allowed"):
        AuthSettings(jwks_url="file:///x", algorithms=["none"])


class ThreadHops:
    """Counts the key look-ups that leave the event loop (the real ``asyncio.to_thread`` runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = asyncio.to_thread

        async def counted(func: Callable[..., T], /, *args: object) -> T:
            self.count += 1
            return await real(func, *args)

        monkeypatch.setattr(auth.asyncio, "to_thread", counted)


def _write_jwks(path: Path, *issuers: LocalIssuer, mtime: float) -> None:
    path.write_text(json.dumps({"keys": [k for i in issuers for k in i.jwks["keys"]]}))
    os.utime(path, (mtime, mtime))  # a rewrite within the file system's clock tick still shows


async def test_a_cached_key_is_used_without_leaving_the_event_loop(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(AuthSettings(jwks_file=str(issuer.jwks_path)))
    hops = ThreadHops(monkeypatch)
    for subject in ("a", "b", "c"):
        token = issuer.mint(role="worker", network="north", subject=subject)
        assert (await verifier.verify(token)).subject == subject
    assert hops.count == 1


async def test_a_rotated_jwks_file_admits_a_new_key_at_once_and_drops_a_removed_one(
    tmp_path: Path, issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotated = LocalIssuer(tmp_path / "rotated")
    jwks = tmp_path / "jwks.json"
    _write_jwks(jwks, issuer, mtime=1_000)
    verifier = TokenVerifier(AuthSettings(jwks_file=str(jwks)))
    old_token = issuer.mint(role="worker", network="north")
    await verifier.verify(old_token)

    _write_jwks(jwks, issuer, rotated, mtime=2_000)
    await verifier.verify(rotated.mint(role="worker", network="north"))

    _write_jwks(jwks, rotated, mtime=3_000)
    monkeypatch.setattr(auth, "FILE_RECHECK_SECONDS", 0.0)
    with pytest.raises(auth.Unauthorized, match="signing key"):
        await verifier.verify(old_token)


async def test_a_jwks_endpoint_is_fetched_once_for_many_tokens(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetches: list[str] = []
    body = issuer.jwks_path.read_bytes()

    class Jwks(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        verifier = TokenVerifier(AuthSettings(jwks_url=url))
        hops = ThreadHops(monkeypatch)
        for subject in ("a", "b", "c"):
            await verifier.verify(issuer.mint(role="worker", network="north", subject=subject))
        stranger = LocalIssuer(issuer.directory / "stranger")
        with pytest.raises(auth.Unauthorized, match="signing key"):
            await verifier.verify(stranger.mint(role="worker", network="north"))
    finally:
        server.shutdown()
    # An unknown key id is looked up off the loop; PyJWKClient's cool-down spares the endpoint.
    assert (fetches, hops.count) == (["/jwks.json"], 2)


@pytest.mark.parametrize("header", [{"alg": "RS256"}, {"alg": "RS256", "kid": ["a"]}])
async def test_a_token_without_a_usable_key_id_is_refused(
    app: FastAPI, issuer: LocalIssuer, header: dict[str, object]
) -> None:
    _, claims, signature = issuer.mint(role="worker", network="north").split(".")
    response = await call(app, f"{_b64(header)}.{claims}.{signature}")
    assert response.status_code == 401
    assert "key id" in response.json()["detail"]


@pytest.mark.parametrize("token", ["!!!.e30.x", "WzFd.e30.x", "bm90IGpzb24.e30.x"])
async def test_a_malformed_header_is_refused(app: FastAPI, token: str) -> None:
    response = await call(app, token)
    assert response.status_code == 401
    assert "malformed bearer token" in response.json()["detail"]
