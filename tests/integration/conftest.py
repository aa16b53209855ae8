"""Session fixtures: the real Kafka broker and ClickHouse server, started (or reused) through infra/.

Each run gets its own ClickHouse database and each test its own topic prefix, so runs and tests never
see each other's data; what the session started, it stops.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from foundation.errors import ConfigError
from foundation.localsecrets import secret
from foundation.settings import Settings
from infra import all_services, up_all
from infra.clickhouse import local_url
from sinks.clickhouse import ServerStore
from tests.helpers import ROOT

CLI = [sys.executable, "-m", "dualtrack.cli"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session", autouse=True)
def no_data_folders_left_behind() -> Iterator[None]:
    """Workers keep Faust's data folder under DUALTRACK_VAR_DIR, never in the repository root."""
    before = set(ROOT.glob("*-data"))
    yield
    left = set(ROOT.glob("*-data")) - before
    assert not left, f"a worker left its data folder in the repository: {sorted(map(str, left))}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


def clickhouse_url(settings: Settings, database: str, create: bool = False) -> str:
    """The local server's administrator URL for one database, with the password of this machine's
    secrets (made now with `create`, for a server about to start); without credentials when there is
    none: a server these tests did not start, configured by whoever runs it."""
    try:
        secret(settings, "clickhouse_admin", create=create)
    except ConfigError:
        return f"clickhouse://127.0.0.1:{settings.clickhouse_port}/{database}"
    return local_url(settings, "default", database)


@pytest.fixture(scope="session")
def services() -> Iterator[Settings]:
    settings = Settings()
    started = []
    try:
        started = up_all(all_services(settings))
        yield settings
    finally:
        for svc in reversed(started):
            svc.down()


@pytest.fixture(scope="session")
def run_database(services: Settings) -> Iterator[str]:
    name = f"dt_test_{os.getpid()}_{int(time.time())}"
    yield name
    store = ServerStore.from_url(clickhouse_url(services, "default"), retry_seconds=5)
    for db in [
        r["name"] for r in store.query("SELECT name FROM system.databases") if r["name"].startswith(name)
    ]:
        store.execute(f"DROP DATABASE IF EXISTS {db}")
    store.close()


@pytest.fixture()
def server_url(services: Settings, run_database: str, request: pytest.FixtureRequest) -> str:
    """A database of its own for one test, inside the run's namespace."""
    suffix = uuid.uuid4().hex[:8]
    return clickhouse_url(services, f"{run_database}_{suffix}")


@pytest.fixture()
def topic_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def cli_env(services: Settings, server_url: str, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DUALTRACK_KAFKA_BOOTSTRAP_SERVERS": services.kafka_bootstrap_servers,
        "DUALTRACK_TOPIC_PREFIX": topic_prefix,
        "DUALTRACK_CLICKHOUSE_URL": server_url,
        "DUALTRACK_STORE_PATH": str(tmp_path / "store"),
        "DUALTRACK_SINK_RETRY_SECONDS": "120",
    })  # fmt: skip
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `dualtrack ARGS`; a command that outlives `timeout` is killed and reported with its output."""
    try:
        return subprocess.run(
            [*CLI, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as err:

        def text(b: bytes | str | None) -> str:
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")

        return subprocess.CompletedProcess(
            err.cmd, -9, text(err.stdout), f"timed out after {timeout}s; stderr:\n{text(err.stderr)}"
        )
