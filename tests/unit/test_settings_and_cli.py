"""Settings documented once and in step; every command answers --help; bad input gives a clear error."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from dualtrack.cli import app
from foundation.settings import Settings
from tests.helpers import ROOT

runner = CliRunner()


def test_settings_doc_lists_exactly_the_settings() -> None:
    doc = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`DUALTRACK_([A-Z0-9_]+)`", doc))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUALTRACK_TOPIC_PREFIX", "run42")
    monkeypatch.setenv("DUALTRACK_CLICKHOUSE_URL", "clickhouse://127.0.0.1:9000/x")
    s = Settings()
    assert s.topic("intake") == "run42.intake" and s.clickhouse_url == "clickhouse://127.0.0.1:9000/x"
    assert Settings.model_fields["kafka_bootstrap_servers"].default == "127.0.0.1:9092"


def _commands(group, path=()):  # type: ignore[no-untyped-def]
    import typer.main

    click_group = typer.main.get_command(group) if not hasattr(group, "commands") else group
    for name, cmd in click_group.commands.items():
        yield (*path, name)
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*path, name))


COMMANDS = list(_commands(app))


def test_the_commands_the_readme_and_issues_name_exist() -> None:
    for cmd in [("replay",), ("report",), ("worker",), ("produce",), ("infra", "up"), ("infra", "down"),
                ("infra", "status"), ("db", "migrate"), ("schema", "export")]:  # fmt: skip
        assert cmd in COMMANDS


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_command_has_help(cmd: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_report_rejects_a_time_without_offset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["report", "--store", str(tmp_path), "--as-of", "2025-12-31T23:59:59"])
    assert result.exit_code != 0
    assert "offset" in result.output


def test_a_locked_store_names_the_problem(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sinks.embedded import EmbeddedStore

    with EmbeddedStore(tmp_path):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            message = pool.apply(_open_elsewhere, (str(tmp_path),))
    assert "in use by pid" in message and str(tmp_path) in message


def _open_elsewhere(path: str) -> str:
    from foundation.errors import StoreError
    from sinks.embedded import EmbeddedStore

    try:
        EmbeddedStore(__import__("pathlib").Path(path)).close()
    except StoreError as err:
        return str(err)
    return "opened"


def test_an_unreachable_server_names_the_fix() -> None:
    from foundation.errors import StoreError
    from sinks.clickhouse import ServerStore

    store = ServerStore("127.0.0.1", 1, "dualtrack", retry_seconds=0)
    with pytest.raises(StoreError, match=r"unreachable.*infra up"):
        store.query("SELECT 1")
