"""Each school's HTTP token for the gateway: made here, shown once, kept only as its sha256.

    token = SchoolTokens(store).issue("SD0001", now)   # a new token; the school's old one stops working
    SchoolTokens(store).current()                      # {sha256: school_id} of every live token

A token is 32 random bytes (`secrets.token_urlsafe`), so a plain sha256 is enough to keep it: there is
no password to guess from the hash, and the gateway checks a token with one lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime

from foundation.localsecrets import Secret
from sinks.base import Store

#: every token starts so, which lets a secret scanner (and a person) recognise one
TOKEN_PREFIX = "dtk_"  # noqa: S105 - a prefix, not a secret


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class SchoolTokens:
    """The `school_tokens` table of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _write(self, school_id: str, digest: str, now: datetime) -> None:
        row = {"school_id": school_id, "token_sha256": digest, "issued_at": now, "version": time.time_ns()}
        self.store.insert("school_tokens", [row])

    def issue(self, school_id: str, now: datetime) -> Secret:
        """A new token for the school (the one it had, if any, is refused from now on)."""
        token = Secret(TOKEN_PREFIX + secrets.token_urlsafe(32))
        self._write(school_id, token_hash(token), now)
        return token

    def revoke(self, school_id: str, now: datetime) -> bool:
        """Refuse the school's token from now on; whether it had one."""
        table = self.store.table("school_tokens")
        rows = self.store.query(
            f"SELECT argMax(token_sha256, version) AS h FROM {table} WHERE school_id = {{school:String}}",  # noqa: S608 - identifiers only
            {"school": school_id},
        )
        self._write(school_id, "", now)
        return bool(rows and rows[0]["h"])

    def current(self) -> dict[str, str]:
        """sha256 -> school_id of every school's live token."""
        table = self.store.table("school_tokens")
        rows = self.store.query(
            f"SELECT school_id, argMax(token_sha256, version) AS h FROM {table} GROUP BY school_id"  # noqa: S608 - identifiers only
        )
        return {r["h"]: r["school_id"] for r in rows if r["h"]}
