"""Notices to administrators (T4): stored, delivered per channel, read in the web UI or CLI.

``delivered`` is a JSON object keyed by channel name (``email``, ``webhook``), each value a
:data:`Delivery` dict (``status`` = ``sending`` | ``ok`` | ``error`` | ``abandoned``). Writes
always serialise it with sorted keys, so a compare-and-swap on the text column is exact.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from segsync.domain.notices import Outcome
from segsync.domain.runs import RunStatus
from segsync.errors import NotFound
from segsync.storage.models.operations import Notification
from segsync.storage.models.runs import Run

Delivery = dict[str, Any]


@dataclass(frozen=True)
class NotificationRecord:
    """A stored notice. ``kind`` is a :class:`~segsync.domain.notices.NoticeKind` value;
    ``delivered`` maps channel name → delivery state; ``read_at`` is ``None`` while unread."""

    id: int
    at: datetime
    kind: str
    export_id: int | None
    export_name: str
    run_id: int | None
    message: str
    delivered: dict[str, Delivery]
    read_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "export_id": self.export_id,
            "export": self.export_name,
            "run_id": self.run_id,
            "message": self.message,
            "delivered": self.delivered,
            "read_at": None if self.read_at is None else self.read_at.isoformat(),
        }


@dataclass(frozen=True)
class RunFacts:
    """What the notifications service needs to know about the run that just ended."""

    dry_run: bool
    status: RunStatus
    ended_at: datetime | None


def dump_delivered(delivered: dict[str, Delivery]) -> str:
    return json.dumps(delivered, sort_keys=True, default=str, ensure_ascii=False)


def _load(text: str | None) -> dict[str, Delivery]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _record(row: Notification) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        at=row.at,
        kind=row.kind,
        export_id=row.export_id,
        export_name=row.export_name,
        run_id=row.run_id,
        message=row.message,
        delivered=_load(row.delivered),
        read_at=row.read_at,
    )


_OUTCOMES: dict[str, Outcome] = {
    RunStatus.SUCCESSFUL.value: "ok",
    RunStatus.FAILURE.value: "failed",
}


class NotificationRepository:
    """Stored notices, and the run history the notice state is derived from."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # ------------------------------------------------------------------ the state machine

    def run_facts(self, run_id: int, *, lock: bool = False) -> RunFacts | None:
        """The run's dry-run flag, status and end; with ``lock``, the run row is locked
        (``FOR UPDATE`` on Postgres) so two deciders for one run take turns."""
        query = select(Run.dry_run, Run.status, Run.ended_at).where(Run.id == run_id)
        if lock:
            query = query.with_for_update()
        row = self.session.execute(query).first()
        if row is None:
            return None
        return RunFacts(bool(row.dry_run), RunStatus(row.status), row.ended_at)

    def previous_outcome(
        self, export_id: int, run_id: int, *, ended_before: datetime | None
    ) -> Outcome | None:
        """The outcome (``ok`` / ``failed``) of the export's latest real run that ended before
        this one: the latest by end time (then id) among Successful and Failure runs other than
        ``run_id``; Skipped, Canceled and dry runs do not count. ``ended_before`` is this run's
        end (``None``: every other finished run counts)."""
        query = select(Run.status).where(
            Run.export_id == export_id,
            Run.id != run_id,
            Run.dry_run.is_(False),
            Run.status.in_(list(_OUTCOMES)),
            Run.ended_at.is_not(None),
        )
        if ended_before is not None:
            query = query.where(
                or_(
                    Run.ended_at < ended_before,
                    (Run.ended_at == ended_before) & (Run.id < run_id),
                )
            )
        status = self.session.scalar(query.order_by(Run.ended_at.desc(), Run.id.desc()).limit(1))
        return None if status is None else _OUTCOMES[status]

    # ------------------------------------------------------------------ notices

    def add(
        self,
        *,
        at: datetime,
        kind: str,
        export_id: int | None,
        export_name: str,
        run_id: int | None,
        message: str,
        delivered: dict[str, Delivery],
    ) -> NotificationRecord:
        row = Notification(
            at=at,
            kind=kind,
            export_id=export_id,
            export_name=export_name[:200],
            run_id=run_id,
            message=message,
            delivered=dump_delivered(delivered),
            read_at=None,
        )
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def get(self, notification_id: int) -> NotificationRecord:
        row = self.session.get(Notification, notification_id)
        if row is None:
            raise NotFound(f"no notification with id {notification_id}")
        return _record(row)

    def for_run(self, run_id: int) -> NotificationRecord | None:
        row = self.session.scalars(
            select(Notification).where(Notification.run_id == run_id).limit(1)
        ).first()
        return None if row is None else _record(row)

    def list(
        self, *, unread_only: bool = False, limit: int | None = None
    ) -> builtins.list[NotificationRecord]:
        """Newest first."""
        query = select(Notification)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        query = query.order_by(Notification.at.desc(), Notification.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return [_record(row) for row in self.session.scalars(query)]

    def with_unfinished_delivery(self) -> builtins.list[NotificationRecord]:
        """Notices with a channel still ``sending`` or in ``error`` (oldest first)."""
        query = (
            select(Notification)
            .where(
                or_(
                    Notification.delivered.like('%"status": "error"%'),
                    Notification.delivered.like('%"status": "sending"%'),
                )
            )
            .order_by(Notification.id)
        )
        return [_record(row) for row in self.session.scalars(query)]

    def swap_delivered(
        self, notification_id: int, old: dict[str, Delivery], new: dict[str, Delivery]
    ) -> bool:
        """Replace ``delivered`` only if it still is ``old``: the claim that keeps two processes
        from delivering the same notice at once. True if this caller won."""
        result = self.session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.delivered == dump_delivered(old),
            )
            .values(delivered=dump_delivered(new))
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def mark_read(self, ids: Iterable[int] | None, *, now: datetime) -> int:
        """Mark these notices (``None``: every unread one) read; return how many changed.
        An unknown id is ``NotFound``."""
        query = update(Notification).where(Notification.read_at.is_(None))
        if ids is not None:
            wanted = sorted(set(ids))
            known = set(
                self.session.scalars(select(Notification.id).where(Notification.id.in_(wanted)))
            )
            missing = [str(i) for i in wanted if i not in known]
            if missing:
                raise NotFound(f"no notification with id {', '.join(missing)}")
            query = query.where(Notification.id.in_(wanted))
        result = self.session.execute(
            query.values(read_at=now).execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
