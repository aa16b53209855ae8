"""Starting, stopping and checking the real local services: Kafka (from Maven jars) and ClickHouse."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from infra.services import Service, all_services

__all__ = ["Service", "all_services", "up_all"]


def up_all(services: Sequence[Service], say: Callable[[str], object] = lambda _: None) -> list[Service]:
    """Start `services` in order (each `say`s its message) and return those this call started. The
    brokers of a quorum all start before any is waited for: one node alone has no quorum and would never
    answer. On a failure, what this call started is stopped again and the InfraError raised."""
    from infra.kafka import Kafka

    kafka = [s for s in services if isinstance(s, Kafka)]
    started: list[Service] = []
    try:
        for svc in kafka:
            message = svc.up(wait=len(kafka) == 1)
            say(message)
            if " started " in message:
                started.append(svc)
        if len(kafka) > 1:
            for svc in kafka:
                svc.finish_up()
            for svc in kafka:
                if message := svc.logins():
                    say(svc.name + message)
        for other in services:
            if not isinstance(other, Kafka):
                message = other.up()
                say(message)
                if " started " in message:
                    started.append(other)
    except BaseException:
        for done in reversed(started):  # leave nothing half-started
            if done.pid() is not None:
                say(done.down())
        raise
    return started
