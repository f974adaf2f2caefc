"""What the run engine and the scheduler need from a connection at run time.

No permission checks here: callers have checked the export's permission already. Re-exported by
:mod:`segsync.services.connections.manage`, which is where callers import them from.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from segsync.destinations.base import ConnectionConfig
from segsync.domain.outbound import outbound_problem
from segsync.domain.permissions import Actor, Role
from segsync.errors import FatalError
from segsync.services.connections.checks import HEALTH_SECRET_UNREADABLE
from segsync.services.connections.validation import audit_connection, current_secret
from segsync.services.context import LOCAL_ADMIN, ServiceContext
from segsync.storage.repositories.accounts import UserRepository
from segsync.storage.repositories.connections import ConnectionRecord, ConnectionRepository
from segsync.storage.repositories.exports import ExportRepository


def connection_config(ctx: ServiceContext, connection_id: int) -> tuple[str, ConnectionConfig]:
    """The destination type and the :class:`ConnectionConfig` (key in clear) to run with.

    The key is decrypted, or its reference resolved, now. When it cannot be read the
    connection is flagged ``secret_unreadable`` and ``FatalError`` names the connection.
    Add test seams (transport, clock, sleep) with ``dataclasses.replace`` on the result.
    """
    with ctx.db.session() as session:
        record = ConnectionRepository(session).get(connection_id)
    try:
        key = current_secret(ctx, record)
    except FatalError as err:
        flag_connection(ctx, connection_id, HEALTH_SECRET_UNREADABLE, err.message)
        raise
    problem = outbound_problem(record.base_url, ctx.settings.outbound_allow, what="base URL")
    if problem is not None:
        raise FatalError(f"connection {record.name!r}: {problem}")
    config = ConnectionConfig(base_url=record.base_url, api_key=key, rate_limit=record.rate_limit)
    return record.type, config


def flag_connection(ctx: ServiceContext, connection_id: int, health: str, message: str) -> None:
    """Record what a run found out about the connection: ``key_rejected`` after a 401 (X12),
    ``secret_unreadable``, ``unreachable``... The flag stays until the connection passes Connect
    again (``segsync connections test``). A change of health is audited."""
    with ctx.db.session() as session:
        repo = ConnectionRepository(session)
        before = repo.get(connection_id)
        repo.set_health(connection_id, health, message, at=ctx.now())
        if before.health != health:
            audit_connection(
                ctx,
                session,
                "connection.flagged",
                before.name,
                f"Connection {before.name!r} flagged {health}",
                {"health": health, "message": message},
            )


def export_actor(ctx: ServiceContext, connection_id: int) -> Actor:
    """Under whose authority scheduled runs of exports on this connection act (C3): the export
    user, or the local administrator when there is none. ``FatalError`` saying so when the export
    user was removed or is no longer an administrator."""
    with ctx.db.session() as session:
        record = ConnectionRepository(session).get(connection_id)
        if record.export_user_id is None:
            return LOCAL_ADMIN
        user = UserRepository(session).get(record.export_user_id)
    fix = f"set another with `segsync connections edit {record.name!r} --export-user EMAIL`"
    if user.removed:
        raise FatalError(
            f"the export user {user.email} of connection {record.name!r} was removed; {fix}"
        )
    if user.role != Role.ADMINISTRATOR.value:
        raise FatalError(
            f"the export user {user.email} of connection {record.name!r} is no longer an "
            f"administrator; {fix}"
        )
    return Actor(user_id=user.id, email=user.email, role=Role.ADMINISTRATOR)


def record_account(
    ctx: ServiceContext, session: Session, record: ConnectionRecord, instance_id: str | None
) -> list[str]:
    """After a successful check: remember which destination account the connection reached.

    When it is another account than the one its exports were synced to (a new key or base URL
    for a different Autopilot instance), their sync state describes the old account: it is reset
    (contacts, memberships, lists), so the next run sends everyone to the new one instead of
    finding "nothing changed". Returns the names of the exports that were reset (audited)."""
    if instance_id is None:
        return []
    previous = record.instance_id
    repo = ConnectionRepository(session)
    repo.set_health(
        record.id, record.health, record.health_message, at=ctx.now(), instance_id=instance_id
    )
    if previous is None or previous == instance_id:
        return []
    exports = ExportRepository(session)
    using = repo.exports_using(record.id)
    for export_id, _ in using:
        exports.reset_sync_state(export_id)
    names = [name for _, name in using]
    audit_connection(
        ctx,
        session,
        "connection.account_changed",
        record.name,
        f"Connection {record.name!r} now reaches another {record.type} account; the sync state "
        f"of {len(names)} export(s) was reset so their next runs send everyone there",
        {"previous_instance": previous, "instance": instance_id, "exports_reset": names},
    )
    return names
