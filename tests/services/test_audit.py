"""The audit trail: recorded with the change, masked, read back and exported (P3, P5)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from segsync.domain.permissions import Actor, Role
from segsync.errors import InputError, PermissionDenied
from segsync.services.context import ServiceContext
from segsync.services.privacy import audit

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def _record(ctx: ServiceContext, at: datetime, action: str, **extra: object) -> None:
    with ctx.db.session() as session:
        audit.record(
            session,
            at=at,
            actor=ctx.actor,
            action=action,
            target_type="connection",
            target="Main",
            summary=str(extra.get("summary", f"did {action}")),
            details=extra.get("details", {}),  # type: ignore[arg-type]
        )


def test_an_event_commits_with_the_change_or_not_at_all(service_context: ServiceContext) -> None:
    ctx = service_context
    _record(ctx, NOW, "connection.added")

    def failing_change() -> None:
        with ctx.db.session() as session:
            audit.record(
                session,
                at=NOW,
                actor="someone",
                action="connection.edited",
                target_type="connection",
                target="Main",
                summary="rolled back",
            )
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert [e.action for e in audit.list_events(ctx)] == ["connection.added"]


def test_emails_are_masked_and_secrets_refused(service_context: ServiceContext) -> None:
    ctx = service_context
    _record(
        ctx,
        NOW,
        "person.forgotten",
        summary="Forgot jane.doe@example.com everywhere",
        details={"email": "jane.doe@example.com", "lists": ["x", "bob@corp.io"]},
    )
    event = audit.list_events(ctx)[0]
    assert "jane.doe@example.com" not in json.dumps(event.to_dict())
    assert event.summary == "Forgot j•••@e•••.com everywhere"
    assert event.details == {"email": "j•••@e•••.com", "lists": ["x", "b•••@c•••.io"]}
    assert event.actor == "local-admin"
    for key in ("api_key", "password", "token", "secret", "nested.apiKey"):
        outer, _, inner = key.rpartition(".")
        details: dict[str, object] = {inner: "x"}
        if outer:
            details = {outer: details}
        with pytest.raises(ValueError, match="may not carry secrets"):
            _record(ctx, NOW, "x", details=details)
    _record(ctx, NOW, "ok", details={"secret_hint": "••••1234", "secret_ref": "env:K"})


def test_events_are_listed_in_order_since_a_time_and_limited(
    service_context: ServiceContext,
) -> None:
    ctx = service_context
    for hours, action in [(48, "a"), (30, "b"), (2, "c"), (1, "d")]:
        _record(ctx, NOW - timedelta(hours=hours), action)
    assert [e.action for e in audit.list_events(ctx)] == ["a", "b", "c", "d"]
    since = audit.parse_since("24h", NOW)
    assert [e.action for e in audit.list_events(ctx, since=since)] == ["c", "d"]
    assert [e.action for e in audit.list_events(ctx, limit=3)] == ["b", "c", "d"]


def test_export_jsonl_writes_one_event_per_line(
    service_context: ServiceContext, tmp_path: Path
) -> None:
    ctx = service_context
    _record(ctx, NOW - timedelta(days=10), "old")
    _record(ctx, NOW, "new", details={"count": 3})
    path = tmp_path / "out" / "audit.jsonl"
    assert audit.export_jsonl(ctx, path) == 2
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["action"], e["details"]) for e in lines] == [("old", {}), ("new", {"count": 3})]
    assert lines[1]["at"] == NOW.isoformat()
    stream = io.StringIO()
    assert audit.export_jsonl(ctx, stream, since=NOW - timedelta(days=1)) == 1
    assert json.loads(stream.getvalue())["action"] == "new"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR])
def test_only_administrators_read_the_audit_trail(
    service_context: ServiceContext, role: Role, tmp_path: Path
) -> None:
    ctx = service_context
    ctx.actor = Actor(user_id=7, email="x@example.com", role=role)
    with pytest.raises(PermissionDenied, match="only administrators read the audit trail"):
        audit.list_events(ctx)
    with pytest.raises(PermissionDenied):
        audit.export_jsonl(ctx, tmp_path / "a.jsonl")
    assert not (tmp_path / "a.jsonl").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("24h", NOW - timedelta(hours=24)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2025-06-01", datetime(2025, 6, 1, tzinfo=UTC)),
        ("2025-06-01T08:00:00", datetime(2025, 6, 1, 8, tzinfo=UTC)),
        ("2025-06-01T08:00:00+02:00", datetime(2025, 6, 1, 6, tzinfo=UTC)),
    ],
)
def test_since_reads_relative_and_iso_times(text: str, expected: datetime) -> None:
    assert audit.parse_since(text, NOW) == expected


def test_since_refuses_anything_else() -> None:
    with pytest.raises(InputError, match="--since 'yesterday'"):
        audit.parse_since("yesterday", NOW)
