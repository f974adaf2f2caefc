"""The sync state of an export: what the destination acknowledged (docs/design.md "Sync state is the
checkpoint"). Per export: every acknowledged contact's email and payload hash, and every list
membership segsync created (by segment id).

Write-ahead intents: before batches leave, the contacts and memberships they may create are
recorded in one ``sync_intents`` row (:meth:`SyncStateRepository.add_intent`); the
acknowledgements that answer them write known rows and delete it. Whatever an intent still holds
when it is read — its run crashed, stopped or ended with batches unanswered — becomes *pending*
rows (:meth:`SyncStateRepository.settle_intents`, done by every read that sees pending rows),
as if each had been written pending on its own (:meth:`SyncStateRepository.record_intents`,
which a refused item gets at once). A pending row survives any number of crashes: a pending
membership is "maybe on the list" until a later run confirms it (sends it again) or removes it.
A pending contact that was never acknowledged has an empty payload hash, which no real hash
equals.

Fields are written ahead too: before an upsert that changes a known contact's fields leaves, the
contact's hash becomes :data:`UNCONFIRMED` (:meth:`SyncStateRepository.unconfirm`), which no real
hash equals either, until its acknowledgement records the hash sent. Were the old hash kept, a
run that sent new fields and died before the answer was saved, followed by data that went back
to the recorded fields, would find the hash equal and leave the new fields in the destination
for good."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.orm import Session

from segsync.storage.models.exports import Export
from segsync.storage.models.sync import SyncContact, SyncIntent, SyncMembership
from segsync.storage.repositories.driver import (
    bind_value,
    execute,
    execute_many,
    in_lists,
    select_rows,
)

NO_HASH = ""
"""The payload hash of a contact only intended (sent, never acknowledged)."""
UNCONFIRMED = "unconfirmed"
"""The payload hash of a known contact while an upsert that changes its fields is unanswered:
the destination holds the fields recorded before or those sent (a SHA-256 hash is 64 hex
digits, so no payload's hash is this)."""


_CONTACT_INTENT = (
    "INSERT INTO sync_contacts (export_id, email, payload_hash, contact_id, synced_at, pending) "
    "VALUES ($1, ?, '', NULL, $2, TRUE) ON CONFLICT (export_id, email) DO NOTHING"
)
_MEMBERSHIP_INTENT = (
    "INSERT INTO sync_memberships (export_id, segment_id, email, pending) VALUES ($1, ?, ?, TRUE) "
    "ON CONFLICT (export_id, segment_id, email) DO NOTHING"
)
_CONTACT_UPSERT = (
    "INSERT INTO sync_contacts "
    "(export_id, email, payload_hash, contact_id, synced_at, pending, payload) "
    "VALUES ($1, ?, ?, ?, $2, FALSE, ?) ON CONFLICT (export_id, email) DO UPDATE SET "
    "payload_hash = excluded.payload_hash, "
    "contact_id = COALESCE(excluded.contact_id, sync_contacts.contact_id), "
    "synced_at = excluded.synced_at, pending = excluded.pending, "
    "payload = COALESCE(excluded.payload, sync_contacts.payload)"
)
_CONTACT_UNCONFIRMED = (
    "UPDATE sync_contacts SET payload_hash = ? WHERE export_id = ? AND email = ? "
    "AND payload_hash <> '' AND payload_hash <> ?"
)
_MEMBERSHIP_UPSERT = (
    "INSERT INTO sync_memberships (export_id, segment_id, email, pending) VALUES ($1, ?, ?, FALSE) "
    "ON CONFLICT (export_id, segment_id, email) DO UPDATE SET pending = excluded.pending"
)
_MEMBERSHIP_PENDING = (
    "UPDATE sync_memberships SET pending = ? WHERE export_id = ? AND segment_id = ? AND email = ?"
)
_MEMBERSHIP_DELETE = (
    "DELETE FROM sync_memberships WHERE export_id = ? AND segment_id = ? AND email = ?"
)
_INTENT = (
    "INSERT INTO sync_intents (export_id, at, emails, memberships) VALUES (?, ?, ?, ?) RETURNING id"
)
_DROP_INTENTS = "DELETE FROM sync_intents WHERE id IN ({})"
_HASHES = "SELECT email, payload_hash FROM sync_contacts WHERE export_id = ? AND payload_hash <> ''"
_MEMBERSHIPS = "SELECT segment_id, email FROM sync_memberships WHERE export_id = ? AND pending = ?"
_MEMBERSHIP_KEYS = (  # the segment as text: the plan's keys, built by the database
    "SELECT CAST(segment_id AS TEXT), email FROM sync_memberships "
    "WHERE export_id = ? AND pending = ?"
)


_BY_EMAIL = {"postgresql": ' ORDER BY email COLLATE "C"'}
"""The order of emails as Python compares them (by code point) where the database's own differs:
SQLite compares text byte by byte in UTF-8, which is that order; PostgreSQL's depends on the
database's collation unless told."""
_HASHES_IN_ORDER = "SELECT email, payload_hash FROM sync_contacts WHERE export_id = ?"
_MEMBERSHIPS_IN_ORDER = (
    "SELECT email, CAST(segment_id AS TEXT) FROM sync_memberships "
    "WHERE export_id = ? AND pending = ? AND segment_id IN ({})"
)
_SIZES = (
    "SELECT CAST(segment_id AS TEXT), count(*) FROM sync_memberships WHERE export_id = ? "
    "GROUP BY segment_id"
)


def contact_of_email(email: str) -> ColumnElement[bool]:
    """Sync contacts of ``email`` in any export, asked export by export: ``sync_contacts`` has
    no index on email alone (migration 0011, one B-tree less for every run to write), and the
    primary key ``(export_id, email)`` answers this with one look-up per export."""
    return and_(SyncContact.export_id.in_(select(Export.id)), SyncContact.email == email)


class SyncStateRepository:
    """Read and write one export's sync state. Writes are upserts, so committing the same
    acknowledged batch twice (a resumed run resending its batch in flight) is harmless.

    The run engine reads and writes hundreds of thousands of rows here, so the bulk reads and
    writes are plain SQL executed by the database driver (one statement, many parameter rows),
    without the ORM's per-row work; the statements are valid on SQLite and PostgreSQL alike."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _execute_many(self, statement: str, rows: list[tuple[Any, ...]], *shared: Any) -> None:
        execute_many(self.session, statement, rows, shared=shared)

    def _select(
        self, statement: str, *params: Any, stream: bool = False
    ) -> Iterator[tuple[Any, ...]]:
        return select_rows(self.session, statement, *params, stream=stream)

    def _stamp(self, now: datetime) -> Any:
        """``now`` as the driver stores ``synced_at``."""
        return bind_value(self.session, SyncContact.__table__.c.synced_at, now)

    def hashes(self, export_id: int) -> dict[str, str]:
        """email → payload hash of every acknowledged contact (a contact only intended, never
        acknowledged, is left out)."""
        return dict(self._select(_HASHES, export_id))

    def memberships(self, export_id: int, *, pending: bool = False) -> set[tuple[int, str]]:
        """``(segment_id, email)`` of every membership segsync created for the export, or with
        ``pending=True`` of every membership a batch may have created without an answer yet
        (what intents still hold becomes pending first)."""
        if pending:
            self.settle_intents(export_id)
        rows = self._select(_MEMBERSHIPS, export_id, pending)
        return {(int(segment_id), email) for segment_id, email in rows}

    def hashes_in_order(self, export_id: int) -> Iterator[tuple[str, str]]:
        """``(email, payload hash)`` of every contact, by email as Python orders text; a
        contact only intended has the empty hash. Streamed (a server-side cursor on
        PostgreSQL): the walk of :mod:`segsync.services.sync.settled` holds none of them."""
        self.settle_intents(export_id)
        return self._select(_HASHES_IN_ORDER + self._by_email(), export_id, stream=True)

    def memberships_in_order(
        self, export_id: int, segment_ids: Sequence[int]
    ) -> Iterator[tuple[str, str]]:
        """``(email, segment id as text)`` of the acknowledged memberships of these segments,
        in the order of :meth:`hashes_in_order` (the database sorts them, spilling to disk as
        it needs)."""
        if not segment_ids:
            return iter(())
        marks = ", ".join("?" * len(segment_ids))
        statement = _MEMBERSHIPS_IN_ORDER.format(marks) + self._by_email()
        return self._select(statement, export_id, False, *segment_ids, stream=True)

    def _by_email(self) -> str:
        return _BY_EMAIL.get(self.session.get_bind().dialect.name, " ORDER BY email")

    def sizes(self, export_id: int) -> dict[str, int]:
        """Memberships per segment (its id as text), acknowledged and pending."""
        self.settle_intents(export_id)
        return dict(self._select(_SIZES, export_id))

    def membership_keys(self, export_id: int, *, pending: bool = False) -> set[tuple[str, str]]:
        """:meth:`memberships` with the segment id as text (the plan's segment keys)."""
        return set(self.membership_rows(export_id, pending=pending))

    def membership_rows(
        self, export_id: int, *, pending: bool = False
    ) -> Iterator[tuple[str, str]]:
        """:meth:`membership_keys` as the driver streams them, without a set of them all."""
        if pending:
            self.settle_intents(export_id)
        return self._select(_MEMBERSHIP_KEYS, export_id, pending)

    def record_intents(
        self,
        export_id: int,
        emails: Iterable[str],
        memberships: Iterable[tuple[int, str]],
        *,
        now: datetime,
    ) -> None:
        """Write-ahead: the contacts and memberships a batch about to leave may create, as
        pending rows. Rows already there (known or pending) are left as they are."""
        contacts = [(email,) for email in dict.fromkeys(emails)]
        self._execute_many(_CONTACT_INTENT, contacts, export_id, self._stamp(now))
        self._execute_many(_MEMBERSHIP_INTENT, list(dict.fromkeys(memberships)), export_id)

    def unconfirm(self, export_id: int, sent: Iterable[tuple[str, str]]) -> None:
        """Write-ahead for fields: ``(email, payload hash)`` of upserts about to leave. A known
        contact whose recorded hash is another gets :data:`UNCONFIRMED` for a hash until the
        acknowledgement records the one sent; one that is new or sent unchanged stays."""
        rows = [(UNCONFIRMED, export_id, email, digest) for email, digest in dict.fromkeys(sent)]
        self._execute_many(_CONTACT_UNCONFIRMED, rows)

    def add_intent(
        self,
        export_id: int,
        emails: Iterable[str],
        memberships: Iterable[tuple[int, str]],
        *,
        now: datetime,
        changing: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Write-ahead, kept whole: what batches about to leave may create, in one intent row;
        its id (for :meth:`drop_intents` once the batches are answered). Read as
        :meth:`record_intents` would have written it (:meth:`settle_intents`). ``changing``:
        what :meth:`unconfirm` takes, for the same batches."""
        self.unconfirm(export_id, changing)
        stamp = bind_value(self.session, SyncIntent.__table__.c.at, now)
        texts = (
            orjson.dumps(list(dict.fromkeys(emails))).decode(),
            orjson.dumps(list(dict.fromkeys(memberships))).decode(),
        )
        return int(execute(self.session, _INTENT, export_id, stamp, *texts).scalar_one())

    def drop_intents(self, ids: Sequence[int]) -> None:
        """Delete these intents (their batches were answered; or they are pending rows now)."""
        for marks, values in in_lists(ids):
            execute(self.session, _DROP_INTENTS.format(marks), *values)

    def settle_intents(self, export_id: int | None = None) -> int:
        """Turn what the intents of ``export_id`` (None: of every export) still hold into pending
        rows, in the session's transaction, and delete them; how many there were. Doing it twice,
        or at once with the run that wrote them, is harmless: pending rows never replace known
        ones, and an acknowledgement turns a pending row into a known one."""
        query = select(SyncIntent).order_by(SyncIntent.id)
        if export_id is not None:
            query = query.where(SyncIntent.export_id == export_id)
        intents = list(self.session.scalars(query))
        for intent in intents:
            memberships = [(int(s), str(e)) for s, e in orjson.loads(intent.memberships)]
            self.record_intents(
                intent.export_id, orjson.loads(intent.emails), memberships, now=intent.at
            )
        self.drop_intents([intent.id for intent in intents])
        return len(intents)

    def counts(self, export_id: int) -> tuple[int, int]:
        """How many contacts and memberships the state holds (intents held as pending)."""
        self.settle_intents(export_id)
        contacts = self.session.scalar(
            select(func.count()).where(SyncContact.export_id == export_id)
        )
        members = self.session.scalar(
            select(func.count()).where(SyncMembership.export_id == export_id)
        )
        return int(contacts or 0), int(members or 0)

    def record_contacts(
        self,
        export_id: int,
        hashes: Mapping[str, str],
        *,
        now: datetime,
        contact_ids: Mapping[str, str | None] | None = None,
        payloads: Mapping[str, str] | None = None,
    ) -> None:
        """Upsert acknowledged contacts (email → payload hash, the destination's id, and the
        mapped values sent as canonical JSON; a payload not given keeps the one recorded)."""
        ids = contact_ids or {}
        sent = payloads or {}
        rows = [
            (email, digest, ids.get(email), sent.get(email)) for email, digest in hashes.items()
        ]
        self._execute_many(_CONTACT_UPSERT, rows, export_id, self._stamp(now))

    def record_memberships(self, export_id: int, memberships: Iterable[tuple[int, str]]) -> None:
        """Record acknowledged memberships (a pending one becomes known)."""
        self._execute_many(_MEMBERSHIP_UPSERT, list(dict.fromkeys(memberships)), export_id)

    def mark_pending(self, export_id: int, memberships: Iterable[tuple[int, str]]) -> None:
        """Write-ahead for removals: these memberships are about to be removed, so until the
        removal is confirmed they are "maybe there" (pending), not known."""
        rows = [(True, export_id, s, e) for s, e in dict.fromkeys(memberships)]
        self._execute_many(_MEMBERSHIP_PENDING, rows)

    def remove_memberships(self, export_id: int, memberships: Iterable[tuple[int, str]]) -> None:
        """Forget memberships the destination confirmed removed or absent (known or pending)."""
        rows = [(export_id, s, e) for s, e in dict.fromkeys(memberships)]
        self._execute_many(_MEMBERSHIP_DELETE, rows)

    def forget_segment(self, export_id: int, segment_id: int, keep: Iterable[str] = ()) -> None:
        """Forget the memberships of one segment's list (the list is gone), but those of the
        emails in ``keep`` (made on the list that replaced it)."""
        self.settle_intents(export_id)
        condition = and_(
            SyncMembership.export_id == export_id, SyncMembership.segment_id == segment_id
        )
        kept = list(dict.fromkeys(keep))
        if not kept:
            self.session.execute(delete(SyncMembership).where(condition))
            return
        recorded = self.memberships(export_id) | self.memberships(export_id, pending=True)
        forgotten = {e for s, e in recorded if s == segment_id} - set(kept)
        self.remove_memberships(export_id, [(segment_id, email) for email in forgotten])

    def clear(self, export_id: int) -> None:
        """Forget the export's whole sync state (the next run sends everyone again)."""
        self.session.execute(delete(SyncIntent).where(SyncIntent.export_id == export_id))
        self.session.execute(delete(SyncMembership).where(SyncMembership.export_id == export_id))
        self.session.execute(delete(SyncContact).where(SyncContact.export_id == export_id))
