"""Every panel's and alert rule's SQL, expanded as the plugin does, on the ClickHouse 18.16 server
over the replayed example, with the columns and types its panel expects."""

from __future__ import annotations

import pytest
from clickhouse_driver import Client

from sinks.base import parse_url
from tests.dashboard_cases import MAY_BE_EMPTY, cases, check, fill_health
from tests.helpers import example
from tests.integration.conftest import clickhouse_url, run_cli

CASES = cases()


@pytest.fixture(scope="module")
def grafana_connection(services, run_database):  # type: ignore[no-untyped-def]
    url = clickhouse_url(services, f"{run_database}_dash")
    import os

    env = dict(os.environ, DUALTRACK_CLICKHOUSE_URL=url)
    result = run_cli(["replay", str(example("province-small.jsonl"))], env)
    assert result.returncode == 0, result.stderr
    from sinks import open_store

    with open_store(url=url) as store:  # what the worker writes on its timer
        fill_health(store, example("province-small.jsonl"))
    p = parse_url(url)
    client = Client(
        host=p["host"], port=p["port"], database=p["database"], user=p["user"], password=p["password"]
    )  # as Grafana's datasource connects (test_security.py runs the panels as grafana_reader)
    yield client
    client.disconnect()


@pytest.mark.parametrize(("title", "sql", "columns"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_panel_sql_runs_on_the_server(grafana_connection: Client, title: str, sql: str, columns) -> None:  # type: ignore[no-untyped-def]
    rows, types = grafana_connection.execute(f"SELECT * FROM ({sql}) LIMIT 100", with_column_types=True)
    check([(name, t) for name, t in types], columns)
    if title not in MAY_BE_EMPTY and "SD0002" not in sql:
        assert rows, f"{title}: no rows over the example province"
