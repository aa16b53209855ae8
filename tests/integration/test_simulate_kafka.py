"""`dualtrack simulate --kafka --rate`: a simulated province produced to the real broker, paced."""

from __future__ import annotations

import re
import time

from kafka import KafkaConsumer, TopicPartition

from tests.integration.conftest import run_cli


def test_simulate_produces_every_event_at_the_given_rate(cli_env: dict[str, str], services) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = run_cli(["simulate", "--kafka", "--schools", "3", "--rate", "400"], cli_env)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    sent = int(re.search(r"sent (\d+) events", result.stdout).group(1))  # type: ignore[union-attr]
    assert sent > 200
    assert elapsed >= sent / 400  # paced, not a burst
    consumer = KafkaConsumer(bootstrap_servers=services.kafka_bootstrap_servers)
    try:
        topic = f"{cli_env['DUALTRACK_TOPIC_PREFIX']}.intake"
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert sum(consumer.end_offsets(parts).values()) == sent
    finally:
        consumer.close()
