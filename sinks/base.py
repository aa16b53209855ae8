"""The store interface both backends implement, the migrations runner and `open_store`.

A store speaks SQL to one ClickHouse database and nothing else: what a row means is decided by its
callers (`sinks.eventlog`, `sinks.live`). Both backends return rows of the same Python types: String
as `str` (as `bytes` for the columns a query names binary), integers as `int`, DateTime as an aware
UTC `datetime`, Nullable as `None`, Array as `list`.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlparse

from foundation.errors import StoreError
from foundation.settings import Settings

Row = dict[str, Any]
Columns = Mapping[str, Sequence[Any]]
#: the values a statement binds, by name: str, int, float, or a list of them (for `IN`)
Params = Mapping[str, Any]
#: where a statement takes a bound value, in ClickHouse's own syntax: `{name:Type}`, e.g.
#: `WHERE event_id IN {ids:Array(String)} AND occurred_at_us <= {until:Int64}`. Each backend hands the
#: values to its driver (chDB's `params`, clickhouse-driver's parameters); no value is ever written into
#: the SQL text. Identifiers (tables, columns) cannot be bound: they come from `Store.table` and the
#: callers' constants.
PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9_]+(?:\([A-Za-z0-9_]+\))?)\}")
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: a migration lock held longer than this is taken to belong to a process that died while migrating
MIGRATION_LOCK_SECONDS = 600.0
log = logging.getLogger(__name__)


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


def micros(t: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact, for ordering)."""
    d = t - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def check_params(sql: str, params: Params | None) -> Params:
    """The parameters, when every `{name:Type}` place of `sql` has one and each is used."""
    wanted = {m.group(1) for m in PARAM.finditer(sql)}
    given = dict(params or {})
    if wanted != set(given):
        raise StoreError(f"parameters {sorted(given)} do not match the statement's {sorted(wanted)}")
    for name, value in given.items():
        items = value if isinstance(value, list | tuple) else [value]
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in items):
            raise StoreError(f"parameter {name}: bind str, int, float or a list of them")
    return given


def from_micros(us: int) -> datetime:
    """The aware UTC datetime of integer microseconds since the epoch (exact)."""
    return _EPOCH + timedelta(microseconds=us)


def utc(value: datetime) -> datetime:
    """A DateTime value as both backends return it: aware, in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Store(abc.ABC):
    """A ClickHouse database: the chDB folder or a server. Every write is idempotent by key."""

    kind: str = ""

    def __init__(self, database: str, insert_batch_rows: int = 50_000) -> None:
        if not _DB_NAME.match(database):
            raise StoreError(f"invalid database name {database!r}: use letters, digits and _")
        self.database = database
        self.insert_batch_rows = insert_batch_rows

    # --- what a backend provides -----------------------------------------------------------------

    @abc.abstractmethod
    def execute(self, sql: str, params: Params | None = None) -> None:
        """Run a statement that returns nothing, with `params` bound to its `{name:Type}` places."""

    @abc.abstractmethod
    def query(self, sql: str, params: Params | None = None, binary: Iterable[str] = ()) -> list[Row]:
        """Run a SELECT with `params` bound (see PARAM); rows as dicts of the common types (the `binary`
        columns as bytes)."""

    @abc.abstractmethod
    def _insert_columns(self, table: str, columns: Columns, rows: int) -> None:
        """Insert one batch given as columns of equal length into the qualified `table`."""

    def close(self) -> None:  # noqa: B027 - optional for backends
        """Release the connection or the embedded engine."""

    def release_memory(self) -> None:  # noqa: B027 - optional for backends
        """Give memory the store holds but no longer uses back to the system (the embedded engine's
        allocator keeps freed memory otherwise)."""

    # --- shared behaviour ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def table(self, name: str) -> str:
        """The qualified name of one of the project's tables (an identifier, never data)."""
        if not _DB_NAME.match(name):
            raise StoreError(f"invalid table name {name!r}")
        return f"{self.database}.{name}"

    def insert_columns(self, table: str, columns: Columns, atomic: bool = False) -> int:
        """Insert rows given as columns (equal lengths); returns how many were written. With `atomic`
        the rows go in one INSERT (one block: into an unpartitioned table, all of them or none)."""
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise StoreError(f"insert into {table}: columns of different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        if atomic and n:
            self._insert_columns(self.table(table), columns, n)
            return n
        for start in range(0, n, self.insert_batch_rows):
            part = {k: v[start : start + self.insert_batch_rows] for k, v in columns.items()}
            self._insert_columns(self.table(table), part, min(self.insert_batch_rows, n - start))
        return n

    def insert(self, table: str, rows: Iterable[Row]) -> int:
        """Insert dict rows (all with the same keys); returns how many were written."""
        batch = list(rows)
        if not batch:
            return 0
        names = list(batch[0])
        return self.insert_columns(table, {c: [r[c] for r in batch] for c in names})

    def migrate(self) -> list[int]:
        """Apply the migrations not yet recorded; safe to run twice. Returns the versions applied."""
        self.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table('schema_migrations')} "
            "(version UInt32, name String, applied_at DateTime('UTC')) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        if set(self.applied_migrations()) >= {v for v, _, _ in migrations()}:
            return []
        with self._migration_lock():
            done = set(self.applied_migrations())  # another process may have applied them meanwhile
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

    @contextlib.contextmanager
    def _migration_lock(self, wait_seconds: float = MIGRATION_LOCK_SECONDS) -> Iterator[None]:
        """One process at a time migrates a database (workers of a deployment start together, and a
        migration that copies and renames a table must not run twice at once). The lock is a table:
        CREATE TABLE without IF NOT EXISTS succeeds for exactly one caller. A lock older than
        `wait_seconds` (its holder died mid-migration) is broken; the migration then runs again."""
        lock = self.table("migration_lock")
        waited_since = time.monotonic()
        while True:
            try:
                self.execute(f"CREATE TABLE {lock} (taken_at DateTime('UTC')) ENGINE = TinyLog")
                break
            except StoreError as err:
                if "already exists" not in str(err):
                    raise  # not a lock held by another process: a real failure
                if time.monotonic() - waited_since > wait_seconds:
                    log.warning("breaking the migration lock of %s (over %ss)", self.database, wait_seconds)
                    self.execute(f"DROP TABLE IF EXISTS {lock}")
                    waited_since = time.monotonic()
                time.sleep(0.2)
        try:
            yield
        finally:
            self.execute(f"DROP TABLE IF EXISTS {lock}")

    def applied_migrations(self) -> list[int]:
        table = self.table("schema_migrations")
        rows = self.query(f"SELECT DISTINCT version FROM {table} ORDER BY version")  # noqa: S608 - identifiers only
        return [int(r["version"]) for r in rows]


def open_store(
    settings: Settings | None = None, *, path: Path | str | None = None, url: str | None = None
) -> Store:
    """The store named by `path` (chDB), `url` (a server), or else by the settings."""
    if path is None and url is None:
        if settings is None:
            raise StoreError("open_store needs the settings, a path or a URL")
        url = settings.clickhouse_url
        path = settings.store_path if url is None else None
    options: dict[str, Any] = {}
    if settings is not None:
        options["insert_batch_rows"] = settings.insert_batch_rows
    if url is not None:
        from sinks.clickhouse import ServerStore

        if settings is not None:
            options["retry_seconds"] = settings.sink_retry_seconds
        return ServerStore.from_url(url, **options)
    from sinks.embedded import EmbeddedStore

    return EmbeddedStore(Path(str(path)), **options)


def parse_url(url: str) -> dict[str, Any]:
    """host, port, user, password and database of a `clickhouse://user:pass@host:port/db` URL. Errors
    never repeat the URL or a part of it: the password is in it."""
    try:
        u = urlparse(url)
        port = u.port
    except ValueError:  # urllib's message would quote the "port", which may be a piece of the password
        raise StoreError(
            "DUALTRACK_CLICKHOUSE_URL is not a URL clickhouse://user:password@host:port/database (a password "
            "with / ? # @ : or % must be percent-encoded)"
        ) from None
    if u.scheme not in ("clickhouse", "clickhouses"):
        raise StoreError("DUALTRACK_CLICKHOUSE_URL must start with clickhouse:// or clickhouses://")
    return {
        "host": u.hostname or "127.0.0.1",
        "port": port or (9440 if u.scheme == "clickhouses" else 9000),
        "user": unquote(u.username) if u.username else "default",
        "password": unquote(u.password) if u.password else "",
        "database": (u.path or "/").strip("/") or "dualtrack",
        "secure": u.scheme == "clickhouses",
    }
