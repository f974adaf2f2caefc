"""The one permission policy of segsync (R1–R6, C3, C5, E1): "may this user do this to that?".

Every service asks :func:`decide` or :func:`require` before it acts, so the CLI, the web UI and the
API all enforce the same rules. The policy in one table:

==========================  ==============  =============================  ========
action                      administrator   contributor                    viewer
==========================  ==============  =============================  ========
view                        yes             yes                            yes
manage_own_tokens           yes             yes                            yes
create/edit/refresh/delete  yes             yes                            no
segment
create_export               yes             on shared connections          no
edit/run/schedule/remove    yes             exports on shared connections  no
export, cancel_run                          (anyone's, R3); detached: no
use_connection              yes             shared connections             no
manage_users                yes             no                             no
manage_connections          yes             no                             no
view_connection_settings    yes             no (R5)                        no
manage_schedule             yes             no (R6)                        no
manage_profiles             yes             no                             no
run_all                     yes             no                             no
forget_person               yes             no                             no
read_audit                  yes             no                             no
==========================  ==============  =============================  ========

Decisions where docs/requirements.md is silent (ours):

* A **detached** export (no connection, C7) is on no shared connection, so for contributors it is
  view-only: only administrators edit it, attach it to a connection, or remove it. Anyone may view
  it. Permission to *run* a detached export is granted to administrators, but the run itself is
  refused by the services ("has no connection") — that is not a permission matter.
* Moving an export to another connection needs ``edit_export`` on the export *and*
  ``use_connection`` on the new connection; detaching is an ``edit_export``.
* ``run_all`` (X1), ``forget_person`` (P4, reaches every Autopilot instance), ``read_audit`` (P3,
  holds every user's changes and connection details) and ``manage_profiles`` (importing and
  relating profile tables) are administrator-only.
* Everyone sees a connection's display name and type (it appears on every export); that is part of
  ``view``. Its settings (base URL, limits, masked secret hint, consent, export user) are
  ``view_connection_settings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from segsync.errors import PermissionDenied


class Role(StrEnum):
    """A user's role (R1)."""

    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    ADMINISTRATOR = "administrator"


class Action(StrEnum):
    """Everything a user may be allowed or refused to do."""

    #: See exports, segments, runs, run history, rejects and status; connections' names and types.
    VIEW = "view"
    #: Create and revoke one's own API tokens (I2).
    MANAGE_OWN_TOKENS = "manage_own_tokens"
    #: Add, list, change the role of and remove users (R1).
    MANAGE_USERS = "manage_users"
    #: Add, edit, test (Connect), share, set the export user of, and remove connections (R6, C1–C8).
    MANAGE_CONNECTIONS = "manage_connections"
    #: See a connection's settings: base URL, limits, masked secret hint, consent (R5, C5).
    VIEW_CONNECTION_SETTINGS = "view_connection_settings"
    #: Pick this connection for an export (E1). Target: the :class:`ConnectionRef`.
    USE_CONNECTION = "use_connection"
    #: Change the system refresh schedule (R6, T1).
    MANAGE_SCHEDULE = "manage_schedule"
    #: Import profile tables and declare relationships (S1).
    MANAGE_PROFILES = "manage_profiles"
    CREATE_SEGMENT = "create_segment"
    EDIT_SEGMENT = "edit_segment"
    REFRESH_SEGMENT = "refresh_segment"
    DELETE_SEGMENT = "delete_segment"
    #: Create (or duplicate) an export. Target: the chosen :class:`ConnectionRef`, or ``None`` to
    #: ask whether the actor may create exports at all (e.g. to show a "Create" button).
    CREATE_EXPORT = "create_export"
    #: Change an export's settings, including detaching it. Target: the :class:`ExportRef`.
    EDIT_EXPORT = "edit_export"
    #: Start a run (or a dry run) of the export now (X1). Target: the :class:`ExportRef`.
    RUN_EXPORT = "run_export"
    #: Set the export's schedule (E8). Target: the :class:`ExportRef`.
    SCHEDULE_EXPORT = "schedule_export"
    #: Remove the export (E5). Target: the :class:`ExportRef`.
    REMOVE_EXPORT = "remove_export"
    #: Cancel a queued or running run (X8). Target: the run's :class:`ExportRef`.
    CANCEL_RUN = "cancel_run"
    #: Run every export whose schedule is on (X1, "Run all").
    RUN_ALL = "run_all"
    #: Erase a person everywhere they were exported (P4).
    FORGET_PERSON = "forget_person"
    #: Read and export the audit trail (P3).
    READ_AUDIT = "read_audit"


@dataclass(frozen=True)
class Actor:
    """Who acts. ``user_id`` is ``None`` for the local administrator of the CLI."""

    user_id: int | None
    email: str
    role: Role


@dataclass(frozen=True)
class ConnectionRef:
    """What the policy needs to know about a connection."""

    id: int | str
    shared_with_contributors: bool
    name: str = ""


@dataclass(frozen=True)
class ExportRef:
    """What the policy needs to know about an export. ``connection=None``: detached (C7)."""

    id: int | str
    connection: ConnectionRef | None
    name: str = ""


@dataclass(frozen=True)
class Decision:
    """The answer: ``allowed``, and when refused, ``reason`` (a sentence a user can act on)."""

    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


Target = ConnectionRef | ExportRef | None

_ADMIN_ONLY: dict[Action, str] = {
    Action.MANAGE_USERS: "only administrators manage users and roles",
    Action.MANAGE_CONNECTIONS: "only administrators manage connections",
    Action.VIEW_CONNECTION_SETTINGS: (
        "only administrators see a connection's settings and secret; "
        "others see its display name and type"
    ),
    Action.MANAGE_SCHEDULE: "only administrators change the system refresh schedule",
    Action.MANAGE_PROFILES: "only administrators import profile data and declare relationships",
    Action.RUN_ALL: "only administrators run all scheduled exports at once",
    Action.FORGET_PERSON: "only administrators erase a person from every destination",
    Action.READ_AUDIT: "only administrators read the audit trail",
}

_EVERYONE = frozenset({Action.VIEW, Action.MANAGE_OWN_TOKENS})
_SEGMENT_ACTIONS = frozenset(
    {Action.CREATE_SEGMENT, Action.EDIT_SEGMENT, Action.REFRESH_SEGMENT, Action.DELETE_SEGMENT}
)
_EXPORT_ACTIONS = frozenset(
    {
        Action.EDIT_EXPORT,
        Action.RUN_EXPORT,
        Action.SCHEDULE_EXPORT,
        Action.REMOVE_EXPORT,
        Action.CANCEL_RUN,
    }
)

# What a viewer is told: "viewers can see <noun> but not <verb> them".
_VIEWER_VERB: dict[Action, tuple[str, str]] = {
    Action.CREATE_SEGMENT: ("segments", "create"),
    Action.EDIT_SEGMENT: ("segments", "edit"),
    Action.REFRESH_SEGMENT: ("segments", "refresh"),
    Action.DELETE_SEGMENT: ("segments", "delete"),
    Action.CREATE_EXPORT: ("exports", "create"),
    Action.EDIT_EXPORT: ("exports", "edit"),
    Action.RUN_EXPORT: ("exports", "run"),
    Action.SCHEDULE_EXPORT: ("exports", "schedule"),
    Action.REMOVE_EXPORT: ("exports", "remove"),
    Action.CANCEL_RUN: ("runs", "cancel"),
    Action.USE_CONNECTION: ("exports", "create or edit"),
}

_NOT_SHARED = (
    "contributors may only manage exports on connections an administrator shared with contributors"
)


def _describe(kind: str, ref: ConnectionRef | ExportRef) -> str:
    return f"{kind} {ref.name!r}" if ref.name else f"{kind} {ref.id}"


def _check_target(action: Action, target: Target) -> None:
    if action in _EXPORT_ACTIONS and not isinstance(target, ExportRef):
        raise TypeError(f"{action} needs an ExportRef target, got {target!r}")
    if action is Action.USE_CONNECTION and not isinstance(target, ConnectionRef):
        raise TypeError(f"{action} needs a ConnectionRef target, got {target!r}")
    if action is Action.CREATE_EXPORT and not (target is None or isinstance(target, ConnectionRef)):
        raise TypeError(f"{action} takes a ConnectionRef target or None, got {target!r}")


def _contributor(action: Action, target: Target) -> Decision:
    if action in _SEGMENT_ACTIONS:
        return Decision(True)
    if action is Action.CREATE_EXPORT:
        if target is None or (
            isinstance(target, ConnectionRef) and target.shared_with_contributors
        ):
            return Decision(True)
        assert isinstance(target, ConnectionRef)
        return Decision(False, f"{_NOT_SHARED}; {_describe('connection', target)} is not shared")
    if action is Action.USE_CONNECTION:
        assert isinstance(target, ConnectionRef)
        if target.shared_with_contributors:
            return Decision(True)
        return Decision(False, f"{_NOT_SHARED}; {_describe('connection', target)} is not shared")
    if action in _EXPORT_ACTIONS:
        assert isinstance(target, ExportRef)
        if target.connection is None:
            return Decision(
                False,
                f"{_describe('export', target)} has no connection; only administrators "
                "may edit, attach or remove a detached export",
            )
        if target.connection.shared_with_contributors:
            return Decision(True)
        return Decision(
            False,
            f"{_NOT_SHARED}; {_describe('export', target)} is on "
            f"{_describe('connection', target.connection)}, which is not shared",
        )
    return Decision(False, _ADMIN_ONLY[action])


def decide(actor: Actor, action: Action, target: Target = None) -> Decision:
    """Whether ``actor`` may do ``action`` to ``target``; when not, why (a user-facing sentence).

    Export actions need an :class:`ExportRef`, ``use_connection`` a :class:`ConnectionRef`, and
    ``create_export`` a :class:`ConnectionRef` or ``None``; anything else is a programming error
    (``TypeError``). Other actions ignore ``target``.
    """
    _check_target(action, target)
    if action in _EVERYONE or actor.role is Role.ADMINISTRATOR:
        return Decision(True)
    if actor.role is Role.CONTRIBUTOR:
        return _contributor(action, target)
    if action in _VIEWER_VERB:
        noun, verb = _VIEWER_VERB[action]
        return Decision(False, f"viewers can see {noun} but not {verb} them")
    return Decision(False, _ADMIN_ONLY[action])


def require(actor: Actor, action: Action, target: Target = None) -> None:
    """Raise :class:`~segsync.errors.PermissionDenied` with the reason unless allowed."""
    decision = decide(actor, action, target)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)


def may_use_connection(actor: Actor, connection: ConnectionRef) -> bool:
    """Whether ``actor`` may pick ``connection`` for an export (E1: list only usable ones)."""
    return decide(actor, Action.USE_CONNECTION, connection).allowed


def export_permission_label(actor: Actor, export: ExportRef) -> Literal["edit", "view"]:
    """The "Your permissions" column of export lists (R4)."""
    return "edit" if decide(actor, Action.EDIT_EXPORT, export).allowed else "view"
