"""The Kafka broker: a pinned release's jars from Maven Central, KRaft storage, one combined node."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from dualtrack.errors import InfraError
from infra.services import Service, fill, port_open

HERE = Path(__file__).resolve().parent
LIB = HERE / "lib"


def kafka_version() -> str:
    m = re.search(r"<kafka.version>([^<]+)</kafka.version>", (HERE / "pom.xml").read_text())
    if m is None:
        raise InfraError("infra/kafka/pom.xml names no <kafka.version>")
    return m.group(1)


def fetch() -> str:
    """Download the broker's jars once (cached in infra/kafka/lib, git-ignored)."""
    version = kafka_version()
    marker = LIB / ".complete"
    if marker.exists() and marker.read_text().strip() == version:
        return f"kafka {version} jars already in {LIB}"
    if shutil.which("java") is None:
        raise InfraError(
            "java not found: Kafka needs Java 17 or later (Debian: apt-get install openjdk-17-jdk)"
        )
    if shutil.which("mvn") is None:
        raise InfraError("mvn not found: install Maven to fetch Kafka's jars (Debian: apt-get install maven)")
    result = subprocess.run([str(HERE / "fetch.sh")], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise InfraError(
            f"fetching Kafka {version} from Maven Central failed: {' | '.join(tail)}; check the network "
            "or the Maven settings and run `dualtrack infra up` again (nothing was started)"
        )
    return f"kafka {version} jars fetched into {LIB}"


class Kafka(Service):
    name = "kafka"

    @property
    def ports(self) -> list[int]:
        return [self.settings.kafka_port, self.settings.kafka_controller_port]

    @property
    def properties(self) -> Path:
        return self.var / "server.properties"

    def prepare(self) -> None:
        fetch()
        fill(HERE / "server.properties", self.properties, {
            "PORT": str(self.settings.kafka_port),
            "CONTROLLER_PORT": str(self.settings.kafka_controller_port),
            "VAR": str(self.var.parent),
        })  # fmt: skip
        if not (self.var / "data" / "meta.properties").exists():
            cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            result = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "--standalone", "-t", cluster, "-c",
                           str(self.properties)),
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise InfraError(f"formatting Kafka's KRaft storage failed: {result.stderr.strip()[-500:]}")

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.var}", f"-Dlog4j2.configurationFile={HERE / 'log4j2.xml'}",
            "-cp", f"{LIB}/*", main, *args,
        ]  # fmt: skip

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.properties))

    def ready(self) -> bool:
        if not port_open(self.settings.kafka_port):
            return False
        try:
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(
                bootstrap_servers=f"127.0.0.1:{self.settings.kafka_port}", request_timeout_ms=3000,
                bootstrap_timeout_ms=3000, client_id="dualtrack-infra",
            )  # fmt: skip
            try:
                admin.list_topics()
            finally:
                admin.close()
            return True
        except Exception:
            return False
