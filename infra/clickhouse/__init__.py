"""The ClickHouse server: Debian's clickhouse-server package, run with the project's config under var/,
with three password-protected users (users.xml): `default` (administrator), `dualtrack_writer` (the
worker, its database only) and `grafana_reader` (read-only, the dualtrack database only)."""

from __future__ import annotations

import hashlib
import re
import shutil
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from foundation.errors import InfraError
from foundation.localsecrets import secret
from foundation.settings import Settings
from infra.debian import apt_install
from infra.services import Service, fill

HERE = Path(__file__).resolve().parent
SERVER = "clickhouse-server"


def server_binary() -> str | None:
    return shutil.which(SERVER) or (f"/usr/sbin/{SERVER}" if Path(f"/usr/sbin/{SERVER}").exists() else None)


def install() -> str:
    """Install Debian's clickhouse-server package when it is missing (needs root and apt-get)."""
    return apt_install([SERVER], lambda: server_binary() is not None, "clickhouse-server")


WRITER = "dualtrack_writer"
READER = "grafana_reader"
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def database(settings: Settings) -> str:
    """The database the writer and the reader may use: DUALTRACK_CLICKHOUSE_URL's, else `dualtrack`."""
    name = urlparse(settings.clickhouse_url or "").path.strip("/") or "dualtrack"
    if not _DATABASE.fullmatch(name):
        raise InfraError(f"DUALTRACK_CLICKHOUSE_URL names the database {name!r}: use letters, digits and _")
    return name


def user_values(settings: Settings) -> dict[str, str]:
    """users.xml's values: the database and each user's password as SHA-256 (made once when unset)."""

    def sha256(name: str) -> str:
        return hashlib.sha256(secret(settings, name, create=True).encode()).hexdigest()

    return {
        "DATABASE": database(settings), "ADMIN_SHA256": sha256("clickhouse_admin"),
        "WRITER_SHA256": sha256("clickhouse_writer"), "READER_SHA256": sha256("clickhouse_reader"),
    }  # fmt: skip


def local_url(settings: Settings, user: str = "default", db: str | None = None) -> str:
    """`clickhouse://user:password@127.0.0.1:port/db` for one of the local server's users (tests, tools)."""
    from urllib.parse import quote

    name = {"default": "clickhouse_admin", WRITER: "clickhouse_writer", READER: "clickhouse_reader"}[user]
    password = quote(secret(settings, name), safe="")
    return f"clickhouse://{user}:{password}@127.0.0.1:{settings.clickhouse_port}/{db or database(settings)}"


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
        fill(HERE / "users.xml", self.var / "users.xml", values | user_values(self.settings))

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
