"""Checking what a user typed for a connection, and reading its secret back.

Shared by the connection use cases (:mod:`segsync.services.connections.manage`) and the run-time
helpers (:mod:`segsync.services.connections.runtime`). Every refusal is an ``InputError`` naming
the setting and what is wrong; nothing here ever puts the key in a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from segsync.domain.emails import mask_secret
from segsync.domain.outbound import outbound_problem
from segsync.domain.permissions import Actor, Role
from segsync.domain.untrusted import api_key_problem, clip
from segsync.errors import FatalError, InputError, NotFound
from segsync.services.context import LOCAL_ADMIN, ServiceContext
from segsync.services.privacy import audit
from segsync.services.privacy.secrets import SecretBox, resolve_secret_ref, validate_secret_ref
from segsync.settings import Settings
from segsync.storage.repositories.accounts import UserRepository
from segsync.storage.repositories.connections import ConnectionRecord

MAX_RATE_LIMIT = 1000.0
MAX_NAME_LENGTH = 200
MAX_HINT_LENGTH = 32


@dataclass(frozen=True)
class SecretInput:
    """A key as it will be stored (``ciphertext`` or ``ref``, and ``hint``) and, for the check
    only, in clear (``plain``, out of ``repr``)."""

    ciphertext: bytes | None
    ref: str | None
    hint: str
    plain: str = field(repr=False)


def valid_name(name: str) -> str:
    value = name.strip()
    if not value:
        raise InputError("the connection name is empty; give it a display name")
    if len(value) > MAX_NAME_LENGTH:
        raise InputError(
            f"the connection name has {len(value)} characters; at most {MAX_NAME_LENGTH}"
        )
    return value


def valid_base_url(url: str, settings: Settings) -> str:
    """The base URL trimmed; refused unless an http(s) URL with a host, without credentials,
    that the outbound allow-list (``SEGSYNC_OUTBOUND_ALLOW``) lets segsync call."""
    value = url.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise InputError(f"base URL {clip(url)!r} is not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InputError(f"base URL {clip(url)!r} must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        # The base URL appears in run messages and logs; credentials go in the API key only.
        raise InputError(
            "base URL must not contain a user name or password; "
            "the API key is given separately (--api-key-env or --secret-ref)"
        )
    problem = outbound_problem(value, settings.outbound_allow, what="base URL")
    if problem is not None:
        raise InputError(problem)
    return value


def valid_rate_limit(rate: float) -> float:
    if not 0 < rate <= MAX_RATE_LIMIT:
        raise InputError(
            f"rate limit {rate:g} must be above 0 and at most {MAX_RATE_LIMIT:g} requests/second"
        )
    return float(rate)


def valid_contract_limit(limit: int) -> int:
    if limit < 1:
        raise InputError(f"contract limit {limit} must be at least 1 profile")
    return int(limit)


def valid_api_key(api_key: str) -> str:
    """The key trimmed; ``InputError`` naming what is wrong (never the key) otherwise."""
    key = api_key.strip()
    problem = api_key_problem(key)
    if problem is not None:
        raise InputError(f"{problem} (nothing was saved or sent)")
    return key


def secret_from_input(
    ctx: ServiceContext, api_key: str | None, secret_ref: str | None
) -> SecretInput:
    """Exactly one of a key (encrypted now) or a reference (resolved now, to check it)."""
    if (api_key is None) == (secret_ref is None):
        raise InputError(
            "give either the API key or a secret reference (env:NAME or file:PATH), exactly one"
        )
    if api_key is not None:
        key = valid_api_key(api_key)
        box = SecretBox.from_settings(ctx.settings)
        return SecretInput(box.encrypt(key), None, mask_secret(key), key)
    assert secret_ref is not None
    ref = validate_secret_ref(secret_ref)
    try:
        plain = resolve_secret_ref(ref)
    except FatalError as err:
        raise InputError(f"{err.message} (nothing was saved)") from None
    hint = ref if len(ref) <= MAX_HINT_LENGTH else ref[: MAX_HINT_LENGTH - 1] + "…"
    return SecretInput(None, ref, hint, plain)


def current_secret(ctx: ServiceContext, record: ConnectionRecord) -> str:
    """The connection's key in clear; ``FatalError`` naming the connection if unreadable."""
    what = f"connection {record.name!r}"
    if record.secret_ref is not None:
        try:
            return resolve_secret_ref(record.secret_ref)
        except FatalError as err:
            raise FatalError(f"{what}: {err.message}") from None
    if record.secret_ciphertext is None:
        raise FatalError(f"{what} has no API key; edit it and enter one")
    return SecretBox.from_settings(ctx.settings).decrypt(record.secret_ciphertext, what=what)


def export_user_id(session: Session, email: str | None, actor: Actor) -> int | None:
    """The export user for ``email`` (an administrator); by default the acting administrator
    (``None`` for the local administrator). ``local-admin`` names the local administrator."""
    if email is None:
        return actor.user_id if actor.role is Role.ADMINISTRATOR else None
    if email.strip() == LOCAL_ADMIN.email:
        return None
    user = UserRepository(session).find_active(email.strip().lower())
    if user is None:
        raise NotFound(f"no user with the email {email!r} to be the export user")
    if user.role != Role.ADMINISTRATOR.value:
        raise InputError(f"the export user must be an administrator; {user.email} is a {user.role}")
    return user.id


def audit_connection(
    ctx: ServiceContext,
    session: Session,
    action: str,
    target: str,
    summary: str,
    details: dict[str, Any] | None = None,
) -> None:
    """An audit event about a connection, in the caller's transaction."""
    audit.record(
        session,
        at=ctx.now(),
        actor=ctx.actor,
        action=action,
        target_type="connection",
        target=target,
        summary=summary,
        details=details,
    )
