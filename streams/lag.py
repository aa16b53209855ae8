"""How far the worker pool's consumer groups are behind: the one place that reads committed offsets and
end offsets from Kafka (the health sample, `worker --exit-when-idle` and the demo's live view)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from foundation.errors import DualtrackError
from foundation.kafka_auth import kafka_admin, kafka_client_options
from foundation.settings import Settings

#: (topic, partition)
Partition = tuple[str, int]


def lag_of(committed: Mapping[Partition, int | None], ends: Mapping[Partition, int]) -> dict[Partition, int]:
    """Messages behind per partition: its end offset less the group's committed offset (all of it when
    nothing is committed)."""
    return {tp: max(end - (committed.get(tp) or 0), 0) for tp, end in sorted(ends.items())}


class Offsets:
    """A Kafka admin client and an offsets-only consumer, logged in as the worker. Blocking: use it in a
    thread. `with Offsets(settings) as o: o.lag(group, topics)`."""

    def __init__(self, settings: Settings, client_id: str = "dualtrack-offsets") -> None:
        from kafka import KafkaConsumer

        options = kafka_client_options(settings)
        self._admin = kafka_admin(options, client_id=client_id)
        try:
            self._consumer = KafkaConsumer(**options, client_id=client_id, enable_auto_commit=False)
        except BaseException:
            self._admin.close()
            raise

    def __enter__(self) -> Offsets:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()

    def committed(self, group: str) -> dict[Partition, int | None]:
        """The group's committed offset per partition (None: nothing committed there)."""
        offsets: Mapping[Any, Any] = self._admin.list_group_offsets({group: None}).get(group, {})
        return {(tp.topic, tp.partition): (o.offset if o is not None else None) for tp, o in offsets.items()}

    def ends(self, topics: Iterable[str]) -> tuple[dict[Partition, int], list[str]]:
        """The end offset of every partition of `topics`, and the topics without metadata yet."""
        from kafka import TopicPartition

        parts, missing = [], []
        for t in topics:
            known = self._consumer.partitions_for_topic(t)
            if not known:
                missing.append(t)
            parts += [TopicPartition(t, n) for n in sorted(known or ())]
        ends = self._consumer.end_offsets(parts) if parts else {}
        return {(tp.topic, tp.partition): int(end) for tp, end in ends.items()}, missing

    def lag(self, group: str, topics: Iterable[str]) -> dict[Partition, int]:
        """The group's lag on each partition of `topics`; a topic without metadata yet is left out."""
        ends, _ = self.ends(topics)
        return lag_of(self.committed(group), ends)

    def owners(self, group: str) -> dict[str, list[Partition]]:
        """Who owns what in `group` now: each member's client id (`streams.topics.member_name`) and its
        assigned partitions; empty while the group has no members (or is rebalancing)."""
        # kafka-python warns on every member of a Faust group: it cannot read Faust's own member
        # metadata (the assignment, all this needs, it reads)
        logging.getLogger("kafka.admin").setLevel(logging.ERROR)
        described: Mapping[str, Any] = self._admin.describe_groups([group])
        found = described.get(group, {})
        if found.get("error"):
            raise DualtrackError(f"cannot describe the consumer group {group}: {found['error']}")
        out: dict[str, list[Partition]] = {}
        for m in found.get("members", []):
            assignment = m.get("member_assignment")
            given = assignment.get("assigned_partitions", []) if isinstance(assignment, dict) else []
            parts = [(a["topic"], n) for a in given for n in a["partitions"]]
            name = str(m.get("client_id") or m.get("member_id"))
            out[name] = sorted(out.get(name, []) + parts)
        return out

    def drained(self, group: str, topics: Iterable[str]) -> bool:
        """Whether the group has committed every message of `topics` (never while one has no metadata)."""
        ends, missing = self.ends(topics)
        return not missing and not any(lag_of(self.committed(group), ends).values())
