"""Every topic the app uses; each name carries DUALTRACK_TOPIC_PREFIX."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from dualtrack.kafka_auth import kafka_client_options, school_of_topic, school_topic, secured
from dualtrack.settings import Settings


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
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**kafka_client_options(settings), client_id="dualtrack-topics")
    try:
        return sorted(t for t in admin.list_topics() if school_of_topic(settings, t))
    finally:
        admin.close()


def input_topics(settings: Settings) -> list[str]:
    """The topics events arrive on: every school's own topic on a secured broker (the topic proves the
    sender), the shared `<prefix>.intake` on a PLAINTEXT one."""
    return school_topics(settings) if secured(settings) else [settings.topic("intake")]


def ensure_topics(settings: Settings) -> None:
    """Create the app's topics when missing (a consumer that subscribes first would not see them)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    names = TopicNames.of(settings)
    admin = KafkaAdminClient(**kafka_client_options(settings), client_id="dualtrack-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, PARTITIONS[field], 1, topic_configs={"max.message.bytes": str(MAX_MESSAGE_BYTES)})
            for field, name in zip(PARTITIONS, names.all(), strict=True)
            # on a secured broker events arrive on the schools' own topics; no shared intake is made
            if name not in existing and not (field == "intake" and secured(settings))
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was quicker
                admin.create_topics(wanted)
    finally:
        admin.close()
