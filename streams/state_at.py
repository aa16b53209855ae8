"""The engine's state at a time, from the store: the newest usable checkpoint at or before it and the
kept events after it. The one place a checkpoint is read back: the engine's catch-up, `dualtrack report`
and the briefing all start here."""

from __future__ import annotations

import logging
from datetime import datetime

from rules.engine import Engine, state_key
from rules.limits import Rules
from rules.snapshot import SnapshotError, load
from sinks.base import Store
from sinks.checkpoints import Checkpoint, Checkpoints
from sinks.eventlog import EventLog

log = logging.getLogger(__name__)


def restored(
    store: Store, rules: Rules, until: datetime | None = None, known_on: datetime | None = None
) -> tuple[Engine, Checkpoint | None]:
    """The engine of the newest usable checkpoint at or before `until` (any, when None; with `known_on`,
    one of events arrived by then only) and that checkpoint; an empty engine and None when there is
    none. A checkpoint that does not read (another format or version, a damaged part) is passed over
    with its reason logged: the caller then folds from the log, which is slower and always right."""
    checkpoint = Checkpoints(store).latest(state_key(rules), until=until, known_on=known_on)
    if checkpoint is None:
        return Engine(rules), None
    try:
        return load(checkpoint.state, rules), checkpoint
    except SnapshotError as err:
        log.warning(
            "the checkpoint at %s (%s) is not used: %s; folding from the log",
            checkpoint.position[0].isoformat(), checkpoint.position[1], err,
        )  # fmt: skip
        return Engine(rules), None


def engine_at(store: Store, rules: Rules, as_of: datetime, known_on: datetime | None = None) -> Engine:
    """The engine with exactly the kept events up to `as_of` applied, of those that had arrived by
    `known_on` when given (the cost is the events after the checkpoint, not the history)."""
    engine, checkpoint = restored(store, rules, until=as_of, known_on=known_on)
    position = checkpoint.position if checkpoint else None
    for page in EventLog(store).events_after(position, until=as_of, known_on=known_on):
        for e in page:
            engine.apply(e)
    return engine
