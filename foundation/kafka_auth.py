"""Who talks to Kafka and how: school ids to their intake topic and user, and the login options of
kafka-python and Faust (aiokafka) clients, all from the settings.

    KafkaProducer(**kafka_client_options(settings), acks="all")
    faust.App(..., broker_credentials=faust_broker_credentials(settings))
"""

from __future__ import annotations

import logging
import re
import ssl
from typing import Any

from foundation.errors import ConfigError
from foundation.localsecrets import Secret, secret
from foundation.settings import Settings
from schemas.national_id import find_national_id, mask_text

log = logging.getLogger(__name__)

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"  # the super user: schools, ACLs, the worker's user
WORKER = "worker"  # the stream processors
GATEWAY = "gateway"  # the HTTPS gateway: writes every school's intake topic and the dead letters
BROKER = "broker"  # the broker's own login (controller and inter-broker), a super user too
#: a school id becomes part of a topic and of a user name as it is: only these characters, so that
#: no two ids map to one name and no id reaches another school's prefix
_SCHOOL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class InvalidSchoolId(ConfigError, ValueError):
    """A school id that cannot name a topic or a Kafka user."""


def check_school_id(school_id: str) -> str:
    """The id itself when it may name a topic and a user; InvalidSchoolId (one line) otherwise."""
    if not valid_school_id(school_id):
        if not isinstance(school_id, str):
            raise InvalidSchoolId(f"a school id must be a string, not {type(school_id).__name__}")
        if _SCHOOL_ID.fullmatch(school_id):  # the only other reason: it holds a national ID number
            raise InvalidSchoolId(
                f"school id {mask_text(school_id)!r} looks like a national ID number, which no topic or "
                "user name may hold: use the school's code"
            )
        raise InvalidSchoolId(
            f"school id {mask_text(school_id[:80])!r} cannot name a Kafka topic or user: use 1 to 64 "
            "letters A-Z a-z, digits, _ or -"
        )
    return school_id


def valid_school_id(school_id: object) -> bool:
    """Whether a school id may name a Kafka topic and user as it is: 1 to 64 of A-Z a-z 0-9 _ -, and no
    national ID number in it (topic and user names are visible to every client that lists them)."""
    return (
        isinstance(school_id, str)
        and _SCHOOL_ID.fullmatch(school_id) is not None
        and find_national_id(school_id) is None
    )


def intake_prefix(settings: Settings) -> str:
    """The prefix of every school's intake topic (the worker reads them all)."""
    return f"{settings.topic_prefix}.intake."


def school_topic(settings: Settings, school_id: str) -> str:
    """The one topic a school may write: `<prefix>.intake.<school_id>`."""
    return intake_prefix(settings) + check_school_id(school_id)


def school_user(settings: Settings, school_id: str) -> str:
    """The school's Kafka user, one per deployment (topic prefix): `<prefix>.school.<school_id>`."""
    return f"{settings.topic_prefix}.school.{check_school_id(school_id)}"


def _suffix_id(name: str, prefix: str) -> str | None:
    rest = name[len(prefix) :] if name.startswith(prefix) else None
    return rest if rest is not None and valid_school_id(rest) else None


def school_of_topic(settings: Settings, topic: str) -> str | None:
    """The school whose intake topic this is (the sender the transport proves), else None."""
    return _suffix_id(topic, intake_prefix(settings))


def school_of_user(settings: Settings, user: str) -> str | None:
    """The school a Kafka user belongs to in this deployment, else None."""
    return _suffix_id(user, f"{settings.topic_prefix}.school.")


def secured(settings: Settings) -> bool:
    return settings.kafka_security_protocol != "PLAINTEXT"


def login(settings: Settings) -> tuple[str, Secret]:
    """The user and password a client logs in with: DUALTRACK_KAFKA_USERNAME and _PASSWORD, or, with
    neither set, the local `worker` (its password from the settings or the local secrets file)."""
    if settings.kafka_username:
        if settings.kafka_password is None:
            raise ConfigError(
                f"DUALTRACK_KAFKA_USERNAME is {settings.kafka_username!r} but DUALTRACK_KAFKA_PASSWORD "
                "is unset"
            )
        return settings.kafka_username, Secret(settings.kafka_password.get_secret_value())
    if settings.kafka_password is not None:
        raise ConfigError("DUALTRACK_KAFKA_PASSWORD is set without DUALTRACK_KAFKA_USERNAME")
    return WORKER, secret(settings, "kafka_worker")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """With SASL_SSL: a context that verifies the broker against DUALTRACK_KAFKA_CA_FILE (or the
    system's CAs) and its host name; None otherwise."""
    if settings.kafka_security_protocol != "SASL_SSL":
        return None
    ca = settings.kafka_ca_file
    if ca is not None and not ca.is_file():
        raise ConfigError(f"DUALTRACK_KAFKA_CA_FILE {ca} is not a file")
    try:
        return ssl.create_default_context(cafile=str(ca) if ca else None)
    except ssl.SSLError as err:
        raise ConfigError(
            f"DUALTRACK_KAFKA_CA_FILE {ca} is not a PEM CA certificate ({err.reason})"
        ) from None


_quieted = False


def _quiet_scram_warning() -> None:
    """kafka-python warns "Exchanging credentials in the clear" on every SASL_PLAINTEXT login, also for
    SCRAM, which never sends the password (only a salted proof); the warning would be the one line of
    stderr a school's operator reads. What SASL_PLAINTEXT does expose, the events, docs/security.md says."""
    global _quieted
    if not _quieted:
        logging.getLogger("kafka.net.sasl.scram").addFilter(
            lambda record: "credentials in the clear" not in record.getMessage()
        )
        _quieted = True


def _options(settings: Settings, user: str, password: Secret) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if secured(settings):
        _quiet_scram_warning()
        options.update(sasl_mechanism=MECHANISM, sasl_plain_username=user, sasl_plain_password=password)
        if settings.kafka_security_protocol == "SASL_SSL":
            options["ssl_context"] = ssl_context(settings)
    return options


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any kafka-python client (KafkaProducer, KafkaConsumer, KafkaAdminClient):
    bootstrap servers, protocol and, when secured, the SCRAM login of `login(settings)`."""
    if not secured(settings):
        return _options(settings, "", Secret(""))
    return _options(settings, *login(settings))


def gateway_client_options(settings: Settings) -> dict[str, Any]:
    """As kafka_client_options, logged in as `gateway` (its password from the settings or the local
    secrets file): the HTTPS gateway's producer."""
    if not secured(settings):
        return _options(settings, "", Secret(""))
    return _options(settings, GATEWAY, secret(settings, "kafka_gateway"))


def kafka_admin_options(settings: Settings, create: bool = False) -> dict[str, Any]:
    """As kafka_client_options, logged in as the super user `admin` (the administrator's commands)."""
    return _options(
        settings, ADMIN, secret(settings, "kafka_admin", create) if secured(settings) else Secret("")
    )


def faust_broker_credentials(settings: Settings) -> Any:
    """`faust.App(broker_credentials=...)`: SASL/SCRAM credentials (with the TLS context under SASL_SSL)
    of `login(settings)`, or None for PLAINTEXT."""
    if not secured(settings):
        return None
    import faust

    user, password = login(settings)
    return faust.SASLCredentials(
        username=user, password=password, mechanism=MECHANISM, ssl_context=ssl_context(settings)
    )


#: attempts of one admin call, and the pause after the first failure (doubling): 3.5 s in all, about
#: what a KRaft cluster takes to stop pointing clients at a broker it has lost
ADMIN_ATTEMPTS, ADMIN_PAUSE = 4, 0.5


class RetryingAdmin:
    """A kafka-python KafkaAdminClient whose calls are tried again when the broker they went to cannot
    be reached. With several brokers and one down, a call can go to the dead one (a bootstrap address,
    or metadata from before it was fenced); the next attempt goes to a live one. Every admin call the
    project makes is safe to repeat (creating what exists is ignored, credentials are upserts)."""

    def __init__(self, client: Any, attempts: int = ADMIN_ATTEMPTS) -> None:
        self._client = client
        self._attempts = attempts

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name == "close":
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            import time

            from kafka.errors import KafkaError

            pause = ADMIN_PAUSE
            for attempt in range(1, self._attempts + 1):
                try:
                    return attr(*args, **kwargs)
                except KafkaError as err:  # a broker that refused, dropped or timed out; not a refusal
                    if not err.retriable or attempt == self._attempts:
                        raise
                    log.info("kafka admin %s: %s; trying again in %.1fs", name, type(err).__name__, pause)
                    time.sleep(pause)
                    pause *= 2
            raise AssertionError("unreachable")

        return call


def kafka_admin(options: dict[str, Any], **extra: Any) -> Any:
    """A KafkaAdminClient with `options` (kafka_client_options or kafka_admin_options), its calls retried
    when a broker of several is down (`RetryingAdmin`)."""
    from kafka.admin import KafkaAdminClient

    return RetryingAdmin(KafkaAdminClient(**options, **extra))
