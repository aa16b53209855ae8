"""`dualtrack schools` without a broker: a school's events go to its own topic, its client
configuration keeps the password out of its repr, and the commands fail in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dualtrack.schools import ClientConfig
from foundation.localsecrets import Secret
from foundation.settings import Settings
from streams.topics import intake_topic
from tests.helpers import PASSWORD, ROOT, isolated_settings


def test_events_go_to_their_schools_topic_when_secured_and_to_the_shared_one_when_open(
    tmp_path: Path,
) -> None:
    assert intake_topic(isolated_settings(tmp_path), "SD1") == "dt.intake.SD1"
    assert (
        intake_topic(isolated_settings(tmp_path, kafka_security_protocol="PLAINTEXT"), "SD1") == "dt.intake"
    )


def test_a_client_configuration_keeps_its_password_out_of_its_repr() -> None:
    c = ClientConfig(
        "SD1", "kafka:9092", "SASL_SSL", "dt.school.SD1", Secret(PASSWORD), "dt.intake.SD1", "/ca.pem"
    )
    assert PASSWORD not in repr(c)
    props = c.as_properties()
    assert (
        f'username="dt.school.SD1" password="{PASSWORD}";' in props
        and "ssl.truststore.location=/ca.pem" in props
    )
    assert json.loads(c.as_json())["password"] == PASSWORD
    assert set(c.environment()) <= {f"DUALTRACK_{n.upper()}" for n in Settings.model_fields}
    assert c.settings(Settings()).kafka_username == "dt.school.SD1"


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dualtrack.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_bad_setting_is_named_without_the_secrets_beside_it(tmp_path: Path) -> None:
    env = dict(os.environ, DUALTRACK_KAFKA_PASSWORD=PASSWORD, DUALTRACK_KAFKA_SECURITY_PROTOCOL=PASSWORD,
               DUALTRACK_VAR_DIR=str(tmp_path))  # fmt: skip
    result = _cli(["schools", "list"], env)
    assert result.returncode == 1 and "DUALTRACK_KAFKA_SECURITY_PROTOCOL" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_schools_need_an_authenticating_broker(tmp_path: Path) -> None:
    env = dict(os.environ, DUALTRACK_KAFKA_SECURITY_PROTOCOL="PLAINTEXT", DUALTRACK_VAR_DIR=str(tmp_path))
    result = _cli(["schools", "add", "SD1"], env)
    assert (
        result.returncode == 1
        and len(result.stderr.strip().splitlines()) == 1
        and "PLAINTEXT" in result.stderr
    )
