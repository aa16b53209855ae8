"""No secret in the repository, in `--help`, or in Grafana's provisioning; Grafana reads as the
read-only user, granted (on current ClickHouse) exactly the tables the dashboards read."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from dualtrack.cli import app
from foundation.settings import Settings
from tests.helpers import PASSWORD, ROOT


def test_help_shows_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, field in Settings.model_fields.items():
        if field.annotation is not None and "SecretStr" in str(field.annotation):
            monkeypatch.setenv(f"DUALTRACK_{name.upper()}", PASSWORD)
    monkeypatch.setenv("DUALTRACK_CLICKHOUSE_URL", f"clickhouse://u:{PASSWORD}@h/db")
    monkeypatch.setenv("GRAFANA_TOKEN", PASSWORD)
    from tests.unit.test_settings_and_cli import COMMANDS

    for cmd in [(), *COMMANDS]:
        result = CliRunner().invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0 and PASSWORD not in result.output, cmd


def _dashboard_tables() -> set[str]:
    from dashboards.catalog import dashboards
    from rules.limits import load_rules
    from tests.dashboard_cases import cases

    sql = [c[2] for c in cases()]
    sql += [v.get("query", "") for d in dashboards(load_rules()) for v in d.to_json()["templating"]["list"]]
    found = set()
    for text in sql:
        found |= set(re.findall(r"(?<!ARRAY )\b(?:FROM|JOIN)\s+([a-z_]+)", str(text)))
    return found


def test_compose_grants_grafana_exactly_the_tables_the_dashboards_read() -> None:
    xml = (ROOT / "infra" / "clickhouse" / "compose-users.xml").read_text()
    reader = xml.split("<grafana_reader>")[1].split("</grafana_reader>")[0]
    granted = set(re.findall(r"GRANT SELECT ON dualtrack\.(\w+)", reader))
    assert granted == _dashboard_tables()
    assert "<readonly>1</readonly>" in xml and 'from_env="CLICKHOUSE_READER_PASSWORD"' in reader


def test_grafana_queries_as_the_reader_with_a_password_from_the_environment() -> None:
    ds = yaml.safe_load((ROOT / "infra/grafana/provisioning/datasources/clickhouse.yaml").read_text())[
        "datasources"
    ][0]
    assert ds["jsonData"]["username"] == "grafana_reader" and "password" not in ds["jsonData"]
    assert ds["secureJsonData"]["password"].startswith("$")
    compose = yaml.safe_load((ROOT / "infra/docker-compose.yml").read_text())["services"]
    assert compose["grafana"]["environment"]["CLICKHOUSE_READER_PASSWORD"].startswith("${DUALTRACK_")
    worker_url = compose["worker"]["environment"]["DUALTRACK_CLICKHOUSE_URL"]
    assert worker_url.startswith("clickhouse://dualtrack_writer:${DUALTRACK_CLICKHOUSE_WRITER_PASSWORD")


def test_no_password_is_committed() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    # a quoted value after a password-like key: "password": "...", password="...", secret: '...'
    pattern = re.compile(r"""(password|passwd|secret)\w*["']?\s*[:=]\s*["']([^"'\s${}]{12,})["']""", re.I)
    found = []
    for name in tracked.splitlines():
        path = ROOT / name
        if path.suffix not in {
            ".py",
            ".yml",
            ".yaml",
            ".xml",
            ".properties",
            ".md",
            ".toml",
            ".json",
        } or name.startswith("tests/"):
            continue
        for m in pattern.finditer(path.read_text(encoding="utf-8", errors="replace")):
            found.append((name, m.group(0)))
    assert found == []


@pytest.mark.parametrize("path", ["var/secrets.json", "infra/.env", ".env"])
def test_files_of_secrets_are_never_tracked(path: str) -> None:
    assert subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False).returncode == 0
