"""The local Kafka broker: jar cache, config, and a real produce/consume round trip."""

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from huddle_local import kafka
from huddle_local._util import free_ports
from huddle_local.kafka import KafkaBroker, create_topics, ensure_kafka_jars


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, port=19092, controller_port=19093)
    props = dict(
        line.split("=", 1)
        for line in broker.server_properties().splitlines()
        if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == str(tmp_path.resolve() / "kraft")
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == "6"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert broker.bootstrap == "127.0.0.1:19092"
    assert not broker.is_running()
    broker.stop()  # stopping a broker that never ran is a no-op


def test_cluster_id_shape() -> None:
    ids = {kafka.new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and "=" not in i and not i.startswith("-") for i in ids)


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUDDLE_CACHE_DIR", str(tmp_path))
    assert kafka.kafka_cache_dir("9.9.9") == tmp_path / "kafka" / "9.9.9"


@pytest.mark.integration
async def test_produce_acks_all_and_consume_back(kafka_bootstrap: str) -> None:
    topic = f"huddle.local-test.{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, [topic])
    await create_topics(kafka_bootstrap, [topic])  # idempotent

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert len(described["partitions"]) == 6

    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, b"hello huddle", key=b"k1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"k1", b"hello huddle")
    assert (record.partition, record.offset) == (meta.partition, meta.offset)


@pytest.mark.integration
def test_jar_cache_is_reused(kafka_bootstrap: str) -> None:
    # The session broker resolved (or found) the jars; a second resolution must not run Maven.
    lib = ensure_kafka_jars(mvn="/nonexistent/mvn")
    assert (lib / f"kafka_2.13-{kafka.KAFKA_VERSION}.jar").is_file()
    assert (lib / f"log4j-slf4j-impl-{kafka.LOG4J_VERSION}.jar").is_file()


@pytest.mark.integration
async def test_detached_broker_is_stopped_through_its_pid_file(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port, controller_port = free_ports(2)
    first = KafkaBroker(tmp_path, port=port, controller_port=controller_port)
    first.start()
    try:
        await first.wait_ready_async(120)
        first.start()  # already running: no second JVM
        again = KafkaBroker(tmp_path, port=port, controller_port=controller_port)
        assert again.pid == first.pid
        await create_topics(again.bootstrap, ["restart.check"], partitions=1)
        again.stop()
        assert not again.is_running()
        assert not again.pid_file.exists()
    finally:
        first.stop()
    # Restarting on the same data dir keeps the topic.
    with KafkaBroker(tmp_path, port=port, controller_port=controller_port) as broker:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            assert "restart.check" in await admin.list_topics()
        finally:
            await admin.close()
