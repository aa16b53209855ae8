"""Fault injection for the crash tests: with `DUALTRACK_FAILPOINT=NAME:MARKER` the worker exits at once,
as a SIGKILL would (no shutdown, no offset committed), the first time it reaches the point NAME. It
creates the file MARKER first, so the worker started after it passes the point. Unset, nothing happens.

Points: `after_store_write` (the engine has written a batch to the store, and nothing else has happened:
no notice decided, nothing published, no offset committed)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from foundation.settings import Settings

log = logging.getLogger(__name__)
#: the exit status of a process killed by SIGKILL, as a shell reports it
KILLED = 137


def reach(settings: Settings, name: str) -> None:
    spec = settings.failpoint
    if not spec:
        return
    point, _, marker = spec.partition(":")
    if point != name or not marker:
        return
    try:
        Path(marker).open("x").close()  # exclusive: only the first worker to get here stops
    except FileExistsError:
        return
    sys.stderr.write(f"failpoint {name} reached: exiting at once\n")
    sys.stderr.flush()
    os._exit(KILLED)
