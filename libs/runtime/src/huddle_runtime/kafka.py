"""Kafka client configuration: every unsafe aiokafka default is set explicitly here."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from huddle_runtime.settings import KafkaSettings


def security_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection security: PLAINTEXT locally; SASL_SSL with SCRAM and verified TLS in clusters."""
    config: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context = create_ssl_context(
            cafile=kafka.ssl_cafile, certfile=kafka.ssl_certfile, keyfile=kafka.ssl_keyfile
        )
        context.check_hostname = kafka.ssl_check_hostname
        config["ssl_context"] = context
    if kafka.security_protocol.startswith("SASL_"):
        assert kafka.sasl_password is not None  # guaranteed by KafkaSettings validation
        config["sasl_mechanism"] = kafka.sasl_mechanism
        config["sasl_plain_username"] = kafka.sasl_username
        config["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return config


def producer_config(kafka: KafkaSettings, *, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": f"{kafka.client_id_prefix}-{client_id}",
        "acks": "all",
        "enable_idempotence": True,
        # The relay hands a whole batch over, then waits for its acknowledgements: lingering
        # would add to every delivery and batch nothing more.
        "linger_ms": 0,
        "request_timeout_ms": 30_000,
        **security_config(kafka),
    }


def consumer_config(kafka: KafkaSettings, *, group_id: str, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": f"{kafka.client_id_prefix}-{client_id}",
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_records": 500,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 3_000,
        **security_config(kafka),
    }


def new_producer(kafka: KafkaSettings, *, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(**producer_config(kafka, client_id=client_id))


def new_consumer(
    kafka: KafkaSettings, *, group_id: str, client_id: str, **overrides: Any
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **{**consumer_config(kafka, group_id=group_id, client_id=client_id), **overrides}
    )
