"""The server store: a ClickHouse server through clickhouse-driver (native protocol).

Writes retry with exponential backoff while the server is away, up to `retry_seconds`, so that an
outage delays results instead of dropping them; the server's error code is kept on StoreError.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from foundation.errors import StoreError
from sinks.base import PARAM, Columns, Params, Row, Store, check_params, parse_url, utc

log = logging.getLogger(__name__)
T = TypeVar("T")


def _value(v: Any) -> Any:
    if isinstance(v, datetime) and v.tzinfo is not None:
        return utc(v).replace(tzinfo=None)
    return v


def _text(v: Any) -> Any:
    """A String value as text; bytes that are not UTF-8 keep their bytes through surrogateescape."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    if isinstance(v, list | tuple):
        return [_text(x) for x in v]
    return v


def _common(v: Any) -> Any:
    if isinstance(v, datetime):
        return utc(v)
    if isinstance(v, tuple):
        return [_common(x) for x in v]
    return _text(v)


def _driver_form(sql: str, params: Params | None) -> tuple[str, dict[str, Any] | None]:
    """The statement in clickhouse-driver's form: each `{name:Type}` place becomes `%(name)s`, which the
    driver fills with the value escaped for its Python type (a list as a tuple, for `IN`). The 18.16
    server has no server-side parameters; the driver's binding is the one both versions take."""
    bound = check_params(sql, params)
    if not bound:
        return sql, None
    text = PARAM.sub(lambda m: f"%({m.group(1)})s", sql.replace("%", "%%"))
    return text, {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in bound.items()}


class ServerStore(Store):
    kind = "server"

    def __init__(
        self,
        host: str,
        port: int,
        database: str,
        user: str = "default",
        password: str = "",
        secure: bool = False,
        retry_seconds: float = 600.0,
        insert_batch_rows: int = 50_000,
    ) -> None:
        super().__init__(database, insert_batch_rows)
        self.address = f"{host}:{port}"
        self.retry_seconds = retry_seconds
        self._connect: dict[str, Any] = {
            "host": host, "port": port, "user": user, "password": password, "secure": secure,
            "connect_timeout": 5, "send_receive_timeout": 60,
        }  # fmt: skip
        self._client = self._new_client(strings_as_bytes=False)
        self._bytes_client: Any = None

    def _new_client(self, strings_as_bytes: bool) -> Any:
        from clickhouse_driver import Client

        return Client(**self._connect, settings={"use_numpy": False, "strings_as_bytes": strings_as_bytes})

    @classmethod
    def from_url(cls, url: str, retry_seconds: float = 600.0, insert_batch_rows: int = 50_000) -> ServerStore:
        return cls(**parse_url(url), retry_seconds=retry_seconds, insert_batch_rows=insert_batch_rows)

    def _call(self, what: str, fn: Callable[[Any], T], client: Any = None) -> T:
        from clickhouse_driver import errors

        client = client or self._client
        delay, deadline = 0.5, time.monotonic() + self.retry_seconds
        while True:
            try:
                return fn(client)
            except (errors.NetworkError, errors.SocketTimeoutError, EOFError, OSError) as err:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"ClickHouse server {self.address} unreachable ({type(err).__name__}); start it "
                        "(`dualtrack infra up`) or fix DUALTRACK_CLICKHOUSE_URL"
                    ) from None
                log.warning("ClickHouse %s unreachable; retrying %s in %.1fs", self.address, what, delay)
                client.disconnect()
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
            except errors.Error as err:
                code = getattr(err, "code", None)
                first = str(getattr(err, "message", err)).strip().splitlines()[0][:500]
                raise StoreError(f"ClickHouse server {self.address}: {first}", code=code) from None

    def execute(self, sql: str, params: Params | None = None) -> None:
        text, bound = _driver_form(sql, params)
        self._call("a statement", lambda c: c.execute(text, bound))

    def query(self, sql: str, params: Params | None = None, binary: Iterable[str] = ()) -> list[Row]:
        text, bound = _driver_form(sql, params)
        wanted = set(binary)
        client = self._client
        if wanted:
            if self._bytes_client is None:
                self._bytes_client = self._new_client(strings_as_bytes=True)
            client = self._bytes_client
        rows, cols = self._call("a query", lambda c: c.execute(text, bound, with_column_types=True), client)
        names = [c[0] for c in cols]
        return [{n: (v if n in wanted else _common(v)) for n, v in zip(names, r, strict=True)} for r in rows]

    def _insert_columns(self, table: str, columns: Columns, rows: int) -> None:
        data = [[_value(v) for v in values] for values in columns.values()]
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        self._call("an insert", lambda c: c.execute(sql, data, columnar=True))

    def close(self) -> None:
        self._client.disconnect()
        if self._bytes_client is not None:
            self._bytes_client.disconnect()
