"""Bearer token checks at the HTTP edge, with a real local issuer and a file JWKS."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Annotated

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI
from huddle_local.issuer import LocalIssuer
from huddle_runtime.auth import Principal, Role, TokenVerifier, require_roles
from huddle_runtime.problems import install_problem_handlers
from huddle_runtime.settings import AuthSettings


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
