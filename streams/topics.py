"""Every topic the app uses; each name carries DUALTRACK_TOPIC_PREFIX."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from foundation.kafka_auth import kafka_admin, kafka_client_options, school_of_topic, school_topic, secured
from foundation.settings import Settings


@dataclass(frozen=True)
class TopicNames:
    intake: str  # raw events from schools, keyed by school_id
    accepted: str  # batches of validated events (bytes and content hashes): the engine's ordered input
    dead_letters: str  # rejected events with original bytes (IDs masked), reason and school
    alerts: str  # alert transitions (fired / updated / resolved)

    @classmethod
    def of(cls, settings: Settings) -> TopicNames:
        t = settings.topic
        return cls(t("intake"), t("accepted"), t("dead-letters"), t("alerts"))

    def all(self) -> list[str]:
        return [self.intake, self.accepted, self.dead_letters, self.alerts]


@dataclass(frozen=True)
class Groups:
    """The worker pool's two consumer groups (the broker's ACL lets the worker use `<prefix>-worker*`):
    `intake` validates the school topics, spread over every worker by a round-robin assignor
    (`streams.agents.intake`); `engine` is Faust's, over the one-partition accepted, dead-letter and
    alert topics: one worker runs the engine, the others stand by to take it over (docs/adr/0008)."""

    intake: str
    engine: str

    @classmethod
    def of(cls, settings: Settings) -> Groups:
        return cls(f"{settings.topic_prefix}-worker-intake", f"{settings.topic_prefix}-worker")


def member_name(settings: Settings, role: str) -> str:
    """The client id a worker's consumer shows its group: the deployment, the role and the process
    (`sd-intake-host1-4242`), so the assignment says which worker owns what (`dualtrack pool`)."""
    return f"{settings.topic_prefix}-{role}-{socket.gethostname()}-{os.getpid()}"


def worker_of(settings: Settings, client_id: str) -> str:
    """The worker (`host-pid`) behind a member's client id, or the id itself when not one of ours."""
    for role in ("intake", "engine"):
        head = f"{settings.topic_prefix}-{role}-"
        if client_id.startswith(head):
            return client_id[len(head) :]
    return client_id


#: partitions per topic: the intake scales out by school over the workers (validation is the work
#: that parallelises); the engine's input is one partition per province deployment (its rules are a
#: fold in one order, and the duplicate rule needs one place that sees every copy first).
PARTITIONS = {"intake": 4, "accepted": 1, "dead_letters": 1, "alerts": 1}
#: the largest record the topics take: a line over the 1 MiB limit must still reach the intake to be
#: dead-lettered as too_large (with its bytes, base64 in the dead letter), not be lost at the producer
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def intake_topic(settings: Settings, school_id: str) -> str:
    """Where a school's events go: its own `<prefix>.intake.<school_id>` (the only topic its user may
    write) on an authenticating broker; the shared `<prefix>.intake` on a PLAINTEXT one, which the
    worker reads until it subscribes to every school's topic (docs/security.md)."""
    return school_topic(settings, school_id) if secured(settings) else settings.topic("intake")


def school_topics(settings: Settings) -> list[str]:
    """Every school's intake topic on the broker, `<prefix>.intake.<school_id>` (made by `dualtrack
    schools add`); the worker reads them all."""
    admin = kafka_admin(kafka_client_options(settings), client_id="dualtrack-topics")
    try:
        return sorted(t for t in admin.list_topics() if school_of_topic(settings, t))
    finally:
        admin.close()


def input_topics(settings: Settings) -> list[str]:
    """The topics events arrive on: every school's own topic on a secured broker (the topic proves the
    sender), the shared `<prefix>.intake` on a PLAINTEXT one."""
    return school_topics(settings) if secured(settings) else [settings.topic("intake")]


#: every topic: the record limit, and the broker's clock as each record's timestamp (the arrival that
#: "as known on" counts, docs/domain.md; a producer's own time is never trusted for it)
TOPIC_CONFIGS = {"max.message.bytes": str(MAX_MESSAGE_BYTES), "message.timestamp.type": "LogAppendTime"}


def replication(brokers: int) -> tuple[int, dict[str, str]]:
    """The replication factor of every topic the project creates, and the settings that go with it:
    min(3, brokers) copies; with three, a write is acknowledged once two hold it (`min.insync.replicas`
    2, with the producers' acks=all), so one broker can be lost without losing or refusing a write."""
    factor = max(1, min(3, brokers))
    return factor, ({"min.insync.replicas": "2"} if factor == 3 else {})


def create_topics(admin: Any, partitions: Mapping[str, int]) -> int:
    """Create those of the topics (name -> partitions) the broker does not have yet, every one the same
    way (`replication`, the record limit). The one place a topic is made: the worker's own topics and
    each school's. Returns the replication factor used."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    existing = set(admin.list_topics())
    if all(name in existing for name in partitions):
        return replication(len(admin.describe_cluster()["brokers"]))[0]
    # counted from the brokers that answer now: a topic made while one of three is down gets two copies
    # (Kafka places no more replicas than live brokers); docs/operations.md has it watched and fixed
    factor, configs = replication(len(admin.describe_cluster()["brokers"]))
    wanted = [
        NewTopic(name, n, factor, topic_configs={**TOPIC_CONFIGS, **configs})
        for name, n in sorted(partitions.items())
        if name not in existing
    ]
    if wanted:
        with contextlib.suppress(TopicAlreadyExistsError):  # another worker or administrator was quicker
            admin.create_topics(wanted)
    return factor


def ensure_topics(settings: Settings) -> int:
    """Create the app's topics when missing (a consumer that subscribes first would not see them);
    returns their replication factor (Faust's own topics get the same)."""

    names = TopicNames.of(settings)
    admin = kafka_admin(kafka_client_options(settings), client_id="dualtrack-admin")
    try:
        return create_topics(
            admin,
            {
                name: PARTITIONS[field]
                for field, name in zip(PARTITIONS, names.all(), strict=True)
                # on a secured broker events arrive on the schools' own topics; no shared intake is made
                if not (field == "intake" and secured(settings))
            },
        )
    finally:
        admin.close()
