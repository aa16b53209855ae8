"""Nothing happens at import: importing every module of the project opens no file and reads no
environment variable, so tools and tests import freely and settings are read where a command starts."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT

PACKAGES = (
    "foundation",
    "dualtrack",
    "documents",
    "rules",
    "schemas",
    "streams",
    "sinks",
    "dashboards",
    "infra",
    "benchmarks",
)

# Runs in a fresh interpreter: the project's third-party dependencies are imported first (what they do
# at import is theirs), then an audit hook and a recording environment watch every project module's
# import.
_PROBE = r"""
import builtins, importlib, json, os, pkgutil, sys
for dep in ("faust", "aiokafka", "kafka", "kafka.admin", "clickhouse_driver", "chdb", "pydantic",
            "pydantic_settings", "typer", "typer.main", "rich.console", "yaml", "grafana_client",
            "pyarrow", "hypothesis", "jsonschema", "urllib.request", "http.server"):
    importlib.import_module(dep)
root = sys.argv[1]
packages = json.loads(sys.argv[2])
modules = []
for pkg in packages:
    mod = importlib.import_module(pkg)
    modules.append(pkg)
    modules += [m.name for m in pkgutil.walk_packages(mod.__path__, pkg + ".")]
for name in list(sys.modules):
    if name.split(".")[0] in packages:
        del sys.modules[name]
opened, read = [], []

def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        path = os.fsdecode(args[0])
        if path.startswith(root) and not path.endswith((".py", ".pyc")) and "__pycache__" not in path:
            opened.append(path)

class Recording(dict):
    def __getitem__(self, key):
        read.append(key)
        return super().__getitem__(key)
    def get(self, key, default=None):
        read.append(key)
        return super().get(key, default)
    def __contains__(self, key):
        read.append(key)
        return super().__contains__(key)
    def __iter__(self):
        read.append("<all>")
        return super().__iter__()

sys.addaudithook(hook)
os.environ = Recording(os.environ)
for name in modules:
    importlib.import_module(name)
print(json.dumps({"modules": modules, "opened": opened, "read": read}))
"""


def test_importing_every_module_opens_no_file_and_reads_no_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT), json.dumps(PACKAGES)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(found["modules"]) > 40  # every package was walked
    assert found["opened"] == [], f"files opened at import: {found['opened']}"
    # pydantic looks up PYDANTIC_DISABLE_PLUGINS whenever a validator is built: its own switch, not ours
    settings = [k for k in found["read"] if k != "PYDANTIC_DISABLE_PLUGINS"]
    assert settings == [], f"environment read at import: {settings}"
