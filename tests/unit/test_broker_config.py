"""What the local broker's configuration allows, and the ACLs of the worker and of a school."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from foundation.errors import InfraError
from infra.kafka import Kafka, render_properties
from infra.kafka.acls import school_acls, worker_acls
from tests.helpers import PASSWORD, isolated_settings


def test_the_secured_broker_takes_logins_only_and_allows_nothing_without_an_acl(tmp_path: Path) -> None:
    props = dict(line.split("=", 1) for line in render_properties(isolated_settings(tmp_path), tmp_path, PASSWORD, None)
                 .splitlines() if "=" in line and not line.startswith("#"))  # fmt: skip
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin;User:broker"
    listeners = props["listeners"].split(",")
    assert [x.split("://")[0] for x in listeners] == ["SASL_PLAINTEXT", "CONTROLLER"]
    assert all(
        p.split(":")[1].startswith("SASL_") for p in props["listener.security.protocol.map"].split(",")
    )
    assert props["listener.name.sasl_plaintext.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert not any(k.startswith("listener.name.sasl_ssl") for k in props)  # no TLS files, no TLS listener


def test_tls_files_open_a_sasl_ssl_listener(tmp_path: Path) -> None:
    text = render_properties(
        isolated_settings(tmp_path, kafka_tls_port=9555), tmp_path, PASSWORD, tmp_path / "k.pem"
    )
    assert "SASL_SSL://127.0.0.1:9555" in text and f"ssl.keystore.location={tmp_path / 'k.pem'}" in text
    with pytest.raises(InfraError, match="both"):
        _ = Kafka(isolated_settings(tmp_path, kafka_tls_cert_file=tmp_path / "c.pem")).ports


def test_the_open_broker_is_plaintext_throughout(tmp_path: Path) -> None:
    text = render_properties(
        isolated_settings(tmp_path, kafka_security_protocol="PLAINTEXT"), tmp_path, "", None
    )
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert not [k for k in props if "sasl" in k or k in ("authorizer.class.name", "super.users")]


def test_a_storage_formatted_open_is_not_started_secured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import infra.kafka

    monkeypatch.setattr(infra.kafka, "fetch", lambda: "")
    svc = Kafka(isolated_settings(tmp_path))
    (svc.var / "data").mkdir(parents=True)
    (svc.var / "data" / "meta.properties").write_text("formatted open\n")
    with pytest.raises(InfraError, match="formatted without users"):
        svc.prepare()
    assert stat.S_IMODE(svc.properties.stat().st_mode) == 0o600


def _rows(acls: list) -> set[tuple[str, str, str, str, str, str]]:  # type: ignore[type-arg]
    return {(a.principal, a.permission_type.name, a.operation.name, a.resource_pattern.resource_type.name,
             a.resource_pattern.resource_name, a.resource_pattern.pattern_type.name) for a in acls}  # fmt: skip


def test_a_school_may_write_and_describe_its_topic_and_nothing_else(tmp_path: Path) -> None:
    assert _rows(school_acls(isolated_settings(tmp_path), "SD1")) == {
        ("User:dt.school.SD1", "ALLOW", "WRITE", "TOPIC", "dt.intake.SD1", "LITERAL"),
        ("User:dt.school.SD1", "ALLOW", "DESCRIBE", "TOPIC", "dt.intake.SD1", "LITERAL"),
    }


def test_the_worker_reads_the_intake_and_may_not_write_it(tmp_path: Path) -> None:
    rows = _rows(worker_acls(isolated_settings(tmp_path)))
    assert {r[0] for r in rows} == {"User:worker"}
    assert ("User:worker", "DENY", "WRITE", "TOPIC", "dt.intake.", "PREFIXED") in rows
    assert ("User:worker", "DENY", "CREATE", "TOPIC", "dt.intake.", "PREFIXED") in rows
    assert ("User:worker", "ALLOW", "READ", "TOPIC", "dt.", "PREFIXED") in rows
    assert ("User:worker", "ALLOW", "WRITE", "TOPIC", "dt-worker-", "PREFIXED") in rows
    assert ("User:worker", "ALLOW", "READ", "GROUP", "dt-worker", "PREFIXED") in rows
    assert not {r for r in rows if r[2] in ("ALL", "DELETE", "ALTER", "ALTER_CONFIGS") or r[3] == "CLUSTER"}


def test_three_brokers_are_one_quorum_with_three_copies_and_two_to_acknowledge(tmp_path: Path) -> None:
    from infra.kafka import bootstrap_servers

    settings = isolated_settings(tmp_path)
    nodes = []
    for node in (1, 2, 3):
        text = render_properties(settings, tmp_path, PASSWORD, None, node, 3, tmp_path / f"d{node}")
        nodes.append(
            dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
        )
    assert [p["node.id"] for p in nodes] == ["1", "2", "3"]
    assert len({p["listeners"] for p in nodes}) == 3 and len({p["log.dirs"] for p in nodes}) == 3
    assert {p["controller.quorum.voters"] for p in nodes} == {
        "1@127.0.0.1:9093,2@127.0.0.1:9103,3@127.0.0.1:9113"
    }
    for p in nodes:
        assert p["default.replication.factor"] == p["offsets.topic.replication.factor"] == "3"
        assert p["min.insync.replicas"] == p["transaction.state.log.min.isr"] == "2"
    assert bootstrap_servers(settings, 3) == "127.0.0.1:9092,127.0.0.1:9102,127.0.0.1:9112"
    one = render_properties(settings, tmp_path, PASSWORD, None)  # a single broker is a quorum of itself
    assert "controller.quorum.bootstrap.servers=127.0.0.1:9093" in one and "min.insync.replicas=1" in one
    assert [Kafka(settings, node=n, brokers=3).name for n in (1, 2, 3)] == ["kafka", "kafka-2", "kafka-3"]
