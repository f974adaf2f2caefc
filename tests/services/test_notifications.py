"""Notices through the service (T4): the state machine over real runs in a SQLite file,
delivered to a real local SMTP sink and a real HTTP webhook receiver that checks signatures."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from segsync.domain.permissions import Role
from segsync.errors import NotFound, PermissionDenied
from segsync.services import notifications as service
from segsync.services.context import ServiceContext, open_context
from segsync.services.notifications.channels import verify_signature
from segsync.services.users import add_user
from segsync.settings import Settings
from segsync.storage.models.exports import Export
from segsync.storage.models.runs import Run
from tests.services.export_fixtures import acting_as
from tests.services.test_notify_channels import Sink, free_port

SECRET = "whsec-notices-42"
START = datetime(2025, 6, 30, 6, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Receiver:
    """A webhook receiver: keeps every POST and answers ``status``."""

    port: int = 0
    status: int = 200
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/segsync"

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.posts.append(({k: v for k, v in self.headers.items()}, body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def start_sink(port: int) -> tuple[Sink, Controller]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return sink, controller


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    port = free_port()
    sink, controller = start_sink(port)
    try:
        yield sink, port
    finally:
        controller.stop()


def make_settings(tmp_path: Path, smtp_port: int, webhook_url: str | None) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        database_url=None,
        profiles_url=None,
        secret_key=None,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_sender="segsync@example.org",
        webhook_url=webhook_url,
        webhook_secret=SecretStr(SECRET) if webhook_url else None,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


def open_ctx(settings: Settings, clock: Clock) -> ServiceContext:
    ctx = open_context(settings, now=clock)
    add_user(ctx, "admin@example.com", "administrator")
    add_user(ctx, "boss@example.com", "administrator")
    add_user(ctx, "writer@example.com", "contributor")
    return ctx


@pytest.fixture
def ctx(
    tmp_path: Path, smtp: tuple[Sink, int], receiver: Receiver, clock: Clock
) -> Iterator[ServiceContext]:
    with open_ctx(make_settings(tmp_path, smtp[1], receiver.url), clock) as services:
        yield services


def add_export(ctx: ServiceContext, name: str = "Newsletter") -> int:
    now = ctx.now()
    with ctx.db.session() as session:
        row = Export(
            name=name, mapping="{}", created_by="local-admin", created_at=now, updated_at=now
        )
        session.add(row)
        session.flush()
        return row.id


def finish_run(
    ctx: ServiceContext,
    clock: Clock,
    export_id: int,
    status: str,
    *,
    dry_run: bool = False,
    notify: bool = True,
    retried_transient: bool = False,
) -> tuple[int, service.NotificationRecord | None]:
    """A run of the export that ends now with ``status``, then the engine's hook."""
    clock.advance(minutes=10)
    with ctx.db.session() as session:
        row = Run(
            export_id=export_id,
            export_name="Newsletter",
            status=status,
            actor="a",
            dry_run=dry_run,
            queued_at=ctx.now(),
            started_at=ctx.now(),
            ended_at=ctx.now(),
            message=f"run ended {status}",
        )
        session.add(row)
        session.flush()
        run_id = row.id
    if not notify:
        return run_id, None
    notice = service.on_run_finished(
        ctx,
        export_id=export_id,
        export_name="Newsletter",
        run_id=run_id,
        status=status,
        message=f"run ended {status}",
        retried_transient=retried_transient,
    )
    return run_id, notice


def kinds(ctx: ServiceContext) -> list[str]:
    return [n.kind for n in reversed(service.list_notifications(ctx))]


def test_one_notice_per_state_change_delivered_once_to_each_channel(
    ctx: ServiceContext, clock: Clock, smtp: tuple[Sink, int], receiver: Receiver
) -> None:
    sink, _ = smtp
    export_id = add_export(ctx)
    outcomes = ["successful", "failure", "failure", "successful", "successful"]
    notices = [finish_run(ctx, clock, export_id, status)[1] for status in outcomes]

    assert [n.kind if n else None for n in notices] == [
        None,
        "export_failed",
        None,
        "export_recovered",
        None,
    ]
    assert kinds(ctx) == ["export_failed", "export_recovered"]
    # Email: exactly one message per notice, to the administrators only.
    assert len(sink.envelopes) == 2
    assert all(
        sorted(e.rcpt_tos) == ["admin@example.com", "boss@example.com"] for e in sink.envelopes
    )
    subjects = [sink.message(i)["Subject"] for i in range(2)]
    assert subjects == [
        "[segsync] Export 'Newsletter' failed",
        "[segsync] Export 'Newsletter' recovered",
    ]
    assert "run ended failure" in sink.message(0).get_payload()
    # Webhook: exactly one signed POST per notice.
    assert receiver.events() == ["export_failed", "export_recovered"]
    for headers, body in receiver.posts:
        assert verify_signature(SECRET, body, headers["X-Segsync-Signature"])
    failed = json.loads(receiver.posts[0][1])
    assert failed["export"] == "Newsletter"
    assert notices[1] is not None
    assert failed["run_id"] == notices[1].run_id
    # Both channels recorded as delivered, and nothing is left to redeliver.
    for notice in service.list_notifications(ctx):
        assert {k: v["status"] for k, v in notice.delivered.items()} == {
            "email": "ok",
            "webhook": "ok",
        }
    clock.advance(hours=3)
    assert service.redeliver_pending(ctx) == 0
    assert len(sink.envelopes) == 2
    assert len(receiver.posts) == 2


def test_runs_that_retried_transient_failures_and_succeeded_never_notify(
    ctx: ServiceContext, clock: Clock, smtp: tuple[Sink, int]
) -> None:
    export_id = add_export(ctx)
    for _ in range(3):
        _, notice = finish_run(ctx, clock, export_id, "successful", retried_transient=True)
        assert notice is None
    assert kinds(ctx) == []
    assert smtp[0].envelopes == []


def test_skipped_canceled_and_dry_runs_do_not_change_the_state(
    ctx: ServiceContext, clock: Clock
) -> None:
    export_id = add_export(ctx)
    finish_run(ctx, clock, export_id, "successful")
    finish_run(ctx, clock, export_id, "failure")
    for status in ("skipped", "canceled"):
        assert finish_run(ctx, clock, export_id, status)[1] is None
    assert finish_run(ctx, clock, export_id, "successful", dry_run=True)[1] is None
    assert finish_run(ctx, clock, export_id, "failure")[1] is None  # still failing
    assert finish_run(ctx, clock, export_id, "successful")[1] is not None
    assert kinds(ctx) == ["export_failed", "export_recovered"]


def test_a_first_run_that_fails_notifies(ctx: ServiceContext, clock: Clock) -> None:
    export_id = add_export(ctx)
    _, notice = finish_run(ctx, clock, export_id, "failure")
    assert notice is not None
    assert notice.kind == "export_failed"


def test_runs_ending_close_together_are_judged_by_when_they_ended(
    ctx: ServiceContext, clock: Clock, receiver: Receiver
) -> None:
    """Two failures end a moment apart and their hooks run in the opposite order: the earlier
    one notifies, the later one does not; calling a hook twice changes nothing."""
    export_id = add_export(ctx)
    finish_run(ctx, clock, export_id, "successful")
    first, _ = finish_run(ctx, clock, export_id, "failure", notify=False)
    second, _ = finish_run(ctx, clock, export_id, "failure", notify=False)

    def hook(run_id: int) -> service.NotificationRecord | None:
        return service.on_run_finished(
            ctx,
            export_id=export_id,
            export_name="Newsletter",
            run_id=run_id,
            status="failure",
            message="boom",
        )

    assert hook(second) is None
    notice = hook(first)
    assert notice is not None
    assert notice.run_id == first
    assert hook(first) is None
    assert receiver.events() == ["export_failed"]


def test_a_failed_channel_is_kept_and_redelivered_later_exactly_once(
    tmp_path: Path, clock: Clock, receiver: Receiver
) -> None:
    port = free_port()  # nothing listens yet: the SMTP server is down
    receiver.status = 404  # and the webhook is misconfigured
    with open_ctx(make_settings(tmp_path, port, receiver.url), clock) as ctx:
        export_id = add_export(ctx)
        _, notice = finish_run(ctx, clock, export_id, "failure")  # does not raise

        assert notice is not None
        email, webhook = notice.delivered["email"], notice.delivered["webhook"]
        assert email["status"] == "error"
        assert "could not be reached" in email["error"]
        assert webhook["status"] == "error"
        assert webhook["fatal"] is True
        assert "404" in webhook["error"]
        assert "/hooks" not in webhook["error"]
        assert [n.kind for n in service.list_notifications(ctx)] == ["export_failed"]

        sink, controller = start_sink(port)
        receiver.status = 200
        try:
            assert service.redeliver_pending(ctx) == 0  # not due yet
            assert sink.envelopes == []
            clock.advance(minutes=2)
            assert service.redeliver_pending(ctx) == 2
            clock.advance(hours=5)
            assert service.redeliver_pending(ctx) == 0
        finally:
            controller.stop()

        assert len(sink.envelopes) == 1
        assert receiver.events() == ["export_failed", "export_failed"]  # 404, then delivered
        (stored,) = service.list_notifications(ctx)
        assert stored.delivered["email"]["status"] == "ok"
        assert stored.delivered["email"]["attempts"] == 2
        assert stored.delivered["webhook"]["status"] == "ok"


def test_delivery_is_abandoned_after_the_last_attempt(tmp_path: Path, clock: Clock) -> None:
    with open_ctx(make_settings(tmp_path, free_port(), None), clock) as ctx:
        export_id = add_export(ctx)
        finish_run(ctx, clock, export_id, "failure")
        for _ in range(service.MAX_DELIVERY_ATTEMPTS + 2):
            clock.advance(hours=2)
            service.redeliver_pending(ctx)
        (stored,) = service.list_notifications(ctx)
        assert stored.delivered["email"]["status"] == "abandoned"
        assert stored.delivered["email"]["attempts"] == service.MAX_DELIVERY_ATTEMPTS


def test_misconfigured_channels_keep_the_notice_until_the_settings_are_fixed(
    tmp_path: Path, clock: Clock, smtp: tuple[Sink, int], receiver: Receiver
) -> None:
    broken = make_settings(tmp_path, smtp[1], receiver.url).model_copy(
        update={"webhook_secret": None}
    )
    with open_ctx(broken, clock) as ctx:
        export_id = add_export(ctx)
        _, notice = finish_run(ctx, clock, export_id, "failure")
        assert notice is not None
        assert "SEGSYNC_WEBHOOK_SECRET" in notice.delivered["configuration"]["error"]
        assert smtp[0].envelopes == []
        assert receiver.posts == []

        fixed = dataclasses.replace(ctx, settings=make_settings(tmp_path, smtp[1], receiver.url))
        clock.advance(minutes=5)
        assert service.redeliver_pending(fixed) == 2
        assert len(smtp[0].envelopes) == 1
        assert receiver.events() == ["export_failed"]
        (stored,) = service.list_notifications(ctx)
        assert set(stored.delivered) == {"email", "webhook"}


def test_reading_and_marking_notices(ctx: ServiceContext, clock: Clock) -> None:
    export_id = add_export(ctx)
    finish_run(ctx, clock, export_id, "failure")
    finish_run(ctx, clock, export_id, "successful")
    newest, oldest = service.list_notifications(ctx)
    assert (newest.kind, oldest.kind) == ("export_recovered", "export_failed")

    assert service.mark_read(ctx, [oldest.id]) == 1
    assert [n.id for n in service.list_notifications(ctx, unread_only=True)] == [newest.id]
    assert service.mark_read(ctx, "all") == 1
    assert service.list_notifications(ctx, unread_only=True) == []
    assert service.mark_read(ctx, "all") == 0
    with pytest.raises(NotFound, match="999"):
        service.mark_read(ctx, [999])


@pytest.mark.parametrize("role", [Role.CONTRIBUTOR, Role.VIEWER])
def test_only_administrators_read_notices(ctx: ServiceContext, role: Role) -> None:
    other = acting_as(ctx, role)
    with pytest.raises(PermissionDenied, match="only administrators"):
        service.list_notifications(other)
    with pytest.raises(PermissionDenied):
        service.mark_read(other, "all")
