"""The Faust app. Agents live in streams/agents/ and are found through an explicit autodiscover list."""

from __future__ import annotations

import faust

from dualtrack.settings import Settings
from streams.runtime import Runtime
from streams.topics import PARTITIONS, TopicNames

settings = Settings()
names = TopicNames.of(settings)

app = faust.App(
    f"{settings.topic_prefix}-worker",
    broker=[f"kafka://{s.strip()}" for s in settings.kafka_bootstrap_servers.split(",")],
    store="memory://",  # tables are rebuilt from their changelog topics at start
    autodiscover=[
        "streams.agents.intake",
        "streams.agents.dedup",
        "streams.agents.engine",
        "streams.agents.dead_letters",
        "streams.agents.notifier",
    ],
    origin="streams",
    topic_partitions=PARTITIONS["valid"],
    topic_replication_factor=1,
    topic_allow_declare=True,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    broker_commit_every=500,
    # a worker killed without leaving the group holds its partitions until this runs out
    broker_session_timeout=10.0,
    broker_heartbeat_interval=2.0,
    broker_commit_interval=1.0,
    web_enabled=False,
    value_serializer="raw",
    key_serializer="raw",
)

intake_topic = app.topic(names.intake, partitions=PARTITIONS["intake"])
valid_topic = app.topic(names.valid, partitions=PARTITIONS["valid"])
kept_topic = app.topic(names.kept, partitions=PARTITIONS["kept"])
dead_letter_topic = app.topic(names.dead_letters, partitions=PARTITIONS["dead_letters"])
alerts_topic = app.topic(names.alerts, partitions=PARTITIONS["alerts"])

#: first-copy content hashes by event_id (the duplicate rule), partitioned like `valid`
event_hashes = app.Table("event-hashes", default=str, partitions=PARTITIONS["valid"])

runtime = Runtime(settings)
