"""Issue 13 on the real services: `dualtrack infra up` starts a secured broker (SASL/SCRAM-SHA-512,
ACLs, and a SASL_SSL listener with a throw-away CA) and a ClickHouse 18.16 server with three users, on
free ports under a temporary var dir. A school writes its own topic and nothing else; the worker reads
every school and writes the deployment's other topics; Grafana's user reads and changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAuthorizationFailedError

from dualtrack.schools import ClientConfig, ensure_schools, list_schools, revoke_school, rotate_school
from foundation.errors import StoreError
from foundation.kafka_auth import faust_broker_credentials, kafka_client_options
from foundation.localsecrets import generated, secret
from foundation.settings import Settings
from infra.clickhouse import READER, WRITER, local_url
from sinks.base import parse_url
from sinks.clickhouse import ServerStore
from streams.topics import ensure_topics
from tests.dashboard_cases import cases
from tests.helpers import example, hire
from tests.integration.conftest import free_port, run_cli

PREFIX = "sec"
READONLY, DATABASE_ACCESS_DENIED = 164, 291  # ClickHouse 18.16's error codes


def _throwaway_ca(folder: Path) -> tuple[Path, Path, Path] | None:
    """(CA certificate, broker certificate for 127.0.0.1, its unencrypted PKCS#8 key), made with the
    openssl command; None without it."""
    if shutil.which("openssl") is None:
        return None
    ca_key, ca, key, csr, cert, ext = (folder / n for n in ("ca.key", "ca.pem", "broker.key", "broker.csr",
                                                            "broker.pem", "ext.cnf"))  # fmt: skip
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    for args in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=dualtrack test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days",
         "2", "-extfile", ext],
    ):  # fmt: skip
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    return ca, cert, key


@dataclass
class Secured:
    settings: Settings  # the administrator's machine: SASL_PLAINTEXT on the broker's plain port
    env: dict[str, str]  # the same as DUALTRACK_* variables, for the command line
    up_output: str
    ca: Path | None  # the throw-away CA, when openssl made one


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("secured")
    tls = _throwaway_ca(root)
    values = {
        "VAR_DIR": str(root / "var"), "STORE_PATH": str(root / "store"), "TOPIC_PREFIX": PREFIX,
        "KAFKA_PORT": str(free_port()), "KAFKA_CONTROLLER_PORT": str(free_port()),
        "KAFKA_TLS_PORT": str(free_port()), "CLICKHOUSE_PORT": str(free_port()),
        "CLICKHOUSE_HTTP_PORT": str(free_port()), "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    }  # fmt: skip
    values["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{values['KAFKA_PORT']}"
    if tls:
        values |= {"KAFKA_TLS_CERT_FILE": str(tls[1]), "KAFKA_TLS_KEY_FILE": str(tls[2])}
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALTRACK_")}
    env |= {f"DUALTRACK_{k}": v for k, v in values.items()}
    up = run_cli(["infra", "up"], env, timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        settings = Settings(**{k.lower(): v for k, v in values.items()})  # type: ignore[arg-type]
        yield Secured(settings, env, up.stdout + up.stderr, tls[0] if tls else None)
    finally:
        down = run_cli(["infra", "down"], env)
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="module")
def schools(secured: Secured) -> dict[str, ClientConfig]:
    return ensure_schools(secured.settings, ["SD0001", "SD0002"])


def _as(base: Settings, **update: Any) -> Settings:
    return base.model_copy(update=update)


def _logs_in(options: dict[str, Any]) -> bool:
    """Whether a client with these options gets past the broker's door (and lists what it may see)."""
    try:
        admin = KafkaAdminClient(**options, request_timeout_ms=3000, bootstrap_timeout_ms=3000)
    except KafkaError:
        return False
    try:
        admin.list_topics()
        return True
    except KafkaError:
        return False
    finally:
        admin.close()


def _producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(**kafka_client_options(settings), acks="all", enable_idempotence=True,
                         max_block_ms=10_000)  # fmt: skip


# --- the broker and its secrets --------------------------------------------------------------------------


def test_infra_up_prints_no_secret_and_keeps_its_files_private(secured: Secured) -> None:
    values = generated(secured.settings)
    assert len(values) == 7 and all(
        len(v) >= 24 for v in values
    )  # admin, worker, gateway, broker, 3 ClickHouse
    status = run_cli(["infra", "status"], secured.env)
    assert status.returncode == 0, status.stdout + status.stderr
    help_text = run_cli(["schools", "add", "--help"], secured.env).stdout
    for v in values:
        assert v not in secured.up_output + status.stdout + status.stderr + help_text
    var = Path(secured.settings.var_dir)
    for private in ("secrets.json", "kafka/server.properties", "clickhouse/users.xml"):
        assert stat.S_IMODE((var / private).stat().st_mode) == 0o600, private
    for folder in ("kafka", "clickhouse"):
        assert stat.S_IMODE((var / folder).stat().st_mode) == 0o700, folder
    users_xml = (var / "clickhouse" / "users.xml").read_text()
    assert not any(v in users_xml for v in values)  # SHA-256 only


def test_clients_without_a_valid_login_are_refused(secured: Secured) -> None:
    s = secured.settings
    assert _logs_in(kafka_client_options(s))  # the local worker, as a reference
    assert not _logs_in({"bootstrap_servers": s.kafka_bootstrap_servers, "security_protocol": "PLAINTEXT"})
    controller = f"127.0.0.1:{s.kafka_controller_port}"
    assert not _logs_in({"bootstrap_servers": controller, "security_protocol": "PLAINTEXT"})
    from pydantic import SecretStr

    stranger = _as(s, kafka_username="nobody", kafka_password=SecretStr("guess"))
    assert not _logs_in(kafka_client_options(stranger))
    wrong = _as(s, kafka_username="admin", kafka_password=SecretStr("not-the-password"))
    assert not _logs_in(kafka_client_options(wrong))


# --- schools ------------------------------------------------------------------------------------------------


def test_a_school_writes_its_own_topic_and_nothing_else(
    secured: Secured, schools: dict[str, ClientConfig]
) -> None:
    a, b = schools["SD0001"], schools["SD0002"]
    as_a = a.settings(secured.settings)
    producer = _producer(as_a)
    try:
        assert producer.send(a.topic, b"{}").get(10).topic == a.topic
        for foreign in (b.topic, f"{PREFIX}.accepted", f"{PREFIX}.intake"):
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(foreign, b"{}").get(10)
    finally:
        producer.close()
    admin = KafkaAdminClient(**kafka_client_options(as_a), request_timeout_ms=5000)
    try:
        assert admin.list_topics() == [a.topic]  # it cannot even see that other topics exist
    finally:
        admin.close()
    consumer = KafkaConsumer(**kafka_client_options(as_a), enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        consumer.assign([TopicPartition(a.topic, 0)])
        with pytest.raises(TopicAuthorizationFailedError):  # nor read back what it sent
            consumer.poll(timeout_ms=3000)
            consumer.poll(timeout_ms=3000)
    finally:
        consumer.close()


def test_produce_sends_a_schools_events_and_refuses_anothers_in_one_line(
    secured: Secured, schools: dict[str, ClientConfig], tmp_path: Path
) -> None:
    own, foreign = tmp_path / "own.jsonl", tmp_path / "foreign.jsonl"
    own.write_text(
        "".join(json.dumps(hire("SD0001", "2025-03-01T08:00:00+08:00", f"T{i}")) + "\n" for i in range(3))
    )
    foreign.write_text(json.dumps(hire("SD0002", "2025-03-01T08:00:00+08:00", "T9")) + "\n")
    env = secured.env | schools["SD0001"].environment()
    sent = run_cli(["produce", str(own)], env)
    assert sent.returncode == 0 and "sent 3" in sent.stdout, sent.stdout + sent.stderr
    refused = run_cli(["produce", str(foreign)], env)
    assert refused.returncode == 1
    assert refused.stdout == "" and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert f"refused user {PREFIX}.school.SD0001 writing to {PREFIX}.intake.SD0002" in refused.stderr
    assert str(schools["SD0001"].password) not in sent.stdout + sent.stderr + refused.stderr


def test_rotated_and_revoked_passwords_stop_working(secured: Secured) -> None:
    s = secured.settings
    first = ensure_schools(s, ["SD0003"])["SD0003"]
    connected = _producer(first.settings(s))
    try:
        connected.send(first.topic, b"{}").get(10)
        rotated = rotate_school(s, "SD0003")
        assert not _logs_in(kafka_client_options(first.settings(s)))
        assert _logs_in(kafka_client_options(rotated.settings(s)))
        revoked = revoke_school(s, "SD0003")
        assert "topic sec.intake.SD0003 and its events kept" in revoked
        assert not _logs_in(kafka_client_options(rotated.settings(s)))
        with pytest.raises(TopicAuthorizationFailedError):  # a connection made before: its ACLs are gone
            connected.send(first.topic, b"{}").get(10)
    finally:
        connected.close()
    [row] = [r for r in list_schools(s) if r.school_id == "SD0003"]
    assert row.has_topic and not row.has_user and row.acls == ()
    listed = run_cli(["schools", "list", "--format", "json"], secured.env)
    assert listed.returncode == 0, listed.stderr
    assert {r["school_id"] for r in json.loads(listed.stdout)} >= {"SD0001", "SD0002", "SD0003"}
    assert str(rotated.password) not in listed.stdout and str(first.password) not in listed.stdout


def test_the_cli_adds_a_school_once_and_names_the_fix(secured: Secured) -> None:
    added = run_cli(["schools", "add", "SD0004"], secured.env)
    assert added.returncode == 0, added.stderr
    assert (
        "security.protocol=SASL_PLAINTEXT" in added.stdout and '"topic": "sec.intake.SD0004"' in added.stdout
    )
    again = run_cli(["schools", "add", "SD0004"], secured.env)
    assert again.returncode == 1 and "schools rotate SD0004" in again.stderr
    bad = run_cli(["schools", "add", "SD 0004"], secured.env)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "letters" in bad.stderr


# --- the worker ---------------------------------------------------------------------------------------------


async def test_the_worker_reads_every_school_and_writes_the_other_topics(
    secured: Secured, schools: dict[str, ClientConfig]
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    worker = secured.settings  # no DUALTRACK_KAFKA_USERNAME: the local `worker`
    for config in schools.values():
        producer = _producer(config.settings(worker))
        producer.send(config.topic, config.school_id.encode()).get(10)
        producer.close()
    ensure_topics(worker)  # the app's own topics, created as the worker
    auth = credentials_to_aiokafka_auth(faust_broker_credentials(worker))  # exactly what Faust passes
    consumer = AIOKafkaConsumer(bootstrap_servers=worker.kafka_bootstrap_servers, group_id=f"{PREFIX}-worker",
                                auto_offset_reset="earliest", enable_auto_commit=False, **auth)  # fmt: skip
    consumer.subscribe(pattern=rf"^{PREFIX}\.intake\..+")
    await consumer.start()
    try:
        seen: set[bytes] = set()
        for _ in range(30):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                seen |= {r.value for r in records}
            if {b"SD0001", b"SD0002"} <= seen:
                break
        assert {b"SD0001", b"SD0002"} <= seen
        await consumer.commit()  # its consumer group
    finally:
        await consumer.stop()
    admin = KafkaAdminClient(**kafka_client_options(worker))
    try:
        admin.create_topics([NewTopic(f"{PREFIX}-worker-t-changelog", 1, 1)])  # as Faust declares its own
    finally:
        admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=worker.kafka_bootstrap_servers, **auth)
    await producer.start()
    try:
        for topic in (f"{PREFIX}.accepted", f"{PREFIX}.dead-letters", f"{PREFIX}-worker-t-changelog"):
            await producer.send_and_wait(topic, b"{}")
    finally:
        await producer.stop()
    forger = _producer(worker)
    try:
        with pytest.raises(TopicAuthorizationFailedError):  # the worker cannot speak for a school
            forger.send(schools["SD0001"].topic, b"{}").get(10)
    finally:
        forger.close()


def test_sasl_ssl_verifies_the_broker_with_the_given_ca(
    secured: Secured, schools: dict[str, ClientConfig]
) -> None:
    if secured.ca is None:
        pytest.skip("no openssl command: no throw-away CA, no TLS listener")
    tls = _as(schools["SD0001"].settings(secured.settings), kafka_security_protocol="SASL_SSL",
              kafka_bootstrap_servers=f"127.0.0.1:{secured.settings.kafka_tls_port}", kafka_ca_file=secured.ca)  # fmt: skip
    producer = _producer(tls)
    try:
        assert producer.send(schools["SD0001"].topic, b"{}").get(10).offset >= 0
    finally:
        producer.close()
    # the client's context refuses a broker its CA did not sign (the system's CAs know no test CA); checked
    # with the context itself, since kafka-python leaves a failed handshake's socket to the collector
    context = kafka_client_options(_as(tls, kafka_ca_file=None))["ssl_context"]
    port = secured.settings.kafka_tls_port
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1").close()


# --- ClickHouse -----------------------------------------------------------------------------------------------


def test_grafana_reader_runs_every_panel_and_changes_nothing(secured: Secured) -> None:
    s = secured.settings
    replayed = run_cli(["replay", str(example("province-small.jsonl"))],
                       secured.env | {"DUALTRACK_CLICKHOUSE_URL": local_url(s, WRITER)})  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr  # the writer migrates and writes its database
    p = parse_url(local_url(s, READER))
    grafana = Client(host=p["host"], port=p["port"], user=p["user"], password=p["password"],
                     database=p["database"])  # as the datasource connects  # fmt: skip
    try:
        for _, _title, sql, _ in cases():
            grafana.execute(f"SELECT * FROM ({sql}) LIMIT 1")
    finally:
        grafana.disconnect()
    reader = ServerStore.from_url(local_url(s, READER), retry_seconds=0)
    try:
        assert reader.query("SELECT count() AS n FROM dualtrack.school_status")[0]["n"] > 0
        for statement in ("ALTER TABLE dualtrack.school_status DELETE WHERE 1",
                          "ALTER TABLE dualtrack.school_status ADD COLUMN x UInt8",
                          "DROP TABLE dualtrack.school_status", "TRUNCATE TABLE dualtrack.events",
                          "CREATE TABLE dualtrack.x (x UInt8) ENGINE = Memory", "SET readonly = 0",
                          "SELECT * FROM url('http://127.0.0.1:1/', 'TSV', 'x String')"):  # fmt: skip
            with pytest.raises(StoreError) as refused:
                reader.execute(statement)
            assert refused.value.code == READONLY, statement
        with pytest.raises(StoreError) as refused:
            reader.insert("school_snapshots", [{"school_id": "SD0001"}])
        assert refused.value.code == READONLY
    finally:
        reader.close()


def test_the_writer_cannot_touch_another_database(secured: Secured) -> None:
    s = secured.settings
    admin = ServerStore.from_url(local_url(s, "default", "other"), retry_seconds=0)
    admin.execute("CREATE DATABASE IF NOT EXISTS other")
    admin.execute("CREATE TABLE IF NOT EXISTS other.t (x UInt8) ENGINE = MergeTree ORDER BY x")
    admin.close()
    writer = ServerStore.from_url(local_url(s, WRITER), retry_seconds=0)
    try:
        writer.migrate()  # its own database: fine
        for statement in ("SELECT * FROM other.t", "DROP TABLE other.t", "CREATE DATABASE other2",
                          "CREATE TABLE other.u (x UInt8) ENGINE = Memory", "DROP DATABASE other"):  # fmt: skip
            with pytest.raises(StoreError) as refused:
                writer.execute(statement)
            assert refused.value.code == DATABASE_ACCESS_DENIED, statement
    finally:
        writer.close()
    elsewhere = ServerStore.from_url(local_url(s, WRITER, "other"), retry_seconds=0)
    with pytest.raises(StoreError) as refused:
        elsewhere.migrate()
    assert refused.value.code == DATABASE_ACCESS_DENIED
    elsewhere.close()


def test_clickhouse_users_need_their_passwords_and_errors_never_show_them(secured: Secured) -> None:
    s = secured.settings
    for user in ("default", WRITER, READER):
        for password in ("", "a-wrong-Password-1"):
            store = ServerStore("127.0.0.1", s.clickhouse_port, "dualtrack", user=user, password=password,
                                retry_seconds=0)  # fmt: skip
            with pytest.raises(StoreError) as refused:
                store.query("SELECT 1")
            store.close()
            message = str(refused.value)
            assert "password" in message.lower() and len(message.splitlines()) == 1
            assert not (password and password in message)
            assert str(secret(s, "clickhouse_admin")) not in message
