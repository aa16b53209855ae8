"""`dualtrack schools`: each school's Kafka user, intake topic and ACLs, and the client configuration
its HR system needs. A school may write its own topic, `<prefix>.intake.<school_id>`, and nothing else.

    config = ensure_school(settings, "SD0001")   # for the demo and tests: created or given a new password
    producer = EventProducer(config.settings(settings))
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from foundation.errors import ConfigError, DualtrackError
from foundation.kafka_auth import (
    MECHANISM,
    check_school_id,
    school_of_topic,
    school_of_user,
    school_topic,
    school_user,
    secured,
    valid_school_id,
)
from foundation.localsecrets import Secret
from foundation.settings import Settings


class SchoolError(DualtrackError):
    """A school's access cannot be changed as asked (one line, no secret)."""


@dataclass(frozen=True)
class ClientConfig:
    """What a school's HR system needs to send its events; the password is never in the repr."""

    school_id: str
    bootstrap_servers: str
    security_protocol: str
    username: str
    password: Secret = field(repr=False)
    topic: str
    ca_file: str | None = None
    sasl_mechanism: str = MECHANISM

    def as_dict(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers, "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism, "username": self.username, "password": str(self.password),
            "topic": self.topic, **({"ca_file": self.ca_file} if self.ca_file else {}),
        }  # fmt: skip

    def as_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def as_properties(self) -> str:
        """Java-client properties (librdkafka takes sasl.username and sasl.password instead of the JAAS
        line: docs/producers.md); the topic is a comment: no client setting names it."""
        lines = [
            f"# dualtrack: school {self.school_id} writes only to topic {self.topic}",
            f"bootstrap.servers={self.bootstrap_servers}",
            f"security.protocol={self.security_protocol}",
            f"sasl.mechanism={self.sasl_mechanism}",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{self.username}" password="{self.password}";',
        ]
        if self.security_protocol == "SASL_SSL" and self.ca_file:
            lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={self.ca_file}"]
        return "\n".join(lines) + "\n"

    def environment(self) -> dict[str, str]:
        """The DUALTRACK_* variables with which `dualtrack produce` sends as this school."""
        env = {
            "DUALTRACK_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "DUALTRACK_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            "DUALTRACK_KAFKA_USERNAME": self.username,
            "DUALTRACK_KAFKA_PASSWORD": str(self.password),
        }
        if self.ca_file:
            env["DUALTRACK_KAFKA_CA_FILE"] = self.ca_file
        return env

    def settings(self, base: Settings) -> Settings:
        """`base` logged in as this school (for EventProducer in the demo and the tests)."""
        from pydantic import SecretStr

        return base.model_copy(update={
            "kafka_bootstrap_servers": self.bootstrap_servers, "kafka_username": self.username,
            "kafka_password": SecretStr(str(self.password)),
        })  # fmt: skip


@dataclass(frozen=True)
class SchoolAccess:
    """What the broker holds for one school (never its password)."""

    school_id: str
    user: str
    has_user: bool
    topic: str
    has_topic: bool
    acls: tuple[str, ...]  # "WRITE on dualtrack.intake.SD0001", ...


def _admin_side(settings: Settings) -> None:
    if not secured(settings):
        raise ConfigError(
            "schools log in with their own Kafka users, but DUALTRACK_KAFKA_SECURITY_PROTOCOL is PLAINTEXT "
            "(no logins): use SASL_PLAINTEXT or SASL_SSL"
        )


def _config(settings: Settings, school_id: str, password: str, bootstrap: str | None) -> ClientConfig:
    ca = settings.kafka_ca_file
    return ClientConfig(
        school_id=school_id, bootstrap_servers=bootstrap or settings.kafka_bootstrap_servers,
        security_protocol=settings.kafka_security_protocol, username=school_user(settings, school_id),
        password=Secret(password), topic=school_topic(settings, school_id),
        ca_file=str(ca) if ca and settings.kafka_security_protocol == "SASL_SSL" else None,
    )  # fmt: skip


def _ensure_topics(admin: Any, settings: Settings, school_ids: Iterable[str]) -> None:
    """Each school's topic: one partition, so its events stay in the order it sent them."""
    from streams.topics import create_topics

    create_topics(admin, {school_topic(settings, s): 1 for s in school_ids})


def ensure_schools(
    settings: Settings, school_ids: Iterable[str], bootstrap_servers: str | None = None
) -> dict[str, ClientConfig]:
    """Each school's topic, user (with a new password) and ACLs, made or renewed in one go; the
    configurations carry the new passwords."""
    from infra.kafka.acls import add_acls, admin_client, school_acls, set_password

    _admin_side(settings)
    ids = [check_school_id(s) for s in dict.fromkeys(school_ids)]
    configs = {s: _config(settings, s, secrets.token_urlsafe(24), bootstrap_servers) for s in ids}
    with admin_client(settings) as admin:
        _ensure_topics(admin, settings, ids)
        for c in configs.values():
            set_password(admin, c.username, c.password)
        add_acls(admin, [acl for s in ids for acl in school_acls(settings, s)])
    return configs


def open_deployment(settings: Settings, school_ids: Iterable[str]) -> dict[str, ClientConfig]:
    """A deployment (topic prefix) ready to run: the worker's user and ACLs for its prefix, and each
    school's topic, user and ACLs (new passwords). For the demo, `simulate --kafka`, the benchmark
    and the tests, which each run under a prefix of their own; an operator runs `infra up` (or sets
    the worker's ACLs as docs/security.md says) and `schools add`."""
    from infra.kafka.acls import ensure_worker

    _admin_side(settings)
    ensure_worker(settings)
    return ensure_schools(settings, school_ids)


#: SchoolSenders' linger for a bulk send (see there)
BULK_LINGER_MS = 500


class SchoolSenders:
    """Sends a province's lines each as its own school: one producer per school, logged in with that
    school's credentials, so the worker sees every event on the topic of the school that sent it (as
    in production, where each HR system holds its own login). A line that names no school of the
    deployment goes as the first school (its HR system sent something unreadable). On a PLAINTEXT
    broker, one producer. Producers open at a school's first line; `flush` waits for every
    acknowledgement. It has EventProducer's `send`, `send_raw` and `flush`.

    Each producer's network thread wakes once per `linger_ms` while it holds a record. A bulk send (a
    file, where every school always has one waiting) wants `BULK_LINGER_MS`: 30,000 lines of 550
    schools took 42 s to send at 20 ms and 10 s at 500 ms on a 2-core machine. A paced stream keeps
    the default, since the linger is added to every event's delay."""

    def __init__(self, settings: Settings, school_ids: Iterable[str], linger_ms: int = 20) -> None:
        from streams.producer import EventProducer
        from streams.topics import ensure_topics

        ids = [s for s in dict.fromkeys(school_ids) if valid_school_id(s)]
        if not ids:
            raise SchoolError("no line names a school that could send it: nothing to send as a school")
        self.settings, self.fallback, self.linger_ms = settings, ids[0], linger_ms
        self.configs: dict[str, ClientConfig] = open_deployment(settings, ids) if secured(settings) else {}
        self.producers: dict[str, EventProducer] = {}
        ensure_topics(settings)
        self._shared = None if secured(settings) else EventProducer(settings)

    def _producer(self, key: str) -> tuple[Any, str]:
        """The producer of the school a line names (or of the fallback school, with no key)."""
        from streams.producer import EventProducer

        if self._shared is not None:
            return self._shared, key
        school, key = (key, key) if key in self.configs else (self.fallback, "")
        producer = self.producers.get(school)
        if producer is None:
            login = self.configs[school].settings(self.settings)
            producer = self.producers[school] = EventProducer(login, linger_ms=self.linger_ms)
        return producer, key

    def send_raw(self, value: bytes, key: str = "") -> Any:
        producer, key = self._producer(key)
        return producer.send_raw(value, key=key)

    def send(self, event: dict[str, Any] | str | bytes) -> Any:
        from streams.producer import school_key

        raw = event if isinstance(event, bytes | str) else json.dumps(event, ensure_ascii=False)
        producer, _ = self._producer(school_key(raw.encode() if isinstance(raw, str) else raw))
        return producer.send(event)

    def flush(self, timeout: float | None = 60) -> None:
        for p in [*self.producers.values(), *([self._shared] if self._shared else [])]:
            p.flush(timeout)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for p in [*self.producers.values(), *([self._shared] if self._shared else [])]:
                p.close()

    def __enter__(self) -> SchoolSenders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ensure_school(settings: Settings, school_id: str, bootstrap_servers: str | None = None) -> ClientConfig:
    """The school's topic, user and ACLs, created or renewed; a new password either way (the old one,
    if any, stops working). For the demo and tests; operators use `add` and `rotate`."""
    return ensure_schools(settings, [school_id], bootstrap_servers)[school_id]


def _has_user(settings: Settings, school_id: str) -> bool:
    from infra.kafka.acls import admin_client, scram_users

    with admin_client(settings) as admin:
        return school_user(settings, school_id) in scram_users(admin)


def add_school(settings: Settings, school_id: str, bootstrap_servers: str | None = None) -> ClientConfig:
    """A new school: its intake topic, its user with a random password, WRITE and DESCRIBE on its topic."""
    _admin_side(settings)
    if _has_user(settings, check_school_id(school_id)):
        raise SchoolError(
            f"school {school_id} already has a Kafka user; `dualtrack schools rotate {school_id}` gives it "
            "a new password"
        )
    return ensure_school(settings, school_id, bootstrap_servers)


def rotate_school(settings: Settings, school_id: str, bootstrap_servers: str | None = None) -> ClientConfig:
    """A new password for an existing school; the old one is refused from now on (new logins)."""
    from infra.kafka.acls import admin_client, set_password

    _admin_side(settings)
    if not _has_user(settings, check_school_id(school_id)):
        raise SchoolError(
            f"school {school_id} has no Kafka user; `dualtrack schools add {school_id}` makes one"
        )
    config = _config(settings, school_id, secrets.token_urlsafe(24), bootstrap_servers)
    with admin_client(settings) as admin:
        set_password(admin, config.username, config.password)
    return config


def revoke_school(settings: Settings, school_id: str) -> str:
    """Delete the school's user and every ACL naming it; its topic and the events in it stay."""
    from infra.kafka.acls import admin_client, delete_principal_acls, delete_user, scram_users

    _admin_side(settings)
    user = school_user(settings, school_id)
    with admin_client(settings) as admin:
        had_user = user in scram_users(admin)
        if had_user:
            delete_user(admin, user)
        acls = delete_principal_acls(admin, user)
    if not had_user and not acls:
        raise SchoolError(f"school {school_id} has no Kafka user and no ACL; nothing to revoke")
    return (
        f"school {school_id}: user {user} {'deleted' if had_user else 'was already gone'}, {acls} ACL(s) "
        f"deleted; topic {school_topic(settings, school_id)} and its events kept"
    )


@contextlib.contextmanager
def _tokens(settings: Settings, school_id: str) -> Iterator[Any]:
    """The store's `school_tokens` (migrated), for a school id that may name a topic."""
    from sinks.base import open_store
    from sinks.tokens import SchoolTokens

    check_school_id(school_id)
    with open_store(settings) as store:
        store.migrate()
        yield SchoolTokens(store)


def issue_token(settings: Settings, school_id: str) -> Secret:
    """A new HTTP token for the school's use of the gateway (the old one, if any, is refused within
    seconds); only its sha256 is kept, in the store's `school_tokens`."""
    with _tokens(settings, school_id) as tokens:
        return tokens.issue(school_id, datetime.now(UTC))


def revoke_token(settings: Settings, school_id: str) -> bool:
    """Refuse the school's HTTP token from now on; whether it had one."""
    with _tokens(settings, school_id) as tokens:
        return tokens.revoke(school_id, datetime.now(UTC))


def list_schools(settings: Settings) -> list[SchoolAccess]:
    """Every school of this deployment with a user, a topic or an ACL."""
    from infra.kafka.acls import admin_client, principal_acls, scram_users

    _admin_side(settings)
    with admin_client(settings) as admin:
        users = {s for u in scram_users(admin) if (s := school_of_user(settings, u))}
        topics = {s for t in admin.list_topics() if (s := school_of_topic(settings, t))}
        rows = []
        for s in sorted(users | topics):
            acls = principal_acls(admin, school_user(settings, s))
            described = tuple(sorted(
                ("DENY " if a.permission_type.name == "DENY" else "")
                + f"{a.operation.name} on {a.resource_pattern.resource_name}"
                for a in acls
            ))  # fmt: skip
            rows.append(
                SchoolAccess(s, school_user(settings, s), s in users, school_topic(settings, s), s in topics,
                             described)
            )  # fmt: skip
    return rows


# --- the command line ----------------------------------------------------------------------------------

app = typer.Typer(
    help="Each school's Kafka user, intake topic and ACLs: a school writes its own topic and nothing else.",
    no_args_is_help=True,
)
# soft_wrap: a configuration line must reach the file as one line, whatever the terminal's width
out = Console(markup=False, emoji=False, highlight=False, soft_wrap=True)
err = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)
SchoolArg = Annotated[str, typer.Argument(help="The school's id (letters, digits, _ and -).")]
BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers",
        help="The broker address as the school reaches it (default: DUALTRACK_KAFKA_BOOTSTRAP_SERVERS).",
    ),
]


class ListFormat(StrEnum):
    text = "text"
    json = "json"


FormatOpt = Annotated[
    ListFormat,
    typer.Option(
        "--format", help="text (a properties file, a JSON file and the token) or json (one object)."
    ),
]


def _print_config(config: ClientConfig, token: str, what: str, fmt: ListFormat) -> None:
    err.print(
        f"school {config.school_id}: {what}. The password and the HTTP token below are shown this once: "
        "hand them to the school's HR system over a safe channel."
    )
    if fmt is ListFormat.json:
        print(json.dumps({"school_id": config.school_id, "kafka": config.as_dict(), "http_token": token}))
        return
    out.print(f"# {config.school_id}.properties\n{config.as_properties()}")
    out.print(f"# {config.school_id}.json\n{config.as_json()}")
    out.print(f"# {config.school_id}: HTTP token for the gateway (Authorization: Bearer ...)\n{token}")


@app.command("add")
def add_command(
    school_id: SchoolArg, bootstrap_servers: BootstrapOpt = None, fmt: FormatOpt = ListFormat.text
) -> None:
    """Create the school's user, intake topic, ACLs and HTTP token; print its client configuration and
    token (shown once)."""
    settings = Settings()
    config = add_school(settings, school_id, bootstrap_servers)
    token = issue_token(settings, school_id)
    _print_config(
        config, token, f"user {config.username} may write topic {config.topic} and nothing else", fmt
    )


@app.command("rotate")
def rotate_command(
    school_id: SchoolArg, bootstrap_servers: BootstrapOpt = None, fmt: FormatOpt = ListFormat.text
) -> None:
    """Give the school a new password and a new HTTP token (the old ones are refused from now on)."""
    settings = Settings()
    config = rotate_school(settings, school_id, bootstrap_servers)
    token = issue_token(settings, school_id)
    _print_config(config, token, f"new password for user {config.username} and a new HTTP token; the old "
                                 "ones no longer log in", fmt)  # fmt: skip


@app.command("revoke")
def revoke_command(school_id: SchoolArg) -> None:
    """Delete the school's user and ACLs and refuse its HTTP token; its topic and the events in it stay."""
    settings = Settings()
    had_token = revoke_token(settings, school_id)
    try:
        message = revoke_school(settings, school_id)
    except SchoolError:
        if not had_token:
            raise
        message = f"school {school_id}: had no Kafka user and no ACL"
    out.print(f"{message}; HTTP token {'refused from now on' if had_token else 'there was none'}")


@app.command("list")
def list_command(
    fmt: Annotated[ListFormat, typer.Option("--format", help="text or json.")] = ListFormat.text,
) -> None:
    """Schools with a user, a topic or ACLs (never a password)."""
    rows = list_schools(Settings())
    if fmt is ListFormat.json:
        print(json.dumps([r.__dict__ | {"acls": list(r.acls)} for r in rows], indent=2))
        return
    if not rows:
        out.print("no schools")
        return
    for r in rows:
        user = r.user if r.has_user else f"{r.user} (no user: revoked)"
        topic = r.topic if r.has_topic else f"{r.topic} (no topic)"
        out.print(f"{r.school_id}  user {user}  topic {topic}  ACLs: {'; '.join(r.acls) or 'none'}")
