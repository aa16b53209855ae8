"""The Faust app, built by `create_app(settings)`: its topics, the runtime and one agent (or task) per
module in `streams/agents/`. Faust holds no table: the duplicate rule reads the event log
(`rules.dedup`). Importing this module builds nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, NoReturn

from foundation.kafka_auth import faust_broker_credentials
from foundation.settings import Settings
from rules.limits import Rules, load_rules
from streams.runtime import Runtime
from streams.topics import MAX_MESSAGE_BYTES, PARTITIONS, Groups, TopicNames, input_topics, member_name

log = logging.getLogger(__name__)
#: the worker's exit code when an agent fails (EX_SOFTWARE)
AGENT_FAILED = 70


def fail(name: str, err: BaseException) -> NoReturn:
    """An agent failed: say why and stop the process at once. Exiting without Faust's shutdown means
    no offset is committed for work that was not done, so a restart picks it up again (a crashed
    agent must never look like a drained input)."""
    log.critical("the %s agent failed; the worker stops", name, exc_info=err)
    reason = f"{type(err).__name__}: {err}".splitlines()[0][:300]
    sys.stderr.write(f"error: the {name} agent failed ({reason}); the worker stops, nothing is committed\n")
    sys.stderr.flush()
    logging.shutdown()
    os._exit(AGENT_FAILED)


def guarded(name: str) -> Callable[[Callable[[Any], Awaitable[None]]], Callable[[Any], Awaitable[None]]]:
    """Wrap an agent so that any exception from it stops the worker (see `fail`)."""

    def wrap(agent: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        @wraps(agent)
        async def run(stream: Any) -> None:
            try:
                await agent(stream)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                fail(name, err)

        return run

    return wrap


@dataclass
class Pipeline:
    """The app and what its agents share."""

    app: Any  # faust.App
    settings: Settings
    rules: Rules
    names: TopicNames
    runtime: Runtime
    topics: dict[str, Any] = field(default_factory=dict)  # name in TopicNames -> faust topic
    notices: Any = None  # streams.notices.Notices: delivery of the notifier's messages (None: nobody told)
    agents: dict[str, Any] = field(default_factory=dict)

    def inputs(self) -> dict[str, list[str]]:
        """Each consumer group of the pool and the topics it consumes (the intake's as now known: every
        school's topic on a secured broker). Blocking: it asks the broker."""
        groups = Groups.of(self.settings)
        return {
            groups.intake: input_topics(self.settings),
            groups.engine: [self.names.accepted, self.names.dead_letters],
        }


def create_app(settings: Settings, rules: Rules | None = None, replication: int = 1) -> Pipeline:
    """Build the Faust app for one deployment (one topic prefix, one store). `replication` is the
    factor of the topics Faust makes itself (`streams.topics.ensure_topics` says what the broker takes)."""
    import faust

    from streams.agents import dead_letters, engine, health, intake, notifier

    rules = rules or load_rules(settings.rules_file)
    app = faust.App(
        Groups.of(settings).engine,
        broker=[f"kafka://{s.strip()}" for s in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=faust_broker_credentials(settings),  # None on a PLAINTEXT broker
        store="memory://",  # no Faust table: the store is the state
        datadir=str(settings.var_dir / "faust"),
        autodiscover=False,
        origin="streams",
        topic_partitions=1,
        topic_replication_factor=replication,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        broker_commit_every=500,
        # a worker killed without leaving the group holds its partitions until this runs out
        broker_session_timeout=10.0,
        broker_client_id=member_name(settings, "engine"),
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
        web_enabled=False,
        value_serializer="raw",
        key_serializer="raw",
    )
    names = TopicNames.of(settings)
    p = Pipeline(app, settings, rules, names, Runtime(settings, rules))
    for attr in ("accepted", "dead_letters", "alerts"):
        p.topics[attr] = app.topic(getattr(names, attr), partitions=PARTITIONS[attr])
    for module in (intake, engine, dead_letters, notifier, health):  # the notifier before the engine starts
        module.register(p)
    return p
