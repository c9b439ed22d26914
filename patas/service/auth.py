"""API keys: created by ``patas apikey create NAME --role ROLE``, stored hashed, sent as ``X-API-Key``.

A token is ``patas_`` + 32 random bytes (url-safe base64); the table keeps its sha256 and a short
prefix for display, never the token. Roles are ordered: reader (reads and match) < operator
(+ ingest, mine, evaluate, promote by profile) < admin (+ manual rule actions and keys).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from patas.service.db import ensure_schema

ROLES = ("reader", "operator", "admin")
ROLE_RANK = {r: i for i, r in enumerate(ROLES)}
TOKEN_PREFIX = "patas_"


class ApiKeyError(ValueError):
    """A key that cannot be created or revoked (bad role, name taken, unknown key)."""


@dataclass(frozen=True)
class Caller:
    key_id: int
    name: str
    role: str

    def allows(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def actor(self) -> str:
        """The audit actor of this caller's manual actions."""
        return f"api:{self.name}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(conn: psycopg.Connection, name: str, role: str, *, created_by: str) -> dict[str, Any]:
    """A new key; the returned dict holds the token, which is not stored and not shown again."""
    name = " ".join((name or "").split())
    if not name or len(name) > 100:
        raise ApiKeyError("a key needs a name of 1 to 100 characters")
    if role not in ROLE_RANK:
        raise ApiKeyError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    ensure_schema(conn)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with conn.transaction():
            key_id = conn.execute(
                "insert into patas.api_keys (name, role, token_sha256, token_prefix, created_by) "
                "values (%s, %s, %s, %s, %s) returning key_id",
                (name, role, token_hash(token), token[: len(TOKEN_PREFIX) + 6], created_by),
            ).fetchone()[0]
    except psycopg.errors.UniqueViolation:
        raise ApiKeyError(f"an active key named {name!r} exists already (revoke it first)") from None
    return {"key_id": key_id, "name": name, "role": role, "token": token}


def list_keys(conn: psycopg.Connection, *, include_revoked: bool = False) -> list[dict[str, Any]]:
    ensure_schema(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select key_id, name, role, token_prefix, created_at, created_by, revoked_at, last_used_at "
            "from patas.api_keys where %s or revoked_at is null order by key_id",
            (include_revoked,),
        ).fetchall()
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows]


def revoke_key(conn: psycopg.Connection, ref: str) -> dict[str, Any]:
    """Revoke the active key named ``ref`` (or with key id ``ref``)."""
    ensure_schema(conn)
    with conn.transaction():
        row = conn.execute(
            "update patas.api_keys set revoked_at = now() "
            "where revoked_at is null and (name = %s or key_id::text = %s) returning key_id, name, role",
            (ref, ref),
        ).fetchone()
    if row is None:
        raise ApiKeyError(f"no active key {ref!r}")
    return {"key_id": row[0], "name": row[1], "role": row[2], "revoked": True}


def lookup(conn: psycopg.Connection, token: str) -> Caller | None:
    """The caller a token belongs to (None: unknown or revoked). Marks the key used (coarsely)."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = conn.execute(
        "select key_id, name, role, last_used_at is null or last_used_at < now() - interval '1 minute' "
        "from patas.api_keys where token_sha256 = %s and revoked_at is null",
        (token_hash(token),),
    ).fetchone()
    if row is None:
        return None
    if row[3]:
        conn.execute("update patas.api_keys set last_used_at = now() where key_id = %s", (row[0],))
    return Caller(row[0], row[1], row[2])
