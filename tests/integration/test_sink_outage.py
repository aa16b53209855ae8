"""The server sink with the server stopped and restarted in the middle of a stream of batches:
writes wait and retry, and afterwards every row is there exactly once (read with FINAL)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from dualtrack.history import event_row
from dualtrack.settings import Settings
from infra.clickhouse import ClickHouse
from infra.services import port_open
from sinks.clickhouse import ServerStore
from tests.helpers import accepted, hire


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_writes_survive_a_server_outage_without_loss_or_doubles(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    native, http = _free_port(), _free_port()
    server = ClickHouse(Settings(var_dir=tmp_path / "var", clickhouse_port=native, clickhouse_http_port=http))
    assert " started " in server.up()
    try:
        store = ServerStore("127.0.0.1", native, "outage", retry_seconds=90)
        store.migrate()
        batches, size = 16, 50
        rows = [
            [event_row(accepted(hire("SD1", "2025-01-01T08:00:00+08:00", f"T{b}-{i}")), datetime.now(UTC))
             for i in range(size)]
            for b in range(batches)
        ]  # fmt: skip
        written: list[int] = []
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                for b, batch in enumerate(rows):
                    store.insert("events", batch)
                    written.append(b)
                    time.sleep(0.15)
            except BaseException as err:
                errors.append(err)

        thread = threading.Thread(target=writer)
        thread.start()
        while len(written) < 4:
            time.sleep(0.05)
        server.down()  # the server goes away mid-stream
        assert not port_open(native)
        time.sleep(2)
        during = len(written)
        assert " started " in server.up()
        thread.join(timeout=120)
        assert not errors, errors
        assert during < batches, "the outage came too late to test anything"
        total = store.query("SELECT count() AS n FROM outage.events FINAL")[0]["n"]
        distinct = store.query("SELECT uniqExact(event_id) AS n FROM outage.events")[0]["n"]
        assert total == distinct == batches * size
        store.close()
    finally:
        server.down()
