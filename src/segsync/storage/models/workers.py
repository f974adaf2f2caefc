"""Workers: the processes that claim queued runs, each with a heartbeat so others can tell
whether one is alive (``exports run`` runs the export itself when none is)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from segsync.storage.base import Base


class Worker(Base):
    """A running worker (``segsync worker``, or the one inside ``segsync serve``).

    The row is written when the worker starts, its ``heartbeat_at`` refreshed on a timer, and
    it is deleted when the worker stops cleanly. A killed worker leaves a row whose heartbeat
    goes stale."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime] = mapped_column(index=True)
    run_id: Mapped[int | None] = mapped_column(Integer)
