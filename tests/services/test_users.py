"""Users, roles, passwords and API tokens through the services layer (R1, R2, I2)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from segsync.domain.permissions import Actor, Role
from segsync.errors import Conflict, InputError, NotFound, PermissionDenied
from segsync.services import users
from segsync.services.context import LOCAL_ADMIN, ServiceContext
from segsync.services.privacy import audit
from segsync.storage.models.accounts import ApiToken, User

PASSWORD = "correct horse battery"


@pytest.fixture
def ctx(service_context: ServiceContext) -> ServiceContext:
    return service_context


def as_admin(ctx: ServiceContext) -> ServiceContext:
    return ServiceContext(settings=ctx.settings, db=ctx.db, now=ctx.now, actor=LOCAL_ADMIN)


def acting(ctx: ServiceContext, role: Role) -> Actor:
    email = f"{role.value}@example.com"
    with contextlib.suppress(Conflict):
        users.add_user(as_admin(ctx), email, role)
    return users.resolve_actor(ctx, email)


def actions(ctx: ServiceContext) -> list[str]:
    return [event.action for event in audit.list_events(as_admin(ctx))]


def test_users_are_added_with_normalised_emails_and_hashed_passwords(ctx: ServiceContext) -> None:
    added = users.add_user(ctx, "  Jane@Example.COM ", "Contributor", PASSWORD)
    assert (added.email, added.role, added.has_password) == (
        "jane@example.com",
        Role.CONTRIBUTOR,
        True,
    )
    with ctx.db.session() as session:
        row = session.scalars(select(User)).one()
        assert row.password_hash is not None
        assert row.password_hash.startswith("$argon2")
        assert PASSWORD not in row.password_hash
    assert [u.email for u in users.list_users(ctx)] == ["jane@example.com"]
    events = audit.list_events(ctx)
    assert [(e.action, e.target, e.actor) for e in events] == [
        ("user.added", "jane@example.com", "local-admin")
    ]


@pytest.mark.parametrize(
    ("email", "role", "password", "message"),
    [
        ("not-an-email", "viewer", None, "user email 'not-an-email' is invalid"),
        ("a@example.com", "owner", None, "role 'owner' is not one of"),
        ("a@example.com", "viewer", "short", "5 characters; use at least 12"),
    ],
)
def test_bad_input_is_refused(
    ctx: ServiceContext, email: str, role: str, password: str | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        users.add_user(ctx, email, role, password)
    assert users.list_users(ctx) == []


def test_the_same_email_cannot_be_added_twice(ctx: ServiceContext) -> None:
    users.add_user(ctx, "a@example.com", Role.VIEWER)
    with pytest.raises(Conflict, match="already exists"):
        users.add_user(ctx, "A@example.com", Role.VIEWER)


def test_the_last_administrator_cannot_be_removed_or_demoted(ctx: ServiceContext) -> None:
    users.add_user(ctx, "boss@example.com", Role.ADMINISTRATOR)
    with pytest.raises(Conflict, match="last administrator"):
        users.remove_user(ctx, "boss@example.com")
    with pytest.raises(Conflict, match="last administrator"):
        users.set_role(ctx, "boss@example.com", Role.VIEWER)
    users.add_user(ctx, "second@example.com", Role.ADMINISTRATOR)
    assert users.set_role(ctx, "boss@example.com", Role.VIEWER).role is Role.VIEWER
    users.remove_user(ctx, "boss@example.com")
    assert [u.email for u in users.list_users(ctx)] == ["second@example.com"]
    assert actions(ctx)[-2:] == ["user.role_changed", "user.removed"]


def test_a_removed_user_can_no_longer_act_and_can_be_added_again(ctx: ServiceContext) -> None:
    users.add_user(ctx, "gone@example.com", Role.CONTRIBUTOR, PASSWORD)
    users.remove_user(ctx, "gone@example.com")
    with pytest.raises(NotFound, match=r"no user with the email 'gone@example\.com'"):
        users.resolve_actor(ctx, "gone@example.com")
    with pytest.raises(PermissionDenied):
        users.authenticate(ctx, "gone@example.com", PASSWORD)
    again = users.add_user(ctx, "gone@example.com", Role.VIEWER)
    assert (again.role, again.has_password) == (Role.VIEWER, False)


def test_resolve_actor_gives_the_users_role_and_local_admin_stays_local(
    ctx: ServiceContext,
) -> None:
    added = users.add_user(ctx, "v@example.com", Role.VIEWER)
    assert users.resolve_actor(ctx, "V@example.com") == Actor(
        added.id, "v@example.com", Role.VIEWER
    )
    assert users.resolve_actor(ctx, "local-admin") == LOCAL_ADMIN
    with pytest.raises(NotFound):
        users.resolve_actor(ctx, "nobody@example.com")


def test_authenticate_checks_the_password_with_one_message_for_every_failure(
    ctx: ServiceContext,
) -> None:
    added = users.add_user(ctx, "jane@example.com", Role.CONTRIBUTOR, PASSWORD)
    users.add_user(ctx, "nopass@example.com", Role.VIEWER)
    actor = users.authenticate(ctx, "Jane@example.com", PASSWORD)
    assert actor == Actor(added.id, "jane@example.com", Role.CONTRIBUTOR)
    for email, password in [
        ("jane@example.com", "wrong password!"),
        ("unknown@example.com", PASSWORD),
        ("nopass@example.com", PASSWORD),
        ("", PASSWORD),
    ]:
        with pytest.raises(PermissionDenied, match=r"^the email or password is wrong$"):
            users.authenticate(ctx, email, password)


def test_a_user_may_set_their_own_password_but_not_someone_elses(ctx: ServiceContext) -> None:
    viewer = acting(ctx, Role.VIEWER)
    users.add_user(ctx, "other@example.com", Role.VIEWER)
    ctx.actor = viewer
    users.set_password(ctx, viewer.email, PASSWORD)
    assert users.authenticate(ctx, viewer.email, PASSWORD) == viewer
    with pytest.raises(PermissionDenied, match="only administrators manage users"):
        users.set_password(ctx, "other@example.com", PASSWORD)


def test_init_admin_creates_the_first_administrator_once(ctx: ServiceContext) -> None:
    user, created = users.init_admin(ctx, "Root@Example.com", PASSWORD)
    assert (user.email, user.role, created) == ("root@example.com", Role.ADMINISTRATOR, True)
    assert users.init_admin(ctx, "root@example.com", None) == (user, False)
    with pytest.raises(Conflict, match="an administrator already exists"):
        users.init_admin(ctx, "other@example.com", PASSWORD)
    assert users.authenticate(ctx, "root@example.com", PASSWORD).role is Role.ADMINISTRATOR


# --- API tokens -----------------------------------------------------------------------------


def test_tokens_are_shown_once_stored_hashed_and_authenticate_their_user(
    ctx: ServiceContext,
) -> None:
    ctx.actor = acting(ctx, Role.CONTRIBUTOR)
    created = users.create_token(ctx, "ci")
    assert created.token.startswith("ssk_")
    assert created.hint == "••••" + created.token[-4:]
    with ctx.db.session() as session:
        row = session.scalars(select(ApiToken)).one()
        assert created.token not in (row.token_hash, row.hint, row.name)
    assert users.authenticate_token(ctx, created.token) == ctx.actor
    listed = users.list_tokens(ctx)
    assert [(t.id, t.name, t.last_used_at) for t in listed] == [(created.id, "ci", ctx.now())]
    users.revoke_token(ctx, created.id)
    with pytest.raises(PermissionDenied, match="unknown or revoked"):
        users.authenticate_token(ctx, created.token)
    with pytest.raises(PermissionDenied, match="unknown or revoked"):
        users.authenticate_token(ctx, "ssk_made-up")
    assert actions(ctx)[-2:] == ["token.created", "token.revoked"]
    assert all(created.token not in str(e.to_dict()) for e in audit.list_events(as_admin(ctx)))


def test_the_local_administrator_has_no_tokens(ctx: ServiceContext) -> None:
    with pytest.raises(InputError, match="--as EMAIL"):
        users.create_token(ctx, "ci")


def test_others_tokens_cannot_be_revoked_by_non_administrators_and_removal_revokes(
    ctx: ServiceContext,
) -> None:
    ctx.actor = acting(ctx, Role.VIEWER)
    token = users.create_token(ctx, "mine")
    ctx.actor = acting(ctx, Role.CONTRIBUTOR)
    with pytest.raises(NotFound):
        users.revoke_token(ctx, token.id)
    ctx.actor = LOCAL_ADMIN
    users.remove_user(ctx, "viewer@example.com")
    with pytest.raises(PermissionDenied):
        users.authenticate_token(ctx, token.token)


# --- the permission matrix (R1, R2) ---------------------------------------------------------

USER_MUTATIONS: dict[str, Callable[[ServiceContext], Any]] = {
    "add": lambda ctx: users.add_user(ctx, "new@example.com", Role.VIEWER),
    "list": lambda ctx: users.list_users(ctx),
    "set_role": lambda ctx: users.set_role(ctx, "target@example.com", Role.CONTRIBUTOR),
    "set_password": lambda ctx: users.set_password(ctx, "target@example.com", PASSWORD),
    "remove": lambda ctx: users.remove_user(ctx, "target@example.com"),
    "read_audit": lambda ctx: audit.list_events(ctx),
}


@pytest.mark.parametrize("operation", sorted(USER_MUTATIONS))
@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR, Role.ADMINISTRATOR])
def test_only_administrators_manage_users_and_read_the_audit_trail(
    ctx: ServiceContext, role: Role, operation: str
) -> None:
    users.add_user(ctx, "target@example.com", Role.VIEWER)
    ctx.actor = acting(ctx, role)
    before = actions(ctx)
    if role is Role.ADMINISTRATOR:
        USER_MUTATIONS[operation](ctx)
        if operation not in {"list", "read_audit"}:
            assert len(actions(ctx)) == len(before) + 1
    else:
        with pytest.raises(PermissionDenied, match="only administrators"):
            USER_MUTATIONS[operation](ctx)
        assert actions(ctx) == before
