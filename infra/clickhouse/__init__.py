"""The ClickHouse server: Debian's clickhouse-server package, run with the project's config under var/."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from dualtrack.errors import InfraError
from infra.debian import apt_install
from infra.services import Service, fill

HERE = Path(__file__).resolve().parent
SERVER = "clickhouse-server"


def server_binary() -> str | None:
    return shutil.which(SERVER) or (f"/usr/sbin/{SERVER}" if Path(f"/usr/sbin/{SERVER}").exists() else None)


def install() -> str:
    """Install Debian's clickhouse-server package when it is missing (needs root and apt-get)."""
    return apt_install([SERVER], lambda: server_binary() is not None, "clickhouse-server")


class ClickHouse(Service):
    name = "clickhouse"
    startup_seconds = 60.0

    @property
    def ports(self) -> list[int]:
        return [self.settings.clickhouse_port, self.settings.clickhouse_http_port]

    def prepare(self) -> None:
        install()
        for sub in ("data", "tmp", "log", "user_files", "format_schemas"):
            (self.var / sub).mkdir(parents=True, exist_ok=True)
        values = {
            "VAR": str(self.var.parent),
            "NATIVE_PORT": str(self.settings.clickhouse_port),
            "HTTP_PORT": str(self.settings.clickhouse_http_port),
        }
        fill(HERE / "config.xml", self.var / "config.xml", values)
        fill(HERE / "users.xml", self.var / "users.xml", values)

    def command(self) -> list[str]:
        binary = server_binary()
        if binary is None:
            raise InfraError("clickhouse-server is not installed")
        return [binary, f"--config-file={self.var / 'config.xml'}"]

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.settings.clickhouse_http_port}/ping"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(r.read().strip() == b"Ok.")
        except OSError:
            return False
