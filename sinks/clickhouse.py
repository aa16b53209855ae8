"""The server store: a ClickHouse server through clickhouse-driver (native protocol).

Writes retry with exponential backoff while the server is away, up to `retry_seconds`, so that an
outage delays results instead of dropping them; the server's error code is kept on StoreError.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from dualtrack.errors import StoreError
from sinks.base import Row, Store, parse_url, utc_naive

log = logging.getLogger(__name__)
T = TypeVar("T")


def _value(v: Any) -> Any:
    if isinstance(v, datetime) and v.tzinfo is not None:
        return utc_naive(v)
    return v


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
    ) -> None:
        super().__init__(database)
        from clickhouse_driver import Client

        self.address = f"{host}:{port}"
        self.retry_seconds = retry_seconds
        self._client = Client(
            host=host,
            port=port,
            user=user,
            password=password,
            secure=secure,
            connect_timeout=5,
            send_receive_timeout=60,
            settings={"use_numpy": False},
        )

    @classmethod
    def from_url(cls, url: str, retry_seconds: float = 600.0) -> ServerStore:
        return cls(**parse_url(url), retry_seconds=retry_seconds)

    def _call(self, what: str, fn: Callable[[], T], retry: bool = True) -> T:
        from clickhouse_driver import errors

        delay, deadline = 0.5, time.monotonic() + (self.retry_seconds if retry else 0)
        while True:
            try:
                return fn()
            except (errors.NetworkError, errors.SocketTimeoutError, EOFError, OSError) as err:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"ClickHouse server {self.address} unreachable ({err}); start it "
                        "(`dualtrack infra up`) or fix DUALTRACK_CLICKHOUSE_URL"
                    ) from None
                log.warning(
                    "ClickHouse %s unreachable (%s); retrying %s in %.1fs", self.address, err, what, delay
                )
                self._client.disconnect()
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
            except errors.Error as err:
                code = getattr(err, "code", None)
                first = str(getattr(err, "message", err)).strip().splitlines()[0][:500]
                raise StoreError(f"ClickHouse server {self.address}: {first}", code=code) from None

    def execute(self, sql: str) -> None:
        self._call("a statement", lambda: self._client.execute(sql))

    def query(self, sql: str) -> list[Row]:
        rows, cols = self._call("a query", lambda: self._client.execute(sql, with_column_types=True))
        names = [c[0] for c in cols]
        return [dict(zip(names, r, strict=True)) for r in rows]

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        data = [[_value(v) for v in r] for r in rows]
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        self._call("an insert", lambda: self._client.execute(sql, data))

    def close(self) -> None:
        self._client.disconnect()
