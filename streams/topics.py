"""Every topic the app uses; each name carries DUALTRACK_TOPIC_PREFIX."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from dualtrack.kafka_auth import kafka_client_options, school_topic, secured
from dualtrack.settings import Settings


@dataclass(frozen=True)
class TopicNames:
    intake: str  # raw events from schools, keyed by school_id
    valid: str  # validated events (their bytes, the content hash in a header), keyed by event_id
    kept: str  # first copies, keyed by the province: the engine's ordered input
    dead_letters: str  # rejected events with original bytes (IDs masked), reason and school
    alerts: str  # alert transitions (fired / updated / resolved)

    @classmethod
    def of(cls, settings: Settings) -> TopicNames:
        t = settings.topic
        return cls(t("intake"), t("valid"), t("kept"), t("dead-letters"), t("alerts"))

    def all(self) -> list[str]:
        return [self.intake, self.valid, self.kept, self.dead_letters, self.alerts]


#: partitions per topic: intake and valid scale out by school and event id; the engine's input is
#: one partition per province deployment (its rules are a fold in one order).
PARTITIONS = {"intake": 4, "valid": 4, "kept": 1, "dead_letters": 1, "alerts": 1}
#: the header that carries an accepted event's content hash from the intake on
CONTENT_HASH = "content-hash"
#: the largest record the topics take: a line over the 1 MiB limit must still reach the intake to be
#: dead-lettered as too_large (with its bytes, base64 in the dead letter), not be lost at the producer
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def intake_topic(settings: Settings, school_id: str) -> str:
    """Where a school's events go: its own `<prefix>.intake.<school_id>` (the only topic its user may
    write) on an authenticating broker; the shared `<prefix>.intake` on a PLAINTEXT one, which the
    worker reads until it subscribes to every school's topic (docs/security.md)."""
    return school_topic(settings, school_id) if secured(settings) else settings.topic("intake")


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
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was quicker
                admin.create_topics(wanted)
    finally:
        admin.close()
