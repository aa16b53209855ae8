"""The embedded store: the ClickHouse engine in-process (chDB), in one folder, one process at a time.

Inserts go in as Arrow tables (columns, binary-safe, no text escaping); queries come back as
`JSONCompactEachRowWithNamesAndTypes`, split on the newline byte only (a JSON string cannot hold a raw
newline, while U+0085 or U+2028 inside a value are legal), with each value converted by its type.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from foundation.errors import StoreError
from sinks.base import Columns, Params, Row, Store, check_params

_LOCK = ".dualtrack.lock"
_SETTINGS = ("output_format_json_quote_64bit_integers = 0", "output_format_json_quote_denormals = 0")


def _datetime(value: Any) -> Any:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _date(value: Any) -> Any:
    return None if value is None else date.fromisoformat(value)


def _converter(ch_type: str) -> Callable[[Any], Any] | None:
    """How a JSON value of a ClickHouse type becomes the common Python type (None: as it is)."""
    inner = re.sub(r"^(Nullable|LowCardinality)\((.*)\)$", r"\2", ch_type)
    if inner.startswith("DateTime"):
        return _datetime
    if inner == "Date":
        return _date
    if inner.startswith(("Int", "UInt")) and not inner.startswith("Interval"):
        return lambda v: None if v is None else int(v)
    return None


def _as_bytes(value: Any) -> Any:
    """A String value (or an array of them) as the bytes ClickHouse holds."""
    if isinstance(value, list):
        return [_as_bytes(v) for v in value]
    return None if value is None else value.encode("utf-8", "surrogateescape")


def _arrow_type(ch_type: str) -> tuple[Any, bool]:
    """The Arrow type that feeds a ClickHouse column type, and whether it is nullable."""
    import pyarrow as pa

    m = re.match(r"^Nullable\((.*)\)$", ch_type)
    if m:
        return _arrow_type(m.group(1))[0], True
    m = re.match(r"^Array\((.*)\)$", ch_type)
    if m:
        item, nullable = _arrow_type(m.group(1))
        return pa.list_(pa.field("item", item, nullable)), False
    simple = {
        "String": pa.binary(), "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(),
        "UInt64": pa.uint64(), "Int8": pa.int8(), "Int16": pa.int16(), "Int32": pa.int32(),
        "Int64": pa.int64(), "Float32": pa.float32(), "Float64": pa.float64(),
    }  # fmt: skip
    if ch_type in simple:
        return simple[ch_type], False
    if ch_type.startswith("DateTime"):
        return pa.timestamp("s", tz="UTC"), False
    if ch_type == "Date":
        return pa.date32(), False
    raise StoreError(f"the embedded store cannot insert a column of type {ch_type}")


def _param_text(value: Any) -> str:
    """A bound value in the text form chDB's `params` take (the engine parses it as a value of the
    place's type, never as SQL): a scalar in the escaped form of TSV, a list as an array of quoted
    elements."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_quoted_element(v) for v in value) + "]"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return repr(value)


def _quoted_element(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


def _encode(value: Any) -> Any:
    """Strings go in as UTF-8 bytes (binary columns take bytes as they are)."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list):
        return value
    return value


class EmbeddedStore(Store):
    kind = "chdb"

    def __init__(self, path: Path, database: str = "dualtrack", insert_batch_rows: int = 50_000) -> None:
        super().__init__(database, insert_batch_rows)
        self.path = Path(path)
        self._schemas: dict[str, Any] = {}
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
            self._release()
            raise StoreError(f"chdb is not installed ({err}); reinstall dualtrack") from None
        try:
            self._session: Any = session.Session(str(self.path / "chdb"))
        except Exception as err:
            self._release()
            raise StoreError(f"cannot open the chDB store at {self.path}: {err}") from None
        for setting in _SETTINGS:
            self._run(f"SET {setting}")

    def _run(self, sql: str, fmt: str = "CSV", params: Params | None = None) -> Any:
        bound = {k: _param_text(v) for k, v in check_params(sql, params).items()}
        try:
            result = self._session.query(sql, fmt, params=bound or None)
        except Exception as err:
            raise StoreError(f"chDB store {self.path}: {err}".strip()) from None
        if getattr(result, "has_error", lambda: False)():
            raise StoreError(f"chDB store {self.path}: {result.error_message()}")
        return result

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._schemas.clear()  # a statement may change a table's columns
        self._run(sql, params=params)

    def query(self, sql: str, params: Params | None = None, binary: Iterable[str] = ()) -> list[Row]:
        data: bytes = self._run(sql, "JSONCompactEachRowWithNamesAndTypes", params).bytes()
        lines = data.split(b"\n")
        if len(lines) < 2:
            return []
        # ClickHouse writes String values as their bytes; surrogateescape keeps any that are not UTF-8
        names = json.loads(lines[0].decode("utf-8", "surrogateescape"))
        types = json.loads(lines[1].decode("utf-8", "surrogateescape"))
        wanted = set(binary)
        convert: list[Callable[[Any], Any] | None] = []
        for name, ch_type in zip(names, types, strict=True):
            if name in wanted:
                convert.append(_as_bytes)
            else:
                convert.append(_converter(ch_type))
        out = []
        for line in lines[2:]:
            if not line:
                continue
            values = json.loads(line.decode("utf-8", "surrogateescape"))
            out.append(
                {n: (c(v) if c is not None else v) for n, v, c in zip(names, values, convert, strict=True)}
            )
        return out

    def _schema(self, table: str) -> Any:
        import pyarrow as pa

        if table not in self._schemas:
            db, name = table.split(".", 1)
            rows = self.query(
                "SELECT name, type FROM system.columns "
                "WHERE database = {db:String} AND table = {name:String} ORDER BY position",
                {"db": db, "name": name},
            )
            if not rows:
                raise StoreError(f"chDB store {self.path}: no table {table}; run `dualtrack db migrate`")
            fields = []
            for r in rows:
                arrow_type, nullable = _arrow_type(r["type"])
                fields.append(pa.field(r["name"], arrow_type, nullable))
            self._schemas[table] = pa.schema(fields)
        return self._schemas[table]

    def _insert_columns(self, table: str, columns: Columns, rows: int) -> None:
        import pyarrow as pa

        schema = self._schema(table)
        fields = [schema.field(name) for name in columns]
        arrays = []
        for f in fields:
            values = columns[f.name]
            if pa.types.is_binary(f.type):
                values = [_encode(v) for v in values]
            arrays.append(pa.array(values, type=f.type))
        # chDB's Python() table function reads the local variable `data` by name
        data = pa.Table.from_arrays(arrays, schema=pa.schema(fields))  # noqa: F841
        names = ", ".join(f.name for f in fields)
        self._run(f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(data)")  # noqa: S608 - identifiers only

    def release_memory(self) -> None:
        with contextlib.suppress(StoreError):  # an engine built without jemalloc: nothing to give back
            self._run("SYSTEM JEMALLOC PURGE")

    def _release(self) -> None:
        if not self._lock.closed:
            self._lock.close()

    def close(self) -> None:
        session = getattr(self, "_session", None)
        if session is not None:
            session.close()
            self._session = None
        self._release()
