"""One settings class for every command and service, read from `DUALTRACK_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting dualtrack reads; `docs/settings.md` documents each one (a test keeps them in step)."""

    model_config = SettingsConfigDict(env_prefix="DUALTRACK_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port."
    )
    topic_prefix: str = Field(
        "dualtrack",
        description="Prefix of every topic and of the Faust app id, so that deployments and test runs "
        "can share one broker.",
    )
    clickhouse_url: str | None = Field(
        None,
        description="ClickHouse server, e.g. `clickhouse://user:pass@127.0.0.1:9000/dualtrack`. "
        "When unset, the embedded chDB store at `store_path` is used.",
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
    clickhouse_port: int = Field(9000, description="Native port of the local ClickHouse server.")
    clickhouse_http_port: int = Field(8123, description="HTTP port of the local ClickHouse server.")
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

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook(cls, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        u = urlparse(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return url

    def topic(self, name: str) -> str:
        """The full topic name for one of the app's topics."""
        return f"{self.topic_prefix}.{name}"
