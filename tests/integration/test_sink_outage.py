"""The server sink with the server stopped and restarted in the middle of a stream of batches:
writes wait and retry, and afterwards every row is there exactly once (read with FINAL)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from foundation.settings import Settings
from infra.clickhouse import ClickHouse
from infra.services import port_open
from sinks.clickhouse import ServerStore
from sinks.eventlog import EventLog
from tests.helpers import accepted, hire
from tests.integration.conftest import clickhouse_url, free_port


def test_writes_survive_a_server_outage_without_loss_or_doubles(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    native, http = free_port(), free_port()
    settings = Settings(var_dir=tmp_path / "var", clickhouse_port=native, clickhouse_http_port=http)
    server = ClickHouse(settings)
    assert " started " in server.up()
    try:
        store = ServerStore.from_url(clickhouse_url(settings, "outage"), retry_seconds=90)
        store.migrate()
        batches, size = 16, 50
        log = EventLog(store)
        batches_of_events = [
            [accepted(hire("SD1", "2025-01-01T08:00:00+08:00", f"T{b}-{i}")) for i in range(size)]
            for b in range(batches)
        ]
        written: list[int] = []
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                for b, batch in enumerate(batches_of_events):
                    log.append(batch, datetime.now(UTC))
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
