"""The libraries the worker, the stores and the CLI lean on are supported from the version CI tests: the
floor of each range in pyproject.toml is the version constraints.txt installs, so every CI run tests the
floor, and the ceiling is below their next minor release (docs/operations.md, "Supported versions")."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

import pytest

from tests.helpers import ROOT

FLOORED = ("faust-streaming", "aiokafka", "kafka-python", "typer", "clickhouse-driver", "chdb")


def _ranges() -> dict[str, tuple[str, str]]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    out = {}
    for d in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+),<([0-9.]+)", d)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))


@pytest.mark.parametrize("name", FLOORED)
def test_the_floor_is_what_ci_installs_and_runs(name: str) -> None:
    floor, ceiling = _ranges()[name]
    assert floor == _pins()[name] == version(name), name
    below = [int(x) for x in ceiling.split(".")]
    assert below[:2] > [int(x) for x in floor.split(".")][:2], f"{name}: the ceiling must admit the floor"
