"""The folders are the architecture: each package imports only the layers docs/architecture.md allows,
directly and through the packages it imports, so the rules stay free of Kafka and ClickHouse, nothing
below the CLI reaches up into it, and SQL stays in the sinks and dashboards."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

import pytest

from tests.helpers import ROOT

#: package -> the project packages (or modules) it may import, bottom to top
ALLOWED = {
    "schemas": {"schemas"},
    "foundation": {"foundation", "schemas"},
    "rules": {"rules", "schemas", "foundation.errors", "foundation.urls", "foundation.configfile",
              "foundation.messages"},
    "sinks": {"sinks", "schemas", "foundation"},
    "dashboards": {"dashboards", "rules", "schemas", "foundation"},
    "infra": {"infra", "schemas", "foundation"},
    "streams": {"streams", "rules", "schemas", "sinks", "foundation"},
    "documents": {"documents", "streams", "rules", "schemas", "sinks", "dashboards", "foundation"},
    "gateway": {"gateway", "streams", "rules", "schemas", "sinks", "foundation"},
}  # fmt: skip
PROJECT = {"schemas", "foundation", "rules", "sinks", "streams", "dashboards", "infra", "documents", "dualtrack",
           "benchmarks", "gateway"}  # fmt: skip
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


def test_sql_lives_only_in_sinks_and_dashboards() -> None:
    elsewhere = [
        path
        for package in ("schemas", "foundation", "rules", "streams", "documents", "dualtrack", "infra")
        for path in _modules(package)
        if _SQL.search((ROOT / path).read_text(encoding="utf-8"))
    ]
    assert elsewhere == []


def _sql_fstrings(path: str) -> Iterator[ast.JoinedStr]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            if _SQL.search(text) or re.search(r"\b(FROM|WHERE|DELETE)\b", text):
                yield node


def _identifier(node: ast.expr) -> bool:
    """What an f-string of SQL may interpolate: a name or attribute (a table from `Store.table`, a
    fragment of constants), `x.table(...)`, or `", ".join(...)` of column names."""
    if isinstance(node, ast.Name | ast.Attribute):
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("table", "join")
    )


def test_no_value_is_formatted_into_sql() -> None:
    """Values are bound by the driver (`{name:Type}` places, `sinks.base.PARAM`): the statements the
    sinks build interpolate only identifiers, never a call that makes a literal (a number, a time, a
    quoted string)."""
    wrong = [
        (path, node.lineno, ast.unparse(v.value))
        for path in _modules("sinks")
        for node in _sql_fstrings(path)
        for v in node.values
        if isinstance(v, ast.FormattedValue) and not _identifier(v.value)
    ]
    assert wrong == []
    assert "quoted(" not in "".join((ROOT / p).read_text(encoding="utf-8") for p in _modules("sinks"))


def _package_graph() -> dict[str, set[str]]:
    """package -> the project packages its modules import (any import, at any depth of a function)."""
    return {
        package: {m.split(".")[0] for path in _modules(package) for m in _imports(path)} - {package}
        for package in sorted(ALLOWED)
    }


def test_the_layers_hold_through_indirect_imports_and_form_no_circle() -> None:
    """What a package reaches through the packages it imports is within its layers too: `streams` cannot
    reach the CLI through a base module, and no two packages import each other."""
    graph = _package_graph()
    for package in graph:
        reached: set[str] = set()
        todo = list(graph[package])
        while todo:
            nxt = todo.pop()
            if nxt in reached:
                continue
            reached.add(nxt)
            todo += graph.get(nxt, set())
        allowed = {a.split(".")[0] for a in ALLOWED[package]}
        assert package not in reached, f"{package} imports itself through {sorted(reached)}"
        assert reached <= allowed, (package, sorted(reached - allowed))
