"""The store interface both backends implement, the migrations runner and `open_store`."""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlparse

from dualtrack.errors import StoreError
from dualtrack.settings import Settings

Row = dict[str, Any]
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration, in order."""
    out = []
    for f in resources.files("sinks").joinpath("migrations").iterdir():
        m = re.match(r"^(\d{4})_(\w+)\.sql$", f.name)
        if m:
            out.append((int(m.group(1)), m.group(2), f.read_text(encoding="utf-8")))
    return sorted(out)


def statements(sql: str) -> list[str]:
    """The statements of a migration file (`;`-separated, `--` comments dropped)."""
    text = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


def utc_naive(value: datetime) -> datetime:
    """An aware datetime as the naive UTC wall time ClickHouse DateTime('UTC') columns take."""
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0)


class Store(abc.ABC):
    """A ClickHouse database: the chDB folder or a server. Every write is idempotent by key."""

    kind: str = ""

    def __init__(self, database: str) -> None:
        if not _DB_NAME.match(database):
            raise StoreError(f"invalid database name {database!r}: use letters, digits and _")
        self.database = database

    # --- what a backend provides -----------------------------------------------------------------

    @abc.abstractmethod
    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing."""

    @abc.abstractmethod
    def query(self, sql: str) -> list[Row]:
        """Run a SELECT; rows as dicts (DateTime as naive UTC datetime or its text)."""

    @abc.abstractmethod
    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional for backends
        """Release the connection or the embedded engine."""

    # --- shared behaviour ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def table(self, name: str) -> str:
        return f"{self.database}.{name}"

    def insert(self, table: str, rows: Iterable[Row], batch_size: int = 5000) -> int:
        """Insert dict rows (all with the same keys) in batches; returns how many were written."""
        n = 0
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                n += self._flush(table, batch)
                batch = []
        if batch:
            n += self._flush(table, batch)
        return n

    def _flush(self, table: str, batch: list[Row]) -> int:
        columns = list(batch[0])
        self._insert(self.table(table), columns, [[r[c] for c in columns] for r in batch])
        return len(batch)

    def migrate(self) -> list[int]:
        """Apply the migrations not yet recorded; safe to run twice. Returns the versions applied."""
        self.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table('schema_migrations')} "
            "(version UInt32, name String, applied_at DateTime('UTC')) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        done = {
            int(r["version"]) for r in self.query(f"SELECT version FROM {self.table('schema_migrations')}")
        }
        applied = []
        for version, name, sql in migrations():
            if version in done:
                continue
            for stmt in statements(sql):
                self.execute(stmt.replace("{db}", self.database))
            self.insert(
                "schema_migrations",
                [{"version": version, "name": name, "applied_at": datetime.now(UTC)}],
            )
            applied.append(version)
        return applied

    def applied_migrations(self) -> list[int]:
        rows = self.query(f"SELECT DISTINCT version FROM {self.table('schema_migrations')} ORDER BY version")
        return [int(r["version"]) for r in rows]


def open_store(
    settings: Settings | None = None, *, path: Path | str | None = None, url: str | None = None
) -> Store:
    """The store named by `path` (chDB), `url` (a server), or else by the settings."""
    settings = settings or Settings()
    if path is None and url is None:
        url = settings.clickhouse_url
        if url is None:
            path = settings.store_path
    if url is not None:
        from sinks.clickhouse import ServerStore

        return ServerStore.from_url(url, retry_seconds=settings.sink_retry_seconds)
    from sinks.embedded import EmbeddedStore

    return EmbeddedStore(Path(path or settings.store_path))


def parse_url(url: str) -> dict[str, Any]:
    """host, port, user, password and database of a `clickhouse://user:pass@host:port/db` URL."""
    u = urlparse(url)
    if u.scheme not in ("clickhouse", "clickhouses"):
        raise StoreError(f"DUALTRACK_CLICKHOUSE_URL must start with clickhouse://, not {url!r}")
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or (9440 if u.scheme == "clickhouses" else 9000),
        "user": unquote(u.username) if u.username else "default",
        "password": unquote(u.password) if u.password else "",
        "database": (u.path or "/").strip("/") or "dualtrack",
        "secure": u.scheme == "clickhouses",
    }
