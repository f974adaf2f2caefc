"""Connections through the services layer, against the simulator over loopback (C1–C8, R5, R6)."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from segsync.domain.permissions import Actor, Role
from segsync.errors import Conflict, FatalError, InputError, NotFound, PermissionDenied
from segsync.services import users
from segsync.services.connections import manage as svc
from segsync.services.connections.checks import CheckOutcome
from segsync.services.connections.inputs import ConnectionEdit, NewConnection
from segsync.services.connections.types import consent_statement
from segsync.services.connections.views import ConnectionDetails, ConnectionSummary
from segsync.services.context import LOCAL_ADMIN, ServiceContext
from segsync.services.privacy import audit
from segsync.simulator import RunningSimulator, Simulator, SimulatorConfig, serve_in_thread
from segsync.storage.models.connections import Connection, Consent
from segsync.storage.models.exports import Export

KEY = "sk-live-4f1c9e2ab7d05536"
STATEMENT = consent_statement("autopilot")
OTHER_KEY = "sk-live-other-7788990011"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    simulator = Simulator(SimulatorConfig(api_keys=[KEY, OTHER_KEY], rate_limit=0))
    with serve_in_thread(simulator) as running:
        yield running


@pytest.fixture
def ctx(service_context: ServiceContext) -> ServiceContext:
    return service_context


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def add(
    ctx: ServiceContext, sim: RunningSimulator, name: str = "Main", **options: object
) -> ConnectionDetails:
    options.setdefault("api_key", KEY)
    options.setdefault("base_url", sim.base_url)
    agree = bool(options.pop("agree", True))
    new = NewConnection(name, type="autopilot", **options)  # type: ignore[arg-type]
    return svc.add_connection(ctx, new, agree=agree)


def cid(ctx: ServiceContext, name: str) -> int:
    """The id of the connection named ``name``, as the CLI finds it."""
    return svc.connection_id(ctx, name)


def add_export(ctx: ServiceContext, name: str, connection_id: int) -> int:
    now = ctx.now()
    with ctx.db.session() as session:
        row = Export(
            name=name,
            connection_id=connection_id,
            mapping="{}",
            created_by="local-admin",
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row.id


def db_bytes(ctx: ServiceContext) -> bytes:
    base = ctx.settings.data_dir / "segsync.db"
    return b"".join(p.read_bytes() for p in base.parent.glob("segsync.db*") if p.is_file())


def as_admin(ctx: ServiceContext) -> ServiceContext:
    """The same DB and clock, acting as the local administrator."""
    return ServiceContext(settings=ctx.settings, db=ctx.db, now=ctx.now, actor=LOCAL_ADMIN)


def acting(ctx: ServiceContext, role: Role) -> Actor:
    """A user with ``role`` (added once), as an actor."""
    email = f"{role.value}@example.com"
    with contextlib.suppress(Conflict):
        users.add_user(as_admin(ctx), email, role)
    return users.resolve_actor(ctx, email)


def actions(ctx: ServiceContext) -> list[str]:
    return [event.action for event in audit.list_events(as_admin(ctx))]


# --- adding ---------------------------------------------------------------------------------


def test_a_good_key_is_saved_encrypted_with_consent_and_audit(
    ctx: ServiceContext, sim: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    details = add(ctx, sim, share_with_contributors=True)

    assert details.health == "ok"
    assert details.secret_hint == "••••5536"
    assert (details.base_url, details.rate_limit, details.contract_limit) == (
        sim.base_url,
        5.0,
        100_000,
    )
    assert details.shared_with_contributors
    assert details.export_user == "local administrator"
    assert details.consent is not None
    assert details.consent.statement == STATEMENT
    assert details.consent.agreed_by == "local-admin"
    assert details.consent.agreed_at == ctx.now()
    with ctx.db.session() as session:
        row = session.scalars(select(Connection)).one()
        assert row.secret_ciphertext is not None
        assert KEY.encode() not in row.secret_ciphertext
        assert row.secret_ref is None
    assert KEY.encode() not in db_bytes(ctx)
    assert KEY not in caplog.text
    assert KEY not in repr(details)
    assert KEY not in str(details.to_dict())
    type_name, config = svc.connection_config(ctx, details.id)
    assert (type_name, config.api_key, config.base_url) == ("autopilot", KEY, sim.base_url)
    assert KEY not in repr(config)
    assert actions(ctx) == ["connection.added", "consent.given"]
    assert all(KEY not in str(e.to_dict()) for e in audit.list_events(ctx))


def test_the_consent_statement_says_what_p1_requires() -> None:
    text = STATEMENT.lower()
    for words in ("out of this system", "autopilot", "personal data", "responsible", "obligations"):
        assert words in text


def test_a_wrong_key_is_refused_and_nothing_is_saved(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    with pytest.raises(InputError, match=r"API key was rejected \(401\).*nothing was saved"):
        add(ctx, sim, api_key="sk-wrong-000000000000")
    assert svc.list_connections(ctx) == []
    assert actions(ctx) == []
    with ctx.db.session() as session:
        assert session.scalars(select(Consent)).all() == []


def test_an_unreachable_service_is_refused_and_nothing_is_saved(ctx: ServiceContext) -> None:
    url = closed_port_url()
    with pytest.raises(InputError, match=f"could not reach Autopilot at {url}.*nothing was saved"):
        svc.add_connection(
            ctx, NewConnection("Main", type="autopilot", api_key=KEY, base_url=url), agree=True
        )
    assert svc.list_connections(ctx) == []


def test_without_agreement_it_is_refused_quoting_the_statement(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    with pytest.raises(InputError, match="--agree") as refused:
        add(ctx, sim, agree=False)
    assert STATEMENT in refused.value.message
    assert svc.list_connections(ctx) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "  "}, "name is empty"),
        ({"name": "x" * 201}, "at most 200"),
        ({"base_url": "ftp://example.com"}, "http:// or https://"),
        ({"rate_limit": 0}, "rate limit 0 must be above 0"),
        ({"rate_limit": 1001}, "at most 1000"),
        ({"contract_limit": 0}, "at least 1"),
        ({"secret_ref": "env:X"}, "exactly one"),
        ({"api_key": None}, "exactly one"),
        ({"api_key": None, "secret_ref": "vault:x"}, "'vault:x' must be env:NAME"),
        ({"api_key": "   "}, "API key is empty"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    ctx: ServiceContext, sim: RunningSimulator, options: dict[str, object], message: str
) -> None:
    options = dict(options)
    name = str(options.pop("name", "Main"))
    with pytest.raises(InputError, match=message):
        add(ctx, sim, name, **options)
    assert svc.list_connections(ctx) == []


def test_names_are_unique_and_the_type_must_exist(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    add(ctx, sim)
    with pytest.raises(Conflict, match="'Main' already exists"):
        add(ctx, sim)
    with pytest.raises(InputError, match="unknown destination type 'mailchimp'"):
        svc.add_connection(ctx, NewConnection("M", type="mailchimp", api_key=KEY), agree=True)


def test_defaults_come_from_c6(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_check(type_name: str, **kwargs: object) -> CheckOutcome:
        seen.update(kwargs, type_name=type_name)
        return CheckOutcome("ok", "connected")

    monkeypatch.setattr(svc, "check_key", fake_check)
    details = svc.add_connection(
        ctx, NewConnection("Prod", type="autopilot", api_key=KEY), agree=True
    )
    assert details.base_url == "https://api2.autopilothq.com/v1"
    assert (details.rate_limit, details.contract_limit) == (5.0, 100_000)
    assert not details.shared_with_contributors
    assert seen["base_url"] == "https://api2.autopilothq.com/v1"


# --- secret references ----------------------------------------------------------------------


def test_env_reference_is_resolved_at_run_time_and_unreadable_is_reported(
    ctx: ServiceContext, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AP_KEY_TEST", KEY)
    details = add(ctx, sim, api_key=None, secret_ref="env:AP_KEY_TEST")
    assert (details.secret_ref, details.secret_hint) == ("env:AP_KEY_TEST", "env:AP_KEY_TEST")
    monkeypatch.setenv("AP_KEY_TEST", OTHER_KEY)
    assert svc.connection_config(ctx, details.id)[1].api_key == OTHER_KEY
    monkeypatch.delenv("AP_KEY_TEST")
    with pytest.raises(FatalError, match=r"connection 'Main'.*env:AP_KEY_TEST.*not set"):
        svc.connection_config(ctx, details.id)
    shown = svc.show_connection(ctx, cid(ctx, "Main"))
    assert isinstance(shown, ConnectionDetails)
    assert shown.health == "secret_unreadable"
    assert shown.health_message is not None
    assert "env:AP_KEY_TEST" in shown.health_message
    assert svc.test_connection(ctx, cid(ctx, "Main")).health == "secret_unreadable"
    assert KEY.encode() not in db_bytes(ctx)


def test_file_reference_is_resolved_at_run_time(
    ctx: ServiceContext, sim: RunningSimulator, tmp_path: Path
) -> None:
    key_file = tmp_path / "autopilot.key"
    key_file.write_text(KEY + "\n")
    details = add(ctx, sim, api_key=None, secret_ref=f"file:{key_file}")
    assert svc.connection_config(ctx, details.id)[1].api_key == KEY
    key_file.unlink()
    with pytest.raises(FatalError, match="cannot read the file"):
        svc.connection_config(ctx, details.id)


def test_an_unreadable_reference_is_refused_when_adding(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    with pytest.raises(InputError, match=r"env:NOPE_NOT_SET.*not set.*nothing was saved"):
        add(ctx, sim, api_key=None, secret_ref="env:NOPE_NOT_SET")
    assert svc.list_connections(ctx) == []


# --- test, edit, remove ---------------------------------------------------------------------


def test_connect_again_reports_a_revoked_key_and_clears_the_flag_when_it_passes(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    details = add(ctx, sim)
    sim.simulator.faults.revoke_key(KEY)
    try:
        result = svc.test_connection(ctx, cid(ctx, "Main"))
    finally:
        sim.simulator.faults.restore_key(KEY)
    assert result.health == "key_rejected"
    assert "rejected (401)" in result.message
    svc.flag_connection(ctx, details.id, "key_rejected", "the Autopilot API key was rejected")
    assert svc.test_connection(ctx, cid(ctx, "Main")).ok
    shown = svc.show_connection(ctx, cid(ctx, "Main"))
    assert isinstance(shown, ConnectionDetails)
    assert shown.health == "ok"
    assert actions(ctx).count("connection.tested") == 2


def test_editing_the_key_needs_agreement_and_a_passing_check(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    details = add(ctx, sim)
    with pytest.raises(InputError, match="--agree"):
        svc.edit_connection(ctx, cid(ctx, "Main"), ConnectionEdit(api_key=OTHER_KEY))
    wrong = ConnectionEdit(api_key="sk-wrong-000000000000")
    with pytest.raises(InputError, match="rejected"):
        svc.edit_connection(ctx, cid(ctx, "Main"), wrong, agree=True)
    assert svc.connection_config(ctx, details.id)[1].api_key == KEY
    change = ConnectionEdit(api_key=OTHER_KEY, name="Primary")
    edited = svc.edit_connection(ctx, cid(ctx, "Main"), change, agree=True)
    assert (edited.name, edited.secret_hint) == ("Primary", "••••0011")
    assert svc.connection_config(ctx, details.id)[1].api_key == OTHER_KEY
    with ctx.db.session() as session:
        assert len(session.scalars(select(Consent)).all()) == 2
    assert actions(ctx)[-2:] == ["connection.edited", "consent.given"]
    assert OTHER_KEY.encode() not in db_bytes(ctx)


def test_sharing_is_widened_and_narrowed_without_touching_exports(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    details = add(ctx, sim)
    export_id = add_export(ctx, "Newsletter", details.id)
    contributor = acting(ctx, Role.CONTRIBUTOR)
    svc.edit_connection(ctx, details.id, ConnectionEdit(share_with_contributors=True))
    ctx.actor = contributor
    assert [c.name for g in svc.usable_connections(ctx) for c in g.connections] == ["Main"]
    ctx.actor = LOCAL_ADMIN
    narrower = ConnectionEdit(share_with_contributors=False, rate_limit=2, contract_limit=50)
    svc.edit_connection(ctx, details.id, narrower)
    ctx.actor = contributor
    assert svc.usable_connections(ctx) == []
    with ctx.db.session() as session:
        export = session.get(Export, export_id)
        assert export is not None
        assert export.connection_id == details.id


def test_edit_with_nothing_new_is_refused(ctx: ServiceContext, sim: RunningSimulator) -> None:
    add(ctx, sim)
    with pytest.raises(InputError, match="nothing to change"):
        svc.edit_connection(ctx, cid(ctx, "Main"), ConnectionEdit(rate_limit=5))


def test_removal_is_refused_while_exports_use_it_naming_them(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    details = add(ctx, sim)
    add_export(ctx, "Newsletter", details.id)
    add_export(ctx, "Winback", details.id)
    with pytest.raises(Conflict, match=r"used by 2 export\(s\): 'Newsletter', 'Winback'.*detach"):
        svc.remove_connection(ctx, cid(ctx, "Main"))
    with ctx.db.session() as session:
        for export in session.scalars(select(Export)):
            export.connection_id = None
    svc.remove_connection(ctx, cid(ctx, "Main"))
    with pytest.raises(NotFound):
        svc.show_connection(ctx, cid(ctx, "Main"))
    with ctx.db.session() as session:
        consent = session.scalars(select(Consent)).one()
        assert (consent.connection_id, consent.connection_name) == (None, "Main")
    assert actions(ctx)[-1] == "connection.removed"


# --- who sees what, who acts ----------------------------------------------------------------


def test_contributors_and_viewers_see_only_shared_names_and_types(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    add(ctx, sim, "Shared", share_with_contributors=True)
    add(ctx, sim, "Private")
    admin_view = svc.list_connections(ctx)
    assert all(isinstance(c, ConnectionDetails) for c in admin_view)
    for role in (Role.CONTRIBUTOR, Role.VIEWER):
        ctx.actor = acting(ctx, role)
        seen = svc.list_connections(ctx)
        assert [type(c) for c in seen] == [ConnectionSummary]
        assert seen[0].to_dict() == {"id": seen[0].id, "name": "Shared", "type": "autopilot"}
        assert type(svc.show_connection(ctx, cid(ctx, "Shared"))) is ConnectionSummary
        with pytest.raises(PermissionDenied, match="not shared"):
            svc.show_connection(ctx, cid(ctx, "Private"))
        ctx.actor = LOCAL_ADMIN


def test_by_id_others_are_refused_alike_for_private_and_missing_connections(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    private = add(ctx, sim, "Private")
    with pytest.raises(NotFound, match="no connection with id 999"):
        svc.show_connection(ctx, 999)
    ctx.actor = acting(ctx, Role.CONTRIBUTOR)
    for connection_id in (private.id, 999):
        with pytest.raises(PermissionDenied, match="not shared with contributors") as refused:
            svc.show_connection(ctx, connection_id)
        assert "Private" not in refused.value.message


def test_the_type_decides_the_statement_and_unknown_types_are_named(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    assert consent_statement(None) == STATEMENT  # the only type users may choose
    with pytest.raises(InputError, match="unknown destination type 'mailchimp'"):
        consent_statement("mailchimp")
    details = add(ctx, sim)
    assert details.consent is not None
    assert details.consent.statement == consent_statement(details.type)
    assert "to Autopilot, a third-party service" in STATEMENT


def test_usable_connections_are_grouped_by_type_and_follow_the_policy(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    add(ctx, sim, "Shared", share_with_contributors=True)
    add(ctx, sim, "Private")
    groups = svc.usable_connections(ctx)
    assert [(g.type, g.type_display, [c.name for c in g.connections]) for g in groups] == [
        ("autopilot", "Autopilot", ["Private", "Shared"])
    ]
    ctx.actor = acting(ctx, Role.CONTRIBUTOR)
    assert [c.name for c in svc.usable_connections(ctx)[0].connections] == ["Shared"]
    ctx.actor = acting(ctx, Role.VIEWER)
    assert svc.usable_connections(ctx) == []


def test_the_export_user_is_the_creator_and_runs_fail_when_it_is_removed_or_demoted(
    ctx: ServiceContext, sim: RunningSimulator
) -> None:
    ana = acting(ctx, Role.ADMINISTRATOR)
    users.add_user(ctx, "bo@example.com", Role.ADMINISTRATOR)
    ctx.actor = ana
    first = add(ctx, sim, "First")
    assert first.export_user == ana.email
    assert svc.export_actor(ctx, first.id) == ana
    second = add(ctx, sim, "Second", export_user_email="bo@example.com")
    ctx.actor = LOCAL_ADMIN
    users.set_role(ctx, "bo@example.com", Role.CONTRIBUTOR)
    with pytest.raises(
        FatalError, match=r"bo@example\.com of connection 'Second' is no longer an administrator"
    ):
        svc.export_actor(ctx, second.id)
    users.remove_user(ctx, "bo@example.com")
    with pytest.raises(FatalError, match=r"bo@example\.com of connection 'Second' was removed"):
        svc.export_actor(ctx, second.id)
    shown = svc.show_connection(ctx, cid(ctx, "Second"))
    assert isinstance(shown, ConnectionDetails)
    assert shown.export_user == "bo@example.com (removed)"
    viewer = ConnectionEdit(export_user_email=acting(ctx, Role.VIEWER).email)
    with pytest.raises(InputError, match="must be an administrator"):
        svc.edit_connection(ctx, first.id, viewer)
    svc.edit_connection(ctx, second.id, ConnectionEdit(export_user_email="local-admin"))
    assert svc.export_actor(ctx, second.id) == LOCAL_ADMIN


# --- the permission matrix (R5, R6) ---------------------------------------------------------

MUTATIONS = {
    "add": lambda ctx, url: svc.add_connection(
        ctx, NewConnection("New", type="autopilot", api_key=KEY, base_url=url), agree=True
    ),
    "edit": lambda ctx, url: svc.edit_connection(
        ctx, cid(ctx, "Main"), ConnectionEdit(rate_limit=2)
    ),
    "test": lambda ctx, url: svc.test_connection(ctx, cid(ctx, "Main")),
    "remove": lambda ctx, url: svc.remove_connection(ctx, cid(ctx, "Main")),
}


@pytest.mark.parametrize("operation", sorted(MUTATIONS))
@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR, Role.ADMINISTRATOR])
def test_only_administrators_manage_connections(
    ctx: ServiceContext, sim: RunningSimulator, role: Role, operation: str
) -> None:
    add(ctx, sim, share_with_contributors=True)
    ctx.actor = acting(ctx, role)
    before = len(actions(ctx))
    if role is Role.ADMINISTRATOR:
        MUTATIONS[operation](ctx, sim.base_url)
        assert len(actions(ctx)) > before
    else:
        with pytest.raises(PermissionDenied, match="only administrators manage connections"):
            MUTATIONS[operation](ctx, sim.base_url)
        assert len(actions(ctx)) == before


def test_docs_quote_the_statement_word_for_word() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "connections.md"
    quoted = " ".join(
        line.removeprefix(">").strip()
        for line in docs.read_text().splitlines()
        if line.startswith(">")
    )
    assert quoted == STATEMENT
