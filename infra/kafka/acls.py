"""The broker's users and ACLs, through kafka-python's Admin API: what the worker may do in one
deployment (topic prefix), and what one school may do (write its own intake topic, nothing else).

Every function takes an open KafkaAdminClient logged in as `admin` (see `admin_client`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from foundation.errors import InfraError
from foundation.kafka_auth import (
    GATEWAY,
    MECHANISM,
    WORKER,
    intake_prefix,
    kafka_admin,
    kafka_admin_options,
    school_topic,
    school_user,
)
from foundation.localsecrets import secret
from foundation.settings import Settings


@contextlib.contextmanager
def admin_client(settings: Settings, create: bool = False) -> Iterator[Any]:
    """A KafkaAdminClient logged in as `admin`; one line of InfraError when the broker cannot be
    reached or refuses the login."""
    from kafka.errors import KafkaError

    options = kafka_admin_options(settings, create)
    try:
        admin = kafka_admin(
            options, client_id="dualtrack-admin", request_timeout_ms=10000, bootstrap_timeout_ms=8000
        )
    except KafkaError:
        raise InfraError(
            f"cannot log in to Kafka at {settings.kafka_bootstrap_servers} as admin: the broker is down, or "
            "it refuses the admin password (DUALTRACK_KAFKA_ADMIN_PASSWORD or the local secrets file)"
        ) from None
    try:
        yield admin
    finally:
        admin.close()


def _acl(principal: str, op: str, resource: str, name: str, pattern: str, allow: bool = True) -> Any:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType
    from kafka.admin import ACLResourcePatternType as Pattern

    return ACL(
        principal=f"User:{principal}", host="*", operation=ACLOperation[op],
        permission_type=ACLPermissionType.ALLOW if allow else ACLPermissionType.DENY,
        resource_pattern=ResourcePattern(ResourceType[resource], name, Pattern[pattern]),
    )  # fmt: skip


def worker_acls(settings: Settings) -> list[Any]:
    """The worker reads every school's intake topic and reads, writes and creates the deployment's other
    topics (`<prefix>.*`) and Faust's own (`<prefix>-worker-*`), in its consumer groups
    (`<prefix>-worker*`). A DENY keeps it from writing or creating intake topics: only a school speaks
    for itself."""
    p = settings.topic_prefix
    ops = ("READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS")
    return [
        *(_acl(WORKER, op, "TOPIC", f"{p}.", "PREFIXED") for op in ops),
        *(_acl(WORKER, op, "TOPIC", f"{p}-worker-", "PREFIXED") for op in ops),
        *(
            _acl(WORKER, op, "TOPIC", intake_prefix(settings), "PREFIXED", allow=False)
            for op in ("WRITE", "CREATE")
        ),
        *(_acl(WORKER, op, "GROUP", f"{p}-worker", "PREFIXED") for op in ("READ", "DESCRIBE")),
    ]


def gateway_acls(settings: Settings) -> list[Any]:
    """The gateway writes every school's intake topic (the school it writes for is the one whose token
    came with the body) and the dead letters (a line it refuses never reaches an intake topic); it reads
    nothing and creates nothing."""
    dead = settings.topic("dead-letters")
    return [
        *(_acl(GATEWAY, op, "TOPIC", intake_prefix(settings), "PREFIXED") for op in ("WRITE", "DESCRIBE")),
        *(_acl(GATEWAY, op, "TOPIC", dead, "LITERAL") for op in ("WRITE", "DESCRIBE")),
    ]


def school_acls(settings: Settings, school_id: str) -> list[Any]:
    """WRITE and DESCRIBE on the school's own intake topic; nothing else."""
    user, topic = school_user(settings, school_id), school_topic(settings, school_id)
    return [_acl(user, op, "TOPIC", topic, "LITERAL") for op in ("WRITE", "DESCRIBE")]


def add_acls(admin: Any, acls: list[Any]) -> None:
    """Create ACLs (an existing one is left as it is)."""
    result = admin.create_acls(acls)
    if result["failed"]:
        raise InfraError(f"Kafka refused {len(result['failed'])} ACL(s): {result['failed'][0]}")


def principal_acls(admin: Any, user: str) -> list[Any]:
    """Every ACL that names this user."""
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter, ResourceType
    from kafka.admin import ACLResourcePatternType as Pattern

    acls, _ = admin.describe_acls(
        ACLFilter(f"User:{user}", None, ACLOperation.ANY, ACLPermissionType.ANY,
                  ResourcePatternFilter(ResourceType.ANY, None, Pattern.ANY))
    )  # fmt: skip
    return list(acls)


def delete_principal_acls(admin: Any, user: str) -> int:
    """Delete every ACL that names this user; returns how many there were."""
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter, ResourceType
    from kafka.admin import ACLResourcePatternType as Pattern

    everything = ResourcePatternFilter(ResourceType.ANY, None, Pattern.ANY)
    results = admin.delete_acls(
        [ACLFilter(f"User:{user}", None, ACLOperation.ANY, ACLPermissionType.ANY, everything)]
    )
    return sum(len(matched) for _, matched, _ in results)


def scram_users(admin: Any) -> set[str]:
    """The users that have a SCRAM-SHA-512 credential."""
    wanted = MECHANISM.replace("-", "_")  # ScramMechanism.SCRAM_SHA_512
    described = admin.describe_user_scram_credentials()
    return {
        user for user, info in described.items()
        if not info["error"] and any(c["mechanism"].name == wanted for c in info["credential_infos"])
    }  # fmt: skip


def set_password(admin: Any, user: str, password: str) -> None:
    """Create the user's SCRAM-SHA-512 credential, or replace it (the old password stops working for
    new logins at once)."""
    from kafka.admin import UserScramCredentialUpsertion

    errors = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(user, MECHANISM, password)])
    if errors.get(user):
        raise InfraError(f"Kafka refused the credential of user {user}: {errors[user]}")


def delete_user(admin: Any, user: str) -> None:
    from kafka.admin import UserScramCredentialDeletion

    errors = admin.alter_user_scram_credentials([UserScramCredentialDeletion(user, MECHANISM)])
    if errors.get(user):
        raise InfraError(f"Kafka refused to delete user {user}: {errors[user]}")


def ensure_worker(settings: Settings) -> None:
    """The `worker` user with its password (settings or the local secrets file) and its ACLs for this
    deployment; safe to run again (`dualtrack infra up` does at every start)."""
    with admin_client(settings, create=True) as admin:
        set_password(admin, WORKER, secret(settings, "kafka_worker", create=True))
        add_acls(admin, worker_acls(settings))


def ensure_gateway(settings: Settings) -> None:
    """The `gateway` user with its password (settings or the local secrets file) and its ACLs for this
    deployment; safe to run again (`dualtrack infra up` does at every start)."""
    with admin_client(settings, create=True) as admin:
        set_password(admin, GATEWAY, secret(settings, "kafka_gateway", create=True))
        add_acls(admin, gateway_acls(settings))
