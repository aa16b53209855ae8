"""The embedded store: the ClickHouse engine in-process (chDB), in one folder, one process at a time."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from dualtrack.errors import StoreError
from sinks.base import Row, Store, utc_naive

_LOCK = ".dualtrack.lock"


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_naive(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


class EmbeddedStore(Store):
    kind = "chdb"

    def __init__(self, path: Path, database: str = "dualtrack") -> None:
        super().__init__(database)
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / _LOCK, "a+")  # noqa: SIM115 - held for the store's lifetime
        except OSError as err:
            raise StoreError(f"cannot open the store folder {self.path}: {err.strerror}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "another process"
            self._lock.close()
            raise StoreError(
                f"the store {self.path} is in use by {holder}; chDB opens a store in one process at a "
                "time: stop that process or pass another --store"
            ) from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"pid {os.getpid()}")
        self._lock.flush()
        try:
            from chdb import session
        except ImportError as err:  # pragma: no cover - chdb is a core dependency
            raise StoreError(f"chdb is not installed ({err}); reinstall dualtrack") from None
        try:
            self._session: Any = session.Session(str(self.path / "chdb"))
        except Exception as err:
            self._release()
            raise StoreError(f"cannot open the chDB store at {self.path}: {err}") from None
        self.execute("SET output_format_json_quote_64bit_integers = 0")

    def _run(self, sql: str, fmt: str = "CSV") -> Any:
        try:
            result = self._session.query(sql, fmt)
        except Exception as err:
            raise StoreError(f"chDB store {self.path}: {err}".strip()) from None
        if getattr(result, "has_error", lambda: False)():
            raise StoreError(f"chDB store {self.path}: {result.error_message()}")
        return result

    def execute(self, sql: str) -> None:
        self._run(sql)

    def query(self, sql: str) -> list[Row]:
        text = self._run(sql, "JSONEachRow").bytes().decode("utf-8")
        return [json.loads(line) for line in text.splitlines() if line]

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        body = "\n".join(
            json.dumps({c: _json_value(v) for c, v in zip(columns, row, strict=True)}, ensure_ascii=False)
            for row in rows
        )
        self._run(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONEachRow\n{body}")

    def _release(self) -> None:
        if not self._lock.closed:
            self._lock.close()

    def close(self) -> None:
        session = getattr(self, "_session", None)
        if session is not None:
            session.close()
            self._session = None
        self._release()
