"""infra/docker-compose.yml cannot run here (no Docker engine); this keeps it consistent with the local
scripts and settings: same ports, the same Kafka release, KRaft like server.properties, provisioning."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from foundation.settings import Settings
from infra.kafka import kafka_version
from tests.helpers import ROOT

COMPOSE = yaml.safe_load((ROOT / "infra" / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DEFAULTS = Settings.model_fields


def host_ports(service: str) -> set[int]:
    return {int(p.split(":")[-2]) for p in SERVICES[service]["ports"]}


def test_ports_are_published_on_this_machine_only() -> None:
    for service in SERVICES.values():
        for p in service.get("ports", []):
            assert p.startswith("127.0.0.1:"), p


def test_services_present() -> None:
    assert {"kafka", "clickhouse", "grafana", "worker"} <= set(SERVICES)


def test_ports_match_the_local_scripts_and_settings() -> None:
    assert host_ports("kafka") == {DEFAULTS["kafka_port"].default}
    assert DEFAULTS["kafka_bootstrap_servers"].default.endswith(f":{DEFAULTS['kafka_port'].default}")
    assert host_ports("clickhouse") == {
        DEFAULTS["clickhouse_port"].default,
        DEFAULTS["clickhouse_http_port"].default,
    }
    props = (ROOT / "infra" / "kafka" / "server.properties").read_text()
    assert "SASL_PLAINTEXT://127.0.0.1:${PORT}" in props
    # compose's Kafka is still open (docs/security.md): its worker says so instead of trying to log in
    assert "PLAINTEXT://127.0.0.1:9092" in SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert SERVICES["worker"]["environment"]["DUALTRACK_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"


def test_kafka_release_and_kraft_roles_match(tmp_path: Path) -> None:
    from infra.kafka import render_properties
    from tests.helpers import PASSWORD, isolated_settings

    assert SERVICES["kafka"]["image"] == f"apache/kafka:{kafka_version()}"
    env = SERVICES["kafka"]["environment"]
    text = render_properties(isolated_settings(tmp_path), tmp_path, PASSWORD, None)  # one broker, as compose
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert env["KAFKA_PROCESS_ROLES"] == props["process.roles"] == "broker,controller"
    assert env["KAFKA_NODE_ID"] == props["node.id"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == props["offsets.topic.replication.factor"]


def test_worker_talks_to_the_compose_services_with_dualtrack_settings() -> None:
    env = SERVICES["worker"]["environment"]
    assert set(env) <= {f"DUALTRACK_{name.upper()}" for name in DEFAULTS}
    assert env["DUALTRACK_KAFKA_BOOTSTRAP_SERVERS"].startswith("kafka:")
    m = re.match(r"clickhouse://[^@]*@clickhouse:(\d+)/(\w+)$", env["DUALTRACK_CLICKHOUSE_URL"])
    assert m and int(m.group(1)) == DEFAULTS["clickhouse_port"].default
    assert m.group(2) == SERVICES["clickhouse"]["environment"]["CLICKHOUSE_DB"]


def test_grafana_is_provisioned_with_the_clickhouse_plugin_and_dashboards() -> None:
    g = SERVICES["grafana"]
    assert "grafana-clickhouse-datasource" in g["environment"]["GF_INSTALL_PLUGINS"]
    mounts = dict(v.split(":", 1) for v in g["volumes"])
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    ds = yaml.safe_load((ROOT / "infra/grafana/provisioning/datasources/clickhouse.yaml").read_text())[
        "datasources"
    ][0]
    assert ds["type"] == "grafana-clickhouse-datasource"
    assert (
        ds["jsonData"]["host"] == "clickhouse"
        and ds["jsonData"]["port"] == DEFAULTS["clickhouse_port"].default
    )
    assert ds["jsonData"]["protocol"] == "native"
    assert ds["jsonData"]["defaultDatabase"] == SERVICES["clickhouse"]["environment"]["CLICKHOUSE_DB"]
    provider = yaml.safe_load((ROOT / "infra/grafana/provisioning/dashboards/dualtrack.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == mounts["./grafana/dashboards"]
