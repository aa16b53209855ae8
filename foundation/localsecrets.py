"""The secrets of the local services: each from its setting when set, else generated once on this machine
and kept in `<var_dir>/secrets.json` (mode 0600; the file is refused when others may read it).

Only the administrator's commands (`dualtrack infra up`, `dualtrack schools ...`) create the file;
clients only read it, so a typo in DUALTRACK_VAR_DIR fails loudly instead of inventing a password.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from foundation.errors import ConfigError
from foundation.settings import Settings

#: secret name -> the setting that overrides it (None: generated only, never configured)
NAMES: dict[str, str | None] = {
    "kafka_admin": "kafka_admin_password",
    "kafka_worker": "kafka_worker_password",
    "kafka_gateway": "kafka_gateway_password",
    "kafka_broker": None,  # the broker's own login to its controller and to itself (server.properties)
    "clickhouse_admin": "clickhouse_admin_password",
    "clickhouse_writer": "clickhouse_writer_password",
    "clickhouse_reader": "clickhouse_reader_password",
}


class Secret(str):
    """A string whose repr is redacted: client libraries that log their configuration dict at debug
    level (kafka-python does) print `'**********'` instead of the password."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'**********'"


def secrets_file(settings: Settings) -> Path:
    return Path(settings.var_dir).resolve() / "secrets.json"


def _read(path: Path) -> dict[str, str]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} may be read by other users; run `chmod 600 {path}` and try again")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path} cannot be read as JSON ({type(err).__name__})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path} is not an object of strings")
    return data


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process at a time generates (two `infra up` at once must agree on one password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, data: dict[str, str]) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def secret(settings: Settings, name: str, create: bool = False) -> Secret:
    """The secret `name` (a key of NAMES): its setting when set, else the stored one; with `create`,
    every missing secret is generated and stored first."""
    field = NAMES[name]
    configured = getattr(settings, field) if field else None
    if configured is not None:
        return Secret(configured.get_secret_value())
    path = secrets_file(settings)
    stored = _read(path)
    if name not in stored and create:
        with _locked(path):
            stored = _read(path)
            missing = {n: secrets.token_urlsafe(24) for n in NAMES if n not in stored}
            if missing:
                stored = {**stored, **missing}
                _write(path, stored)
    if name not in stored:
        hint = f"set DUALTRACK_{field.upper()}, or " if field else ""
        raise ConfigError(
            f"no {name.replace('_', ' ')} password: {hint}run `dualtrack infra up` on this machine first "
            f"(it generates {path})"
        )
    return Secret(stored[name])


def generated(settings: Settings) -> list[str]:
    """Every secret value the file holds (for tests and checks that output carries none of them)."""
    return list(_read(secrets_file(settings)).values())
