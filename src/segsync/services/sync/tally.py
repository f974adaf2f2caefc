"""The checkpoint stage's arithmetic, with no I/O: what acknowledged batches and removals mean
for the sync state and for the run's counts.

Counts across attempts (a resumed run): the sync state already holds what earlier attempts got
acknowledged, so a new attempt plans only the rest. ``added``, ``updated``, ``removed`` and
``requests`` therefore accumulate from the run's saved counts (``base``); ``members``,
``invalid``, ``duplicates`` and ``rejected`` are what this attempt's reading and sending found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace

from segsync.destinations.base import BatchResult
from segsync.domain.plan import UpsertItem, acknowledged, profile_text
from segsync.domain.runs import RunCounts
from segsync.storage.repositories.run_changes import ChangeRow, payload_json
from segsync.storage.repositories.runs import RejectRecord


@dataclass(frozen=True)
class RunProgress:
    """A progress event for a live progress bar: ``phase`` is ``queued`` (waiting for a
    worker or for its connection), ``reading``, ``planning``, ``lists``, ``sending``,
    ``removing`` or ``done``; ``items_done``/``items_total`` count upsert items and removals
    (of the whole run, earlier attempts included)."""

    run_id: int
    phase: str
    items_done: int
    items_total: int
    counts: RunCounts


ProgressCallback = Callable[[RunProgress], None]
Changing = Sequence[tuple[str, str]]
"""``(email, payload hash sent)`` of the items that change a known contact's fields."""


@dataclass(frozen=True)
class Snapshot:
    """The run's progress at one instant, as it is saved on the run's row."""

    counts: RunCounts
    items_done: int
    items_total: int


@dataclass(frozen=True)
class Ack:
    """One acknowledged batch: the plan's items as sent, and the destination's answer."""

    items: Sequence[UpsertItem]
    result: BatchResult
    intent: int | None = None
    """The write-ahead intent that holds these items (:meth:`~.store.RunStore.intend`)."""


@dataclass
class StateChanges:
    """What one commit writes to the sync state and the run's rejects."""

    hashes: dict[str, str] = field(default_factory=dict)
    memberships: list[tuple[int, str]] = field(default_factory=list)
    contact_ids: dict[str, str | None] = field(default_factory=dict)
    rejects: list[RejectRecord] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """Emails the destination refused in these batches (for the log; pending in the state)."""
    refused_memberships: list[tuple[int, str]] = field(default_factory=list)
    """The memberships the refused items carried (pending: they may exist)."""
    answered: list[tuple[int, int]] = field(default_factory=list)
    """``(intent, items)``: how many items of each intent these acknowledgements answer."""
    payloads: dict[str, str] = field(default_factory=dict)
    """email → the mapped values acknowledged, as canonical JSON."""
    changes: list[ChangeRow] = field(default_factory=list)
    """The change record's rows, one per item. A row already marked a new contact needs no
    look-up (:meth:`Tally._new_contact`); the store fills in the others' previous values."""


class Tally:
    """One attempt's counts. ``base``/``base_done`` are what earlier attempts saved; a tally
    made without a ``base`` is the run's first attempt."""

    def __init__(self, base: RunCounts | None = None, base_done: int = 0) -> None:
        self.first_attempt = base is None
        self.base = replace(base) if base is not None else RunCounts()
        self.counts = replace(self.base)
        self.items_done = base_done
        self.items_total = base_done
        self._base_done = base_done
        self.conversion_rejected = 0
        self._planned_hashes: Mapping[str, str] = {}
        self._counted: set[str] = set()
        self._several: AbstractSet[str] | None = None
        self._api_rejected: set[str] = set()

    def snapshot(self) -> Snapshot:
        return Snapshot(replace(self.counts), self.items_done, self.items_total)

    def progress(self, run_id: int, phase: str) -> RunProgress:
        return RunProgress(run_id, phase, self.items_done, self.items_total, replace(self.counts))

    def read(self, members: int, invalid: int, duplicates: int, conversion_rejected: int) -> None:
        """What reading the members found (replacing an earlier attempt's findings)."""
        self.counts.members = members
        self.counts.invalid = invalid
        self.counts.duplicates = duplicates
        self.conversion_rejected = conversion_rejected
        self.counts.rejected = conversion_rejected

    def planned(
        self,
        *,
        hashes: Mapping[str, str],
        unchanged: int,
        items: int,
        several: AbstractSet[str] | None = None,
    ) -> None:
        """The plan is known: ``hashes`` is the sync state it was built on; ``items`` counts its
        upsert items and removals; ``several``: its emails with more than one item, when known
        (:attr:`~segsync.domain.plan.SyncPlan.several`; only those are remembered as counted,
        instead of every contact: 4 MB of a 100k first run)."""
        self._planned_hashes = hashes
        self._several = several
        acknowledged_before = self.base.added + self.base.updated
        self.counts.unchanged = max(0, unchanged - acknowledged_before)
        self.items_total = self._base_done + items

    def changing(self, items: Sequence[UpsertItem]) -> Changing:
        """``(email, payload hash)`` of the items that change the fields of a contact the plan's
        sync state knows, written ahead as unconfirmed with their intent
        (:meth:`~.store.RunStore.intend`); none in a first run, whose state knows no contact."""
        known = self._planned_hashes
        if not known:
            return []
        return [
            (item.email, item.payload_hash)
            for item in items
            if known.get(item.email, item.payload_hash) != item.payload_hash
        ]

    def more_items(self, items: int) -> None:
        """``items`` more to send, made while sending (a first run sent as it is read)."""
        self.items_total += items

    def acknowledge(self, acks: Sequence[Ack]) -> StateChanges:
        """Count acknowledged batches; return the sync-state changes and rejects to commit.
        A contact counts once as added or updated, however many of its items were sent."""
        changes = StateChanges()
        for ack in acks:
            refused = {
                o.email: o.reason or "refused by the destination"
                for o in ack.result.outcomes
                if not o.ok
            }
            delta = acknowledged(ack.items, frozenset(refused))
            changes.contact_ids.update((o.email, o.contact_id) for o in ack.result.outcomes if o.ok)
            if ack.intent is not None:
                changes.answered.append((ack.intent, len(ack.items)))
            if refused:
                profile_of = {item.email: profile_text(item.profile_id) for item in ack.items}
                changes.rejects.extend(
                    RejectRecord("rejected", profile_of.get(email), email, reason)
                    for email, reason in refused.items()
                    if email not in self._api_rejected
                )
            _record_items(ack.items, refused, changes, self._new_contact)
            self._api_rejected.update(refused)
            changes.refused.extend(refused)
            for email, digest in delta.hashes.items():
                changes.hashes[email] = digest
                self._count(email, digest)
            changes.memberships.extend((int(s), email) for s, email in delta.memberships)
            self.items_done += len(ack.items)
        self.counts.rejected = self.conversion_rejected + len(self._api_rejected)
        return changes

    def _new_contact(self, email: str) -> bool:
        """Whether the change record may take ``email`` as a new contact with no previous
        payload without looking it up: in a run's first attempt, an email the sync state had
        no acknowledged contact for when the run planned (a row this attempt wrote for it
        earlier says the same, and the state gains a payload only with such a row)."""
        return self.first_attempt and email not in self._planned_hashes

    def _count(self, email: str, digest: str) -> None:
        if self._several is None or email in self._several:
            if email in self._counted:
                return
            self._counted.add(email)
        old = self._planned_hashes.get(email)
        if old is None:
            self.counts.added += 1
        elif old != digest:
            self.counts.updated += 1

    def removed(self, done: int, were_members: int) -> None:
        """``done`` removals were confirmed, ``were_members`` of them took someone off a list
        (the others confirmed that a pending membership does not exist)."""
        self.counts.removed += were_members
        self.items_done += done

    def requests(self, made: int) -> None:
        """This attempt has made ``made`` requests so far."""
        self.counts.requests = self.base.requests + made

    @property
    def api_rejected(self) -> int:
        """Contacts the destination refused in this attempt."""
        return len(self._api_rejected)


def _record_items(
    items: Sequence[UpsertItem],
    refused: Mapping[str, str],
    changes: StateChanges,
    new_contact: Callable[[str], bool],
) -> None:
    """The change record's rows of one acknowledged batch, the payloads it acknowledged and the
    memberships of its refused items. Rows of emails ``new_contact`` vouches for are marked new
    contacts with no previous payload already: the store looks up only the others."""
    texts: dict[str, str] = {}
    for item in items:
        text = texts.get(item.email)
        if text is None:
            text = texts[item.email] = payload_json(item.fields, item.custom)
        segment = None if item.segment is None else int(item.segment)
        if item.email in refused:
            action = "refused"
            if segment is not None:  # pending: it may exist, as its intent held it
                changes.refused_memberships.append((segment, item.email))
        else:
            action = "updated" if segment is None else "added"
            changes.payloads[item.email] = text
        profile = profile_text(item.profile_id)
        new = new_contact(item.email)
        changes.changes.append(ChangeRow(action, item.email, segment, profile, text, None, new))
