"""School ids to Kafka topics and users, the login options of every Kafka client, the local secrets
file, and settings that never show a secret."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from foundation.errors import ConfigError
from foundation.kafka_auth import (
    InvalidSchoolId,
    check_school_id,
    faust_broker_credentials,
    kafka_admin_options,
    kafka_client_options,
    login,
    school_of_topic,
    school_of_user,
    school_topic,
    school_user,
)
from foundation.localsecrets import NAMES, Secret, generated, secret, secrets_file
from foundation.settings import Settings
from foundation.urls import redact_url
from tests.helpers import PASSWORD, isolated_settings


@pytest.mark.parametrize("school_id", ["SD0001", "sd-01", "A_B", "x" * 64, "0"])
def test_school_ids_name_a_topic_and_a_user_as_they_are(tmp_path: Path, school_id: str) -> None:
    s = isolated_settings(tmp_path)
    assert check_school_id(school_id) == school_id
    assert school_topic(s, school_id) == f"dt.intake.{school_id}"
    assert school_user(s, school_id) == f"dt.school.{school_id}"
    assert school_of_topic(s, school_topic(s, school_id)) == school_id
    assert school_of_user(s, school_user(s, school_id)) == school_id


@pytest.mark.parametrize(
    "school_id", ["", " ", "SD 01", "SD.01", "SD/01", "SD01\n", "学校01", "x" * 65, "SD01*", "a,b", "a=b"]
)
def test_other_school_ids_are_refused_in_one_line(tmp_path: Path, school_id: str) -> None:
    with pytest.raises(InvalidSchoolId) as err:
        school_topic(isolated_settings(tmp_path), school_id)
    assert len(str(err.value).splitlines()) == 1 and "letters" in str(err.value)


def test_a_school_id_that_looks_like_a_national_id_names_nothing_and_is_not_shown(tmp_path: Path) -> None:
    """Topic and user names are listed to clients: a national ID number never becomes one."""
    nid = "11010519491231002X"
    with pytest.raises(InvalidSchoolId) as err:
        school_topic(isolated_settings(tmp_path), nid)
    assert nid not in str(err.value) and "national ID" in str(err.value)
    assert school_of_topic(isolated_settings(tmp_path), f"dt.intake.{nid}") is None


def test_names_of_other_deployments_and_other_topics_are_no_school(tmp_path: Path) -> None:
    s = isolated_settings(tmp_path)
    for topic in ("dt.intake", "dt.intake.", "dt2.intake.SD1", "dt.valid", "dt.intake.SD.1", "dt-worker-x"):
        assert school_of_topic(s, topic) is None, topic
    for user in ("worker", "admin", "dt2.school.SD1", "dt.school.", "school.dt.SD1"):
        assert school_of_user(s, user) is None, user


def test_a_topic_prefix_with_a_dot_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(topic_prefix="dual.track")
    assert Settings(topic_prefix="test-0a1b_2").topic_prefix == "test-0a1b_2"


def test_plaintext_clients_carry_no_login(tmp_path: Path) -> None:
    s = isolated_settings(tmp_path, kafka_security_protocol="PLAINTEXT")
    assert kafka_client_options(s) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert faust_broker_credentials(s) is None


def test_a_configured_login_is_used_and_never_printed(tmp_path: Path) -> None:
    s = isolated_settings(tmp_path, kafka_username="dt.school.SD1", kafka_password=SecretStr(PASSWORD))
    options = kafka_client_options(s)
    assert options["security_protocol"] == "SASL_PLAINTEXT" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "dt.school.SD1" and options["sasl_plain_password"] == PASSWORD
    assert PASSWORD not in repr(options) and PASSWORD not in f"{options}"  # kafka-python logs its config dict
    assert "ssl_context" not in options
    credentials = faust_broker_credentials(s)
    assert credentials.username == "dt.school.SD1" and credentials.password == PASSWORD
    assert credentials.mechanism.value == "SCRAM-SHA-512" and credentials.protocol.value == "SASL_PLAINTEXT"
    assert PASSWORD not in repr(credentials)


def test_half_a_login_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DUALTRACK_KAFKA_PASSWORD is unset"):
        kafka_client_options(isolated_settings(tmp_path, kafka_username="worker"))
    with pytest.raises(ConfigError, match="without DUALTRACK_KAFKA_USERNAME"):
        kafka_client_options(isolated_settings(tmp_path, kafka_password=SecretStr(PASSWORD)))


def test_without_a_username_a_client_is_the_local_worker(tmp_path: Path) -> None:
    s = isolated_settings(tmp_path)
    with pytest.raises(ConfigError, match="infra up"):  # clients never invent a password
        login(s)
    assert not secrets_file(s).exists()
    made = secret(s, "kafka_worker", create=True)  # what `infra up` does
    assert login(s) == ("worker", made)
    assert login(isolated_settings(tmp_path, kafka_worker_password=SecretStr(PASSWORD))) == (
        "worker",
        PASSWORD,
    )
    assert kafka_admin_options(s)["sasl_plain_username"] == "admin"


def test_sasl_ssl_verifies_the_broker_with_the_ca_file(tmp_path: Path) -> None:
    login_ = {"kafka_username": "u", "kafka_password": SecretStr(PASSWORD)}
    s = isolated_settings(tmp_path, kafka_security_protocol="SASL_SSL", **login_)
    context = kafka_client_options(s)["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname  # the system's CAs
    assert faust_broker_credentials(s).protocol.value == "SASL_SSL"
    with pytest.raises(ConfigError, match="is not a file"):
        kafka_client_options(
            isolated_settings(
                tmp_path, kafka_security_protocol="SASL_SSL", kafka_ca_file=tmp_path / "x", **login_
            )
        )
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigError, match="not a PEM CA certificate"):
        kafka_client_options(
            isolated_settings(tmp_path, kafka_security_protocol="SASL_SSL", kafka_ca_file=junk, **login_)
        )


def test_secrets_are_generated_once_owner_only_and_settings_win(tmp_path: Path) -> None:
    s = isolated_settings(tmp_path)
    first = {n: secret(s, n, create=True) for n in NAMES}
    assert stat.S_IMODE(secrets_file(s).stat().st_mode) == 0o600
    assert len(set(first.values())) == len(NAMES) and all(len(v) >= 32 for v in first.values())
    assert {n: secret(s, n, create=True) for n in NAMES} == first  # stable
    assert sorted(generated(s)) == sorted(first.values())
    assert (
        secret(
            isolated_settings(tmp_path, clickhouse_reader_password=SecretStr(PASSWORD)), "clickhouse_reader"
        )
        == PASSWORD
    )
    assert repr(first["kafka_admin"]) == "'**********'" and isinstance(first["kafka_admin"], Secret)


def test_a_secrets_file_others_may_read_is_refused(tmp_path: Path) -> None:
    s = isolated_settings(tmp_path)
    secret(s, "kafka_admin", create=True)
    secrets_file(s).chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        secret(s, "kafka_admin")


def test_settings_repr_shows_no_secret() -> None:
    s = Settings(
        kafka_password=SecretStr(PASSWORD), kafka_admin_password=SecretStr(PASSWORD),
        clickhouse_reader_password=SecretStr(PASSWORD), producer_secret=SecretStr(PASSWORD),
        clickhouse_url=f"clickhouse://dualtrack_writer:{PASSWORD}@ch:9000/dualtrack",
        alert_webhook_url=f"https://ops.example.org/hook?token={PASSWORD}",
    )  # fmt: skip
    for text in (repr(s), str(s)):
        assert PASSWORD not in text
        assert "clickhouse://dualtrack_writer:***@ch:9000/dualtrack" in text
    assert s.clickhouse_url and PASSWORD in s.clickhouse_url  # the value itself is intact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("clickhouse://u:p@h:9000/db", "clickhouse://u:***@h:9000/db"),
        ("clickhouse://u@h/db", "clickhouse://u@h/db"),
        ("https://h/x?token=p", "https://h/x?***"),
        (None, None),
    ],
)
def test_redact_url(url: str | None, shown: str | None) -> None:
    assert redact_url(url) == shown


def test_an_admin_call_is_tried_again_when_its_broker_does_not_answer_and_never_when_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

    import foundation.kafka_auth as auth

    monkeypatch.setattr(auth, "ADMIN_PAUSE", 0.0)
    calls: list[str] = []

    class Client:
        def list_topics(self) -> list[str]:
            calls.append("list")
            if len(calls) < 3:
                raise KafkaConnectionError("111 ECONNREFUSED")  # a dead broker of three
            return ["t"]

        def delete_topics(self, names: list[str]) -> None:
            calls.append("delete")
            raise TopicAuthorizationFailedError()  # an answer: trying again would change nothing

    admin = auth.RetryingAdmin(Client())
    assert admin.list_topics() == ["t"] and calls == ["list"] * 3
    with pytest.raises(TopicAuthorizationFailedError):
        admin.delete_topics(["t"])
    assert calls.count("delete") == 1
    calls.clear()

    class Dead(Client):
        def list_topics(self) -> list[str]:
            calls.append("list")
            raise KafkaConnectionError("111 ECONNREFUSED")

    with pytest.raises(KafkaConnectionError):
        auth.RetryingAdmin(Dead()).list_topics()
    assert len(calls) == auth.ADMIN_ATTEMPTS
