"""The folders are the architecture: each package imports only the layers docs/architecture.md allows,
so the rules stay free of Kafka and ClickHouse and SQL stays in the sinks and dashboards."""

from __future__ import annotations

import ast
import re

import pytest

from tests.helpers import ROOT

#: the dualtrack modules every layer may build on: they import only each other
BASE = {"dualtrack.errors", "dualtrack.settings", "dualtrack.localsecrets", "dualtrack.kafka_auth"}
#: package -> the project packages (or modules) it may import
ALLOWED = {
    "schemas": {"schemas"},
    "rules": {"rules", "schemas", "dualtrack.errors"},
    "sinks": {"sinks", "schemas", "dualtrack.errors", "dualtrack.settings"},
    "streams": {"streams", "rules", "schemas", "sinks", "dualtrack.errors", "dualtrack.settings",
                "dualtrack.kafka_auth"},
    "dashboards": {"dashboards", "rules", "dualtrack.errors", "dualtrack.settings"},
    "infra": {"infra", "schemas", *BASE},
}  # fmt: skip
PROJECT = {"schemas", "rules", "sinks", "streams", "dashboards", "infra", "dualtrack", "benchmarks"}
_SQL = re.compile(r"\b(SELECT|INSERT INTO|CREATE TABLE|ALTER TABLE|DROP TABLE)\b")


def _imports(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m.split(".")[0] in PROJECT}


def _modules(package: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_its_layers(package: str) -> None:
    allowed = ALLOWED[package]
    wrong = {
        (path, m)
        for path in _modules(package)
        for m in _imports(path)
        if not any(m == a or m.startswith(a + ".") for a in allowed)
    }
    assert not wrong, f"imports across layers: {sorted(wrong)}"


@pytest.mark.parametrize("module", sorted(BASE))
def test_the_base_modules_import_only_each_other(module: str) -> None:
    """... and `schemas`, which imports nothing of the project (kafka_auth keeps national ID numbers out
    of topic and user names)."""
    assert {m for m in _imports(module.replace(".", "/") + ".py") if m.split(".")[0] != "schemas"} <= BASE


def test_sql_lives_only_in_sinks_and_dashboards() -> None:
    elsewhere = [
        path
        for package in ("schemas", "rules", "streams", "dualtrack", "infra")
        for path in _modules(package)
        if _SQL.search((ROOT / path).read_text(encoding="utf-8"))
    ]
    assert elsewhere == []
