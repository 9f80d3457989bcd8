"""The local token issuer: keys on disk, JWKS, RS256 tokens PyJWT verifies."""

import json
import stat
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import jwt
import pytest
from huddle_local.issuer import AUDIENCE, ISSUER, LocalIssuer, jwk_thumbprint


def _verify(issuer: LocalIssuer, token: str, audience: str = AUDIENCE) -> dict:
    # Read the JWKS through its file:// URL as a service would (PyJWKClient is http(s) only).
    url = urlparse(issuer.jwks_url)
    assert url.scheme == "file"
    jwks = jwt.PyJWKSet.from_json(Path(url2pathname(url.path)).read_text())
    key = jwks[jwt.get_unverified_header(token)["kid"]]
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=ISSUER)


def test_rfc7638_thumbprint_example() -> None:
    jwk = {
        "kty": "RSA",
        "e": "AQAB",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vM"
        "QFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_keys_created_once_with_private_permissions(tmp_path: Path) -> None:
    issuer = LocalIssuer(tmp_path / "keys")
    assert issuer.jwks_url.startswith("file://")
    assert stat.S_IMODE(issuer.private_key_path.stat().st_mode) == 0o600
    (key,) = json.loads(issuer.jwks_path.read_text())["keys"]
    assert key["kid"] == jwk_thumbprint(key) == issuer.kid
    assert (key["alg"], key["use"], key["kty"]) == ("RS256", "sig", "RSA")
    assert "d" not in key  # public only
    pem = issuer.private_key_path.read_bytes()
    again = LocalIssuer(tmp_path / "keys")
    assert again.kid == issuer.kid
    assert again.private_key_path.read_bytes() == pem
    _verify(issuer, again.mint(role="peer", network="n1"))


def test_minted_token_verifies_against_jwks(local_issuer: LocalIssuer) -> None:
    token = local_issuer.mint(
        role="coordinator", network="net-1", hospital="hosp-9", extra_roles=["peer", "coordinator"]
    )
    assert jwt.get_unverified_header(token)["kid"] == local_issuer.kid
    claims = _verify(local_issuer, token)
    assert claims["iss"] == "huddle-local"
    assert claims["aud"] == "huddle"
    assert claims["sub"] == "local-coordinator"
    assert claims["roles"] == ["coordinator", "peer"]
    assert claims["network_id"] == "net-1"
    assert claims["hospital_id"] == "hosp-9"
    assert claims["iat"] == claims["nbf"]
    assert claims["exp"] - claims["iat"] == 8 * 3600


def test_hospital_omitted_and_subject_override(local_issuer: LocalIssuer) -> None:
    token = local_issuer.mint(role="peer", network="n", subject="u-1", ttl=timedelta(minutes=5))
    claims = _verify(local_issuer, token)
    assert "hospital_id" not in claims
    assert claims["sub"] == "u-1"
    assert claims["exp"] - claims["iat"] == 300


def test_tampered_token_fails(local_issuer: LocalIssuer) -> None:
    header, payload, signature = local_issuer.mint(role="peer", network="n").split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps({**json.loads(jwt.utils.base64url_decode(payload)), "roles": ["admin"]}).encode()
    ).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(local_issuer, f"{header}.{forged}.{signature}")


def test_wrong_audience_and_expiry_fail(local_issuer: LocalIssuer) -> None:
    with pytest.raises(jwt.InvalidAudienceError):
        _verify(local_issuer, local_issuer.mint(role="peer", network="n", audience="other"))
    with pytest.raises(jwt.InvalidAudienceError):
        _verify(local_issuer, local_issuer.mint(role="peer", network="n"), audience="other")
    old = local_issuer.mint(role="peer", network="n", now=1_000_000, ttl=timedelta(minutes=1))
    with pytest.raises(jwt.ExpiredSignatureError):
        _verify(local_issuer, old)


def test_token_from_another_key_fails(local_issuer: LocalIssuer, tmp_path: Path) -> None:
    stranger = LocalIssuer(tmp_path).mint(role="peer", network="n")
    key = jwt.PyJWKSet.from_dict(local_issuer.jwks).keys[0]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(stranger, key.key, algorithms=["RS256"], audience=AUDIENCE)
