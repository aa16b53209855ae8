"""One settings class for every command and service, read from `DUALTRACK_*` environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from foundation.urls import redact_url, webhook_problem

ROOT = Path(__file__).resolve().parent.parent
#: a topic prefix names topics and ACL prefixes: no dots, so that one deployment's prefixed ACLs
#: (`<prefix>.`, `<prefix>-worker`) never cover another deployment's topics
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]


class Settings(BaseSettings):
    """Every setting dualtrack reads; `docs/settings.md` documents each one (a test keeps them in step)."""

    model_config = SettingsConfigDict(env_prefix="DUALTRACK_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port."
    )
    topic_prefix: str = Field(
        "dualtrack",
        description="Prefix of every topic and of the Faust app id, so that deployments and test runs "
        "can share one broker: letters, digits, `_` and `-` (no dots: Kafka ACLs grant by prefix).",
    )
    kafka_security_protocol: SecurityProtocol = Field(
        "SASL_PLAINTEXT",
        description="How clients reach Kafka, and how `dualtrack infra up` secures the local broker: "
        "`SASL_PLAINTEXT` (SCRAM-SHA-512 logins, ACLs), `SASL_SSL` (the same over TLS) or `PLAINTEXT` "
        "(no authentication at all; a development broker only, see docs/security.md).",
    )
    kafka_username: str | None = Field(
        None,
        description="The Kafka user (SCRAM-SHA-512) a client logs in as: a school's user from "
        "`dualtrack schools add`, or `worker`. Unset: `worker`, with the local worker password.",
    )
    kafka_password: SecretStr | None = Field(
        None, description="The password of DUALTRACK_KAFKA_USERNAME (never logged)."
    )
    kafka_ca_file: Path | None = Field(
        None,
        description="With `SASL_SSL`: the PEM file of the CA that signed the broker's certificate; "
        "unset: the system's CAs.",
    )
    kafka_admin_password: SecretStr | None = Field(
        None,
        description="Password of the Kafka super user `admin` (schools, ACLs, the worker's user). Unset: "
        "generated once into `<var_dir>/secrets.json` (mode 0600).",
    )
    kafka_worker_password: SecretStr | None = Field(
        None,
        description="Password `dualtrack infra up` gives the Kafka user `worker`. Unset: generated once "
        "into `<var_dir>/secrets.json`.",
    )
    kafka_gateway_password: SecretStr | None = Field(
        None,
        description="Password `dualtrack infra up` gives the Kafka user `gateway` (the HTTPS gateway, "
        "`dualtrack gateway`). Unset: generated once into `<var_dir>/secrets.json`.",
    )
    kafka_tls_port: int = Field(
        9094, description="Port of the local broker's `SASL_SSL` listener (only with the two TLS files)."
    )
    kafka_tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate chain of the local broker's `SASL_SSL` listener; with "
        "DUALTRACK_KAFKA_TLS_KEY_FILE, `dualtrack infra up` opens that listener.",
    )
    kafka_tls_key_file: Path | None = Field(
        None, description="Unencrypted PKCS#8 PEM key of DUALTRACK_KAFKA_TLS_CERT_FILE (never logged)."
    )
    clickhouse_url: str | None = Field(
        None,
        description="ClickHouse server with its user and password, e.g. "
        "`clickhouse://dualtrack_writer:PASSWORD@127.0.0.1:9000/dualtrack` (never printed with the "
        "password). When unset, the embedded chDB store at `store_path` is used.",
    )
    store_path: Path = Field(
        ROOT / "var" / "store", description="Folder of the embedded chDB store (one process at a time)."
    )
    rules_file: Path | None = Field(
        None, description="The limits and rules file (YAML); unset: the built-in `rules/limits.yaml`."
    )
    var_dir: Path = Field(
        ROOT / "var",
        description="Where local services keep data, logs and pid files, and the worker its Faust data "
        "folder (`faust/`).",
    )
    kafka_port: int = Field(9092, description="Port of the local Kafka broker (`dualtrack infra`).")
    kafka_controller_port: int = Field(9093, description="KRaft controller port of the local broker.")
    kafka_brokers: int = Field(
        1, ge=1, le=5,
        description="Local Kafka brokers `dualtrack infra up` starts (one KRaft quorum); broker N listens "
        "on DUALTRACK_KAFKA_PORT + 10 × (N - 1), its controller and TLS ports likewise.",
    )  # fmt: skip
    clickhouse_port: int = Field(9000, description="Native port of the local ClickHouse server.")
    clickhouse_http_port: int = Field(8123, description="HTTP port of the local ClickHouse server.")
    clickhouse_admin_password: SecretStr | None = Field(
        None,
        description="Password of the local ClickHouse server's `default` (administrator) user. Unset: "
        "generated once into `<var_dir>/secrets.json`.",
    )
    clickhouse_writer_password: SecretStr | None = Field(
        None,
        description="Password of `dualtrack_writer` (the worker's user, its database only). Unset: "
        "generated once into `<var_dir>/secrets.json`.",
    )
    clickhouse_reader_password: SecretStr | None = Field(
        None,
        description="Password of `grafana_reader` (read-only, the dualtrack database only), for the "
        "local server and `dashboards publish`. Unset: generated once into `<var_dir>/secrets.json`.",
    )
    producer_secret: SecretStr | None = Field(
        None,
        description="The provincial HMAC secret from which producers derive `teacher_id` "
        "from a national ID number (never logged).",
    )
    stream_batch_size: int = Field(
        500,
        gt=0,
        description="Most events (and dead letters) a worker's agent takes from Kafka in one batch.",
    )
    stream_batch_seconds: float = Field(
        1.0, gt=0, description="Longest time an agent waits to fill a batch before processing what it has."
    )
    insert_batch_rows: int = Field(50_000, gt=0, description="Most rows one ClickHouse INSERT carries.")
    sink_retry_seconds: float = Field(
        600.0,
        description="How long a write keeps retrying (with backoff) while the ClickHouse server is away "
        "before the command fails; the stream pauses meanwhile and loses nothing.",
    )
    clock_tick_seconds: float = Field(
        60.0,
        description="How often the worker evaluates the clock-driven rules (certificate expiry, "
        "studio inactivity) with no event.",
    )
    late_window_days: int = Field(
        90,
        ge=1,
        le=3650,
        description="How far back (in event time, from the newest event) a late event is restated from "
        "the engine's in-memory window; an older one is restated from a checkpoint in the store.",
    )
    failpoint: str | None = Field(
        None,
        description="For crash tests only: `NAME:MARKER` makes the worker exit at once the first time "
        "it reaches the point NAME (streams/failpoints.py), creating the file MARKER.",
    )
    gateway_max_body_bytes: int = Field(
        5_000_000,
        gt=0,
        description="Largest body `POST /v1/events` takes (bytes); a larger one is refused "
        "with 413 before it is read.",
    )
    gateway_max_lines: int = Field(
        10_000, gt=0, description="Most events (lines or array items) one `POST /v1/events` takes."
    )
    gateway_body_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest the gateway waits for a request's body; a slower one is cut off with 408.",
    )
    gateway_rate_lines: float = Field(
        200.0,
        gt=0,
        description="Events per second each school may post through the gateway, on "
        "average (a token bucket); beyond it, 429 with Retry-After.",
    )
    gateway_burst_lines: int = Field(
        10_000,
        gt=0,
        description="Events a school may post at once before its rate applies (the "
        "bucket's size; at least DUALTRACK_GATEWAY_MAX_LINES, or a full body could never pass).",
    )
    gateway_tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate chain of the gateway's HTTPS listener; with "
        "DUALTRACK_GATEWAY_TLS_KEY_FILE the gateway serves HTTPS, without them plain HTTP (behind a "
        "TLS proxy only).",
    )
    gateway_tls_key_file: Path | None = Field(
        None, description="PEM key of DUALTRACK_GATEWAY_TLS_CERT_FILE (never logged)."
    )
    alert_webhook_url: str | None = Field(
        None, description="Where the notifier POSTs alert transitions (JSON); unset: no notifier."
    )

    recipients_file: Path | None = Field(
        None,
        description='Who receives alert notices (YAML; docs/alerts.md, "Recipients"); unset: nobody.',
    )
    smtp_url: SecretStr | None = Field(
        None,
        description="The SMTP server for e-mail notices: `smtp://[user:password@]host[:port]`, "
        "`smtp+starttls://…` or `smtps://…` (never logged); unset: no e-mail.",
    )
    smtp_from: str = Field("dualtrack@localhost", description="The sender address of e-mail notices.")

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, url: SecretStr | None) -> SecretStr | None:
        if url is None or not url.get_secret_value():
            return None
        u = urlparse(url.get_secret_value())
        if u.scheme not in ("smtp", "smtp+starttls", "smtps") or not u.hostname:
            raise ValueError("must be an smtp://, smtp+starttls:// or smtps:// URL with a host")
        return url

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError("use 1 to 64 letters, digits, _ or - (no dots)")
        return prefix

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook(cls, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        if problem := webhook_problem(url):
            raise ValueError(problem)
        return url

    def __repr_args__(self) -> Any:
        """As pydantic's, with the passwords and tokens in URLs redacted (SecretStr fields are already)."""
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in ("clickhouse_url", "alert_webhook_url") else value

    def topic(self, name: str) -> str:
        """The full topic name for one of the app's topics."""
        return f"{self.topic_prefix}.{name}"
