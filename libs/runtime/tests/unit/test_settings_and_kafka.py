"""Settings refuse what is unsafe; Kafka clients never get aiokafka's unsafe defaults."""

from __future__ import annotations

import ssl

import pytest
from huddle_runtime.consumer import RetryPolicy
from huddle_runtime.kafka import consumer_config, producer_config
from huddle_runtime.pseudonyms import pseudonym_for
from huddle_runtime.settings import KafkaSettings, ServiceSettings
from pydantic import SecretStr, ValidationError


def test_producer_waits_for_all_in_sync_replicas_and_is_idempotent() -> None:
    config = producer_config(KafkaSettings(), client_id="intake")
    assert (config["acks"], config["enable_idempotence"]) == ("all", True)


def test_consumer_commits_manually_from_the_earliest_committed_record() -> None:
    config = consumer_config(KafkaSettings(), group_id="huddle.matching", client_id="matching")
    assert config["enable_auto_commit"] is False
    assert config["auto_offset_reset"] == "earliest"
    assert config["isolation_level"] == "read_committed"
    assert config["group_id"] == "huddle.matching"


def test_sasl_ssl_with_scram_verifies_the_broker_certificate() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="intake",
        sasl_password=SecretStr("s3cret"),
    )
    config = producer_config(kafka, client_id="intake")
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "intake"
    assert config["sasl_plain_password"] == "s3cret"
    context: ssl.SSLContext = config["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_sasl_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUDDLE_ENVIRONMENT", "local")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-0:9093,kafka-1:9093")
    monkeypatch.setenv("HUDDLE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("HUDDLE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("HUDDLE_KAFKA_SASL_USERNAME", "matching")
    monkeypatch.setenv("HUDDLE_KAFKA_SASL_PASSWORD", "pw")
    kafka = ServiceSettings.load("matching", http_port=8002).kafka
    assert kafka.bootstrap_servers == "kafka-0:9093,kafka-1:9093"
    assert (kafka.security_protocol, kafka.sasl_username) == ("SASL_SSL", "matching")


def test_sasl_without_credentials_is_refused_with_the_missing_variables() -> None:
    with pytest.raises(ValidationError, match="HUDDLE_KAFKA_SASL_USERNAME"):
        KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512")


def test_production_refuses_the_development_pseudonym_key_and_a_missing_jwks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HUDDLE_ENVIRONMENT", raising=False)  # production unless said otherwise
    with pytest.raises(ValidationError, match="HUDDLE_PSEUDONYM_KEY"):
        ServiceSettings.load("intake", http_port=8001)
    monkeypatch.setenv("HUDDLE_PSEUDONYM_KEY", "a-real-secret-from-the-vault")
    with pytest.raises(ValidationError, match="JWKS"):
        ServiceSettings.load("intake", http_port=8001)
    monkeypatch.setenv("HUDDLE_AUTH_JWKS_URL", "https://idp.example/jwks.json")
    assert ServiceSettings.load("intake", http_port=8001).environment == "production"


def test_the_port_comes_from_the_service_unless_the_environment_sets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUDDLE_ENVIRONMENT", "local")
    assert ServiceSettings.load("intake", http_port=8001).http_port == 8001
    monkeypatch.setenv("HUDDLE_HTTP_PORT", "9101")
    assert ServiceSettings.load("intake", http_port=8001).http_port == 9101


def test_the_event_loop_is_uvloop_unless_the_environment_chooses_asyncio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUDDLE_ENVIRONMENT", "local")
    assert ServiceSettings.load("intake", http_port=8001).event_loop == "uvloop"
    monkeypatch.setenv("HUDDLE_EVENT_LOOP", "asyncio")
    assert ServiceSettings.load("intake", http_port=8001).event_loop == "asyncio"
    monkeypatch.setenv("HUDDLE_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError, match="'uvloop' or 'asyncio'"):
        ServiceSettings.load("intake", http_port=8001)


def test_retry_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_seconds=0.2, backoff_max_seconds=1.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.0]


def test_pseudonyms_are_stable_per_network_and_unlinkable_across_networks() -> None:
    key = SecretStr("k" * 32)
    north = pseudonym_for(key, "north", "E1001")
    assert north == pseudonym_for(key, "north", " E1001 ")
    assert north != pseudonym_for(key, "south", "E1001")
    assert north != pseudonym_for(SecretStr("other" * 8), "north", "E1001")
    assert "E1001" not in north and north.startswith("p_")


def test_signing_keys_are_fetched_over_https_only() -> None:
    from huddle_runtime.settings import AuthSettings

    assert AuthSettings(jwks_url="https://idp.example/jwks.json").jwks_url
    assert AuthSettings(jwks_url="http://127.0.0.1:8080/jwks.json").jwks_url
    with pytest.raises(ValidationError, match="https"):
        AuthSettings(jwks_url="http://idp.example/jwks.json")
