"""The permission matrix of R1–R6 (and our decisions for detached exports), cell by cell."""

from __future__ import annotations

import pytest

from segsync.domain.permissions import (
    Action,
    Actor,
    ConnectionRef,
    Decision,
    ExportRef,
    Role,
    decide,
    export_permission_label,
    may_use_connection,
    require,
)
from segsync.errors import PermissionDenied

SHARED = ConnectionRef(1, shared_with_contributors=True, name="Marketing")
PRIVATE = ConnectionRef(2, shared_with_contributors=False, name="Finance")
TARGETS: dict[str, ConnectionRef | ExportRef | None] = {
    "none": None,
    "conn_shared": SHARED,
    "conn_unshared": PRIVATE,
    "export_shared": ExportRef(10, SHARED, name="Newsletter"),
    "export_unshared": ExportRef(11, PRIVATE, name="Invoices"),
    "export_detached": ExportRef(12, None, name="Old promo"),
}
ACTORS = {
    Role.ADMINISTRATOR: Actor(1, "admin@example.com", Role.ADMINISTRATOR),
    Role.CONTRIBUTOR: Actor(2, "carol@example.com", Role.CONTRIBUTOR),
    Role.VIEWER: Actor(3, "vic@example.com", Role.VIEWER),
}
A, C, V = Role.ADMINISTRATOR, Role.CONTRIBUTOR, Role.VIEWER
EXPORT_TARGETS = {"export_shared": {A, C}, "export_unshared": {A}, "export_detached": {A}}

# (action, target) → the roles allowed. Written out from docs/requirements.md, independently of
# the policy.
MATRIX: dict[tuple[Action, str], set[Role]] = {
    (Action.VIEW, "none"): {A, C, V},  # R2
    (Action.MANAGE_OWN_TOKENS, "none"): {A, C, V},
    (Action.MANAGE_USERS, "none"): {A},  # R1
    (Action.MANAGE_CONNECTIONS, "none"): {A},  # R6
    (Action.MANAGE_CONNECTIONS, "conn_shared"): {A},  # R6: sharing does not delegate management
    (Action.VIEW_CONNECTION_SETTINGS, "conn_shared"): {A},  # R5
    (Action.VIEW_CONNECTION_SETTINGS, "conn_unshared"): {A},
    (Action.USE_CONNECTION, "conn_shared"): {A, C},  # E1, R3
    (Action.USE_CONNECTION, "conn_unshared"): {A},
    (Action.MANAGE_SCHEDULE, "none"): {A},  # R6
    (Action.MANAGE_PROFILES, "none"): {A},
    (Action.CREATE_SEGMENT, "none"): {A, C},  # R3
    (Action.EDIT_SEGMENT, "none"): {A, C},
    (Action.REFRESH_SEGMENT, "none"): {A, C},
    (Action.DELETE_SEGMENT, "none"): {A, C},
    (Action.CREATE_EXPORT, "none"): {A, C},
    (Action.CREATE_EXPORT, "conn_shared"): {A, C},  # R3
    (Action.CREATE_EXPORT, "conn_unshared"): {A},
    (Action.RUN_ALL, "none"): {A},
    (Action.FORGET_PERSON, "none"): {A},
    (Action.READ_AUDIT, "none"): {A},
    **{
        (action, target): roles
        for action in (
            Action.EDIT_EXPORT,
            Action.RUN_EXPORT,
            Action.SCHEDULE_EXPORT,
            Action.REMOVE_EXPORT,
            Action.CANCEL_RUN,
        )
        for target, roles in EXPORT_TARGETS.items()
    },
}

CASES = [
    (role, action, target)
    for (action, target) in MATRIX
    for role in (Role.ADMINISTRATOR, Role.CONTRIBUTOR, Role.VIEWER)
]


def test_the_matrix_covers_every_action() -> None:
    assert {action for action, _ in MATRIX} == set(Action)


@pytest.mark.parametrize(
    ("role", "action", "target"), CASES, ids=[f"{r}-{a}-{t}" for r, a, t in CASES]
)
def test_permission_matrix(role: Role, action: Action, target: str) -> None:
    decision = decide(ACTORS[role], action, TARGETS[target])
    expected = role in MATRIX[(action, target)]
    assert decision.allowed is expected
    if expected:
        require(ACTORS[role], action, TARGETS[target])
    else:
        assert decision.reason, "a refusal always says why"
        with pytest.raises(PermissionDenied) as info:
            require(ACTORS[role], action, TARGETS[target])
        assert str(info.value) == decision.reason


def test_contributor_may_manage_someone_elses_export_on_a_shared_connection() -> None:
    # R3: the policy does not look at who created the export.
    other = ExportRef(99, SHARED, name="Made by another contributor")
    contributor = ACTORS[Role.CONTRIBUTOR]
    for action in (Action.EDIT_EXPORT, Action.RUN_EXPORT, Action.REMOVE_EXPORT):
        assert decide(contributor, action, other).allowed


@pytest.mark.parametrize(
    ("action", "target", "message"),
    [
        (Action.RUN_EXPORT, "export_shared", "viewers can see exports but not run them"),
        (Action.REMOVE_EXPORT, "export_shared", "viewers can see exports but not remove them"),
        (Action.CREATE_SEGMENT, "none", "viewers can see segments but not create them"),
        (Action.CANCEL_RUN, "export_shared", "viewers can see runs but not cancel them"),
        (Action.MANAGE_CONNECTIONS, "none", "only administrators manage connections"),
    ],
)
def test_viewer_refusals_say_what_viewers_may_do(action: Action, target: str, message: str) -> None:
    assert decide(ACTORS[Role.VIEWER], action, TARGETS[target]).reason == message


def test_contributor_refusals_name_the_rule_and_the_object() -> None:
    contributor = ACTORS[Role.CONTRIBUTOR]
    reason = decide(contributor, Action.EDIT_EXPORT, TARGETS["export_unshared"]).reason
    assert reason.startswith(
        "contributors may only manage exports on connections an administrator shared with "
        "contributors"
    )
    assert "'Invoices'" in reason
    assert "'Finance'" in reason
    detached = decide(contributor, Action.RUN_EXPORT, TARGETS["export_detached"]).reason
    assert "'Old promo' has no connection" in detached
    assert "only administrators" in detached
    assert (
        decide(contributor, Action.VIEW_CONNECTION_SETTINGS, SHARED).reason
        == "only administrators see a connection's settings and secret; "
        "others see its display name and type"
    )
    assert (
        decide(contributor, Action.MANAGE_SCHEDULE).reason
        == "only administrators change the system refresh schedule"
    )
    assert decide(contributor, Action.MANAGE_USERS).reason == (
        "only administrators manage users and roles"
    )


def test_refusal_without_a_name_uses_the_id() -> None:
    reason = decide(ACTORS[Role.CONTRIBUTOR], Action.USE_CONNECTION, ConnectionRef(7, False)).reason
    assert "connection 7 is not shared" in reason


@pytest.mark.parametrize(
    ("role", "target", "label"),
    [
        (A, "export_shared", "edit"),
        (A, "export_unshared", "edit"),
        (A, "export_detached", "edit"),
        (C, "export_shared", "edit"),
        (C, "export_unshared", "view"),
        (C, "export_detached", "view"),
        (V, "export_shared", "view"),
        (V, "export_unshared", "view"),
        (V, "export_detached", "view"),
    ],
)
def test_your_permissions_label(role: Role, target: str, label: str) -> None:
    export = TARGETS[target]
    assert isinstance(export, ExportRef)
    assert export_permission_label(ACTORS[role], export) == label


def test_usable_connections_filter() -> None:
    connections = [SHARED, PRIVATE]
    usable = {
        role: [c.name for c in connections if may_use_connection(ACTORS[role], c)] for role in Role
    }
    assert usable == {A: ["Marketing", "Finance"], C: ["Marketing"], V: []}


def test_narrowing_sharing_takes_effect_on_existing_exports() -> None:
    # C4: sharing is a property of the connection, read at decision time.
    before = ExportRef(5, ConnectionRef(3, True))
    after = ExportRef(5, ConnectionRef(3, False))
    assert decide(ACTORS[Role.CONTRIBUTOR], Action.RUN_EXPORT, before).allowed
    assert not decide(ACTORS[Role.CONTRIBUTOR], Action.RUN_EXPORT, after).allowed


def test_local_cli_administrator_without_user_id_may_do_everything() -> None:
    local = Actor(None, "local", Role.ADMINISTRATOR)
    assert all(decide(local, action, TARGETS[target]) for action, target in MATRIX)


@pytest.mark.parametrize(
    ("action", "target"),
    [
        (Action.EDIT_EXPORT, None),
        (Action.RUN_EXPORT, SHARED),
        (Action.USE_CONNECTION, None),
        (Action.USE_CONNECTION, TARGETS["export_shared"]),
        (Action.CREATE_EXPORT, TARGETS["export_shared"]),
    ],
)
def test_a_missing_or_wrong_target_is_a_programming_error(
    action: Action, target: ConnectionRef | ExportRef | None
) -> None:
    with pytest.raises(TypeError):
        decide(ACTORS[Role.ADMINISTRATOR], action, target)


def test_decision_is_truthy_only_when_allowed() -> None:
    assert Decision(True)
    assert not Decision(False, "no")
