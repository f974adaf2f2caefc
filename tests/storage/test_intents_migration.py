"""Migration 0012 (write-ahead intents kept whole), taken back: what the intents hold becomes the
pending rows the code before it reads, so a downgrade with a crashed run's intents loses none."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from segsync.storage.db import Database
from segsync.storage.repositories.sync import SyncStateRepository
from tests.storage.test_guard_migration import EXPORT, _migrate

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def test_the_downgrade_turns_intents_into_pending_rows(db: Database) -> None:
    with db.session() as session:
        session.execute(text(EXPORT), {"now": NOW})
        export_id = session.execute(text("SELECT id FROM exports")).scalar_one()
        sync = SyncStateRepository(session)
        sync.record_contacts(export_id, {"k@x.org": "h1"}, now=NOW)
        sync.record_memberships(export_id, [(7, "k@x.org")])
        sync.add_intent(
            export_id, ["k@x.org", "n@x.org"], [(7, "k@x.org"), (8, "n@x.org")], now=NOW
        )

    _migrate(db, "0011_sync_email_lookups", down=True)

    with db.engine.begin() as connection:
        contacts = connection.execute(
            text("SELECT email, payload_hash, pending FROM sync_contacts ORDER BY email")
        ).all()
        memberships = connection.execute(
            text("SELECT segment_id, email, pending FROM sync_memberships ORDER BY email")
        ).all()
    assert [(e, h, bool(p)) for e, h, p in contacts] == [
        ("k@x.org", "h1", False),  # known stays known
        ("n@x.org", "", True),
    ]
    assert [(s, e, bool(p)) for s, e, p in memberships] == [
        (7, "k@x.org", False),
        (8, "n@x.org", True),
    ]
