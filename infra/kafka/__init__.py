"""The Kafka brokers: a pinned release's jars from Maven Central, KRaft storage, one combined node or a
quorum of N (`infra up --brokers N`: each node its own process, ports and data folder), secured with
SASL/SCRAM-SHA-512 logins and ACLs unless DUALTRACK_KAFKA_SECURITY_PROTOCOL=PLAINTEXT."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from foundation.errors import InfraError
from foundation.kafka_auth import ADMIN, BROKER, kafka_admin_options, secured
from foundation.localsecrets import secret, secrets_file
from foundation.settings import Settings
from infra.services import Service, port_open, write_private

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


def _scram(user: str, password: str, iterations: int = 8192) -> str:
    """A StorageTool `--add-scram` value with the salted password, so that any password's characters
    pass (the clear one would have to survive the tool's own quoting)."""
    salt = os.urandom(24)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return (
        f'SCRAM-SHA-512=[name={user},iterations={iterations},salt="{b64(salt).decode()}",'
        f'saltedpassword="{b64(salted).decode()}"]'
    )


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


#: ports of broker N are the settings' ports plus this times N - 1
PORT_STEP = 10


def port_of(base: int, node: int) -> int:
    return base + PORT_STEP * (node - 1)


def nodes_present(settings: Settings) -> int:
    """How many brokers have a folder under the var dir (node 1's is `kafka`, node N's `kafka-N`)."""
    var = Path(settings.var_dir).resolve()
    return max([1] + [n for n in range(2, 6) if (var / f"kafka-{n}").is_dir()])


def bootstrap_servers(settings: Settings, brokers: int) -> str:
    """The client address of every local broker, for DUALTRACK_KAFKA_BOOTSTRAP_SERVERS."""
    return ",".join(f"127.0.0.1:{port_of(settings.kafka_port, n)}" for n in range(1, brokers + 1))


def render_properties(
    settings: Settings,
    var: Path,
    broker_password: str,
    keystore: Path | None,
    node: int = 1,
    brokers: int = 1,
    data: Path | None = None,
) -> str:
    """server.properties of broker `node` of `brokers` for these settings: the secured template, or with
    open.properties' lines in place of its security lines when the protocol is PLAINTEXT."""
    controller = port_of(settings.kafka_controller_port, node)
    if brokers == 1:  # a quorum of one, which formats itself (`--standalone`)
        quorum = f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}"
    else:  # a fixed quorum of every node (each formats with the same cluster id)
        ports = [port_of(settings.kafka_controller_port, n) for n in range(1, brokers + 1)]
        voters = ",".join(f"{n}@127.0.0.1:{port}" for n, port in enumerate(ports, start=1))
        quorum = f"controller.quorum.voters={voters}"
    factor = min(3, brokers)
    values = {
        "NODE": str(node), "QUORUM": quorum,
        "PORT": str(port_of(settings.kafka_port, node)), "CONTROLLER_PORT": str(controller),
        "DATA": str(data or var / "kafka" / "data"), "BROKER_PASSWORD": broker_password,
        "RF": str(factor), "MIN_ISR": "2" if factor == 3 else "1",
        "TLS_LISTENER": f",SASL_SSL://127.0.0.1:{port_of(settings.kafka_tls_port, node)}" if keystore else "",
        "TLS": "" if keystore else "# ", "TLS_KEYSTORE": str(keystore or ""),
    }  # fmt: skip

    def fill(text: str) -> str:
        for k, v in values.items():
            text = text.replace("${" + k + "}", v)
        return text

    text = fill((HERE / "server.properties").read_text(encoding="utf-8"))
    if secured(settings):
        return text
    overrides = _properties(fill((HERE / "open.properties").read_text(encoding="utf-8")))
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0] if "=" in line and not line.startswith("#") else None
        if key in overrides:
            if overrides[key]:
                lines.append(f"{key}={overrides[key]}")
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


class Kafka(Service):
    name = "kafka"

    def __init__(self, settings: Settings, node: int = 1, brokers: int = 1) -> None:
        self.node, self.brokers = node, brokers
        self.name = "kafka" if node == 1 else f"kafka-{node}"
        super().__init__(settings)

    @property
    def port_setting(self) -> str:
        return "DUALTRACK_KAFKA_PORT" + (
            f" (node {self.node} listens on it + {PORT_STEP * (self.node - 1)})" if self.node > 1 else ""
        )

    @property
    def tls(self) -> bool:
        """Whether the broker opens its SASL_SSL listener (both TLS files given, and secured)."""
        cert, key = self.settings.kafka_tls_cert_file, self.settings.kafka_tls_key_file
        if (cert is None) != (key is None):
            raise InfraError(
                "set both DUALTRACK_KAFKA_TLS_CERT_FILE and DUALTRACK_KAFKA_TLS_KEY_FILE, or neither"
            )
        return cert is not None and secured(self.settings)

    @property
    def ports(self) -> list[int]:
        s, n = self.settings, self.node
        tls = [port_of(s.kafka_tls_port, n)] if self.tls else []
        return [port_of(s.kafka_port, n), port_of(s.kafka_controller_port, n), *tls]

    @property
    def properties(self) -> Path:
        return self.var / "server.properties"

    @property
    def local(self) -> Settings:
        """The settings for talking to this broker as its administrator: its SASL_PLAINTEXT (or
        PLAINTEXT) listener on 127.0.0.1, whatever the clients' protocol."""
        return self.settings.model_copy(update={
            "kafka_bootstrap_servers": f"127.0.0.1:{port_of(self.settings.kafka_port, self.node)}",
            "kafka_security_protocol": "SASL_PLAINTEXT" if secured(self.settings) else "PLAINTEXT",
        })  # fmt: skip

    def _keystore(self) -> Path | None:
        """The TLS certificate chain and key in one PEM file (Kafka's PEM key store), owner-only."""
        if not self.tls:
            return None
        cert, key = Path(str(self.settings.kafka_tls_cert_file)), Path(str(self.settings.kafka_tls_key_file))
        try:
            pem = key.read_text(encoding="ascii") + "\n" + cert.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as err:
            raise InfraError(f"cannot read the broker's TLS files: {type(err).__name__}") from None
        if "BEGIN PRIVATE KEY" not in pem or "BEGIN CERTIFICATE" not in pem:
            raise InfraError(
                "DUALTRACK_KAFKA_TLS_KEY_FILE must be an unencrypted PKCS#8 PEM key (BEGIN PRIVATE KEY) and "
                "DUALTRACK_KAFKA_TLS_CERT_FILE a PEM certificate chain"
            )
        target = self.var / "tls" / "keystore.pem"
        write_private(target, pem)
        return target

    def prepare(self) -> None:
        fetch()
        secure = secured(self.settings)
        if self.settings.kafka_security_protocol == "SASL_SSL" and not self.tls:
            raise InfraError(
                "DUALTRACK_KAFKA_SECURITY_PROTOCOL=SASL_SSL: the local broker needs "
                "DUALTRACK_KAFKA_TLS_CERT_FILE and DUALTRACK_KAFKA_TLS_KEY_FILE for its TLS listener"
            )
        broker = secret(self.settings, "kafka_broker", create=True) if secure else ""
        text = render_properties(self.settings, self.var.parent, broker, self._keystore(), self.node,
                                 self.brokers, self.var / "data")  # fmt: skip
        write_private(self.properties, text)
        marker = self.var / "users-created"  # the storage was formatted with the admin and broker users
        quorum = self.var / "quorum"  # how many brokers the storage was formatted for
        if (self.var / "data" / "meta.properties").exists():
            formatted_for = int(quorum.read_text()) if quorum.exists() else 1
            if formatted_for != self.brokers:
                raise InfraError(
                    f"Kafka's storage in {self.var / 'data'} belongs to a cluster of {formatted_for} "
                    f"broker(s), not {self.brokers}: run `dualtrack infra up --brokers {formatted_for}`, or "
                    "`infra down` and remove the var/kafka* folders (their topics go with them)"
                )
            if secure and not marker.exists():
                raise InfraError(
                    f"Kafka's storage in {self.var / 'data'} was formatted without users (for PLAINTEXT), so "
                    "no one could log in to it: remove that folder (its topics go with it) or set "
                    "DUALTRACK_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"
                )
            return
        cluster = self._cluster_id()
        users = []
        if secure:
            admin = secret(self.settings, "kafka_admin", create=True)
            users = ["--add-scram", _scram(ADMIN, admin), "--add-scram", _scram(BROKER, broker)]
        result = subprocess.run(
            # `--cluster-id=`: an id may start with "-", which the tool would read as an option
            self._java("kafka.tools.StorageTool", "format", *(["--standalone"] if self.brokers == 1 else []),
                       f"--cluster-id={cluster}", "-c", str(self.properties), *users),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise InfraError(f"formatting Kafka's KRaft storage failed: {result.stderr.strip()[-500:]}")
        if secure:
            marker.write_text("admin broker\n")
        quorum.write_text(f"{self.brokers}\n")

    def _cluster_id(self) -> str:
        """A new cluster's id; the nodes of one quorum share it (kept beside their folders)."""
        if self.brokers == 1:
            return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        file = self.var.parent / f"kafka-cluster-{self.brokers}.id"
        if not file.exists():
            write_private(file, base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode())
        return file.read_text().strip()

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.var}", f"-Dlog4j2.configurationFile={HERE / 'log4j2.xml'}",
            "-cp", f"{LIB}/*", main, *args,
        ]  # fmt: skip

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.properties))

    def up(self, wait: bool = True) -> str:
        """Start the broker; when secured and ours, also make sure the `worker` user and its ACLs for
        this topic prefix exist (idempotent; node 1 does it for the quorum). Prints no password."""
        message = super().up(wait)
        if wait:
            message += self.logins()
        return message

    def logins(self) -> str:
        """Once the broker answers: the worker's user and ACLs (node 1 makes them for the quorum)."""
        message = ""
        if self.node == 1 and secured(self.settings) and self.pid() is not None:
            from infra.kafka.acls import ensure_gateway, ensure_worker

            ensure_worker(self.local)
            ensure_gateway(self.local)
            message = (
                f"; SASL/SCRAM logins, ACLs for topic prefix {self.settings.topic_prefix!r}; users admin, "
                f"worker and gateway (passwords: the settings or {secrets_file(self.settings)})"
            )
        return message

    def not_ready_hint(self) -> str:
        if secured(self.settings) and port_open(self.ports[0]):
            return (
                " (the port answers but the admin login fails: was the storage formatted with another "
                f"admin password? see DUALTRACK_KAFKA_ADMIN_PASSWORD and {secrets_file(self.settings)})"
            )
        return ""

    def admin_options(self) -> dict[str, Any]:
        return kafka_admin_options(self.local)

    def ready(self) -> bool:
        if not port_open(self.ports[0]):
            return False
        try:
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(
                **self.admin_options(), request_timeout_ms=3000, bootstrap_timeout_ms=3000,
                client_id="dualtrack-infra",
            )  # fmt: skip
            try:
                admin.list_topics()
            finally:
                admin.close()
            return True
        except Exception:
            return False
