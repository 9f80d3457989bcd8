"""Workspace-wide pytest fixtures: the real Kafka broker, PostgreSQL server and token issuer.

The servers start once per session, lazily, on free loopback ports (logic in
``huddle_local.testing``); set ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` to use others.
"""

from collections.abc import Iterator

import pytest
from huddle_local.issuer import LocalIssuer
from huddle_local.testing import SessionServers


@pytest.fixture(scope="session")
def _huddle_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SessionServers]:
    servers = SessionServers(tmp_path_factory.mktemp("huddle-servers"))
    # Start in parallel every server that some selected test needs, not only the first asked for.
    wanted = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    servers.prestart(kafka="kafka_bootstrap" in wanted, postgres="database_url" in wanted)
    yield servers
    servers.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(_huddle_servers: SessionServers) -> str:
    """host:port of a real Kafka broker (KRaft) for this test session."""
    return _huddle_servers.kafka_bootstrap()


@pytest.fixture(scope="session")
def database_url(_huddle_servers: SessionServers) -> str:
    """postgresql:// URL (superuser) of a real PostgreSQL server for this test session."""
    return _huddle_servers.database_url()


@pytest.fixture(scope="session")
def local_issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    """A LocalIssuer (RSA key + JWKS file) in a session temp dir."""
    return LocalIssuer(tmp_path_factory.mktemp("huddle-issuer"))
