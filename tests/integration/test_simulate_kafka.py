"""`dualtrack simulate --kafka --rate`: a simulated province produced to the real broker, paced."""

from __future__ import annotations

import re
import time

from kafka import KafkaConsumer, TopicPartition

from foundation.kafka_auth import kafka_client_options
from foundation.settings import Settings
from streams.topics import school_topics
from tests.integration.conftest import run_cli


def test_simulate_produces_every_event_at_the_given_rate(cli_env: dict[str, str], services) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = run_cli(["simulate", "--kafka", "--schools", "3", "--rate", "400"], cli_env)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    sent = int(re.search(r"sent (\d+) events", result.stdout).group(1))  # type: ignore[union-attr]
    assert sent > 200
    assert elapsed >= sent / 400  # paced, not a burst
    settings = Settings(topic_prefix=cli_env["DUALTRACK_TOPIC_PREFIX"])
    consumer = KafkaConsumer(**kafka_client_options(settings))  # the worker's login
    try:
        topics = school_topics(settings)  # each school sent as itself, to its own topic
        assert len(topics) == 3
        parts = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        assert sum(consumer.end_offsets(parts).values()) == sent
    finally:
        consumer.close()
