"""Plan before sending (docs/design.md): diff the desired contacts with the sync state, pack the
upserts.

The runner streams the export's members, builds one :class:`Desired` per distinct valid email,
and calls :func:`build_plan` with the export's :class:`SyncStateView`. The resulting
:class:`SyncPlan` says which lists to create, which upsert items to send in which batches, and
which memberships to remove; dry runs print it, real runs execute it batch by batch and commit
:func:`acknowledged` state after each batch. A resumed run simply plans again: the sync state is
the checkpoint, so only what was not yet acknowledged is planned.

Items. A contact that is new or whose payload hash changed gets at least one item; each new list
membership gets its own item (an Autopilot contact object carries one ``_autopilot_list``). Every
item carries the full payload: upserts by email are idempotent, so repeating the payload is
harmless and any single item fully brings the contact up to date.

Memory. Only hashes and the items to send are kept; unchanged contacts are counted and dropped as
the iterator is consumed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from operator import attrgetter
from typing import Any, NamedTuple

from segsync.domain.batches import MAX_BATCH as MAX_BATCH
from segsync.domain.batches import batch_count as batch_count
from segsync.domain.batches import pack as pack
from segsync.domain.sync_state import NO_SEGMENTS, SegmentSets, SyncStateView
from segsync.errors import InputError

_EMAIL_THEN_SEGMENT = attrgetter("email", "segment")


class RemovalPolicy(StrEnum):
    """What happens when a person leaves a segment (E7)."""

    MIRROR = "mirror"  # remove them from that segment's list; the contact stays in Autopilot
    ADD_ONLY = "add_only"  # never remove

    @classmethod
    def parse(cls, text: str) -> RemovalPolicy:
        """Accept ``mirror``, ``add-only`` or ``add_only`` (any case)."""
        value = text.strip().lower().replace("-", "_")
        try:
            return cls(value)
        except ValueError:
            raise InputError(f"removal policy {text!r}: use mirror or add-only") from None


class Desired(NamedTuple):
    """One distinct, valid, normalised email as this run wants it in Autopilot. (Named tuples,
    like :class:`UpsertItem`: every run makes one per member, and a named tuple is made two to
    three times faster than a frozen dataclass.)"""

    email: str
    payload_hash: str
    fields: Mapping[str, Any]
    custom: Mapping[str, Any]
    segments: frozenset[str]
    profile_id: object = None
    """The profile whose values are sent (the lowest id among those with this email): its key
    as the profile store gave it, made text only where it is written (:func:`profile_text`;
    a text of its own per contact was 56 bytes: 5 MB of a 100k first run)."""


class UpsertItem(NamedTuple):
    """One contact object to send: the full payload, plus the list of ``segment`` if not None."""

    email: str
    fields: Mapping[str, Any]
    custom: Mapping[str, Any]
    segment: str | None
    payload_hash: str
    profile_id: object = None
    """As :attr:`Desired.profile_id`."""


def profile_text(profile_id: object) -> str | None:
    """A profile key as the run's records write it."""
    return None if profile_id is None else str(profile_id)


@dataclass
class ListCounts:
    """Per segment (and its list): desired members, memberships to add, memberships to remove."""

    members: int = 0
    to_add: int = 0
    to_remove: int = 0


@dataclass
class PlanCounts:
    """``contacts`` = added + updated + unchanged (distinct desired emails)."""

    contacts: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    new_memberships: int = 0
    removals: int = 0
    items: int = 0


@dataclass(frozen=True)
class SyncPlan:
    """What a run will do, in order: ensure lists, send batches, remove memberships."""

    segments: tuple[str, ...]
    list_ids: dict[str, str | None]
    lists_to_ensure: list[str]
    batches: list[list[UpsertItem]]
    removals: list[tuple[str, str]]
    counts: PlanCounts
    per_list: dict[str, ListCounts]
    several: AbstractSet[str] | None = None
    """The emails with more than one item (None: not known): only those can be acknowledged
    more than once, so only those need remembering to count each contact once."""
    ordered: list[UpsertItem] | None = field(default=None, repr=False, compare=False)
    """Every item in planned order, when the planner has them so (:meth:`items` sorts the
    batches' items otherwise: at 1,000,000 contacts 64 MB of sort keys at once)."""

    streamed: int | None = None
    """The batches sent as they were made, when the plan does not hold them (a first run sent
    while it was read, :mod:`segsync.services.sync.stream`; ``batches`` is empty then)."""

    @property
    def batch_count(self) -> int:
        """Upsert batches: those the plan holds, or those streamed."""
        return len(self.batches) if self.streamed is None else self.streamed

    @property
    def requests_lower_bound(self) -> int:
        """List creations + upsert batches + one request per removal."""
        return len(self.lists_to_ensure) + self.batch_count + len(self.removals)

    @property
    def is_empty(self) -> bool:
        """Nothing to send."""
        return self.requests_lower_bound == 0

    def items(self) -> Iterator[UpsertItem]:
        """Every upsert item in planned order (by email, then segment), across the batches."""
        yield from self._ordered

    @cached_property
    def _ordered(self) -> list[UpsertItem]:
        # Sorted once: the hold gate reads the items twice (its samples, the fingerprint).
        # An email has either one item without a segment or items with distinct segments, so
        # (email, segment) never compares None with text.
        if self.ordered is not None:
            return self.ordered
        every = (item for batch in self.batches for item in batch)
        return sorted(every, key=_EMAIL_THEN_SEGMENT)


def contact_items(contact: Desired, targets: Iterable[str | None]) -> list[UpsertItem]:
    """The items that send ``contact`` (its whole payload) with the list of each of
    ``targets`` (None: with no list)."""
    email, fields, custom = contact.email, contact.fields, contact.custom
    payload_hash, profile_id = contact.payload_hash, contact.profile_id
    return [
        UpsertItem(email, fields, custom, target, payload_hash, profile_id) for target in targets
    ]


def build_plan(
    desired: Iterable[Desired],
    state: SyncStateView,
    *,
    segments: Collection[str],
    removal: RemovalPolicy,
    max_batch: int = MAX_BATCH,
    settled: Iterable[tuple[str, Collection[str]]] = (),
    apart: tuple[int, Mapping[str, int]] = (0, {}),
) -> SyncPlan:
    """Diff ``desired`` (consumed once; emails distinct and normalised) with ``state``.

    ``settled``: ``(email, segment keys)`` of more contacts for which ``state.needs`` is False
    in every segment — the same payload hash, every one of their segments' lists existing and
    their membership of each acknowledged. They need no item: they are counted as
    unchanged list members and their memberships are kept, without building a
    :class:`Desired` for each (on a rerun that is nearly everyone). Their emails must be
    distinct from each other and from ``desired``'s (not checked).

    ``apart``: more settled contacts, only counted — how many, and how many in each segment —
    whose emails appear nowhere else and whose memberships ``state`` does not hold (the run's
    walk of members and state in email order found them, :mod:`segsync.services.sync.settled`).

    ``segments`` are the export's segment keys. A segment whose list does not exist yet (no id in
    ``state.list_ids``) is in ``lists_to_ensure``, and any memberships the state still holds for it
    are ignored (its list is gone, so every member is a new membership and nothing is removed).
    Memberships in the state for segments no longer in the export are left alone. Removals are
    planned only under :attr:`RemovalPolicy.MIRROR`, for known and pending memberships alike: a
    pending membership the contact should have is sent again (which confirms it), one it should
    not have is removed (removing a membership that does not exist is harmless).

    Items and removals are in a deterministic order (by email, then segment), so the same inputs
    give the same plan. Raises ``ValueError`` for a duplicate email, a contact with no segment or a
    segment not in ``segments`` (the runner's job to prevent).
    """
    segment_keys = tuple(sorted(set(segments)))
    list_ids = {key: state.list_ids.get(key) for key in segment_keys}
    lists_to_ensure = [key for key in segment_keys if list_ids[key] is None]
    fresh = frozenset(lists_to_ensure)
    per_list = {key: ListCounts() for key in segment_keys}
    counts = PlanCounts()
    leaving: dict[str, frozenset[str]] = {}  # email → its removable memberships' segments
    if removal is RemovalPolicy.MIRROR:
        leaving = _removable(state, frozenset(per_list) - fresh)
    removals: list[tuple[str, str]] = []
    seen: set[str] = set()
    several: set[str] = set()
    items: list[UpsertItem] = []
    hashes, memberships = state.hashes, state.memberships.by_email
    members = dict.fromkeys(segment_keys, 0)
    to_add = dict.fromkeys(segment_keys, 0)
    added = updated = unchanged = 0
    # Every run plans every member: the loop keeps its counts in locals.
    for contact in desired:
        email = contact.email
        if email in seen:
            raise ValueError(f"duplicate email in desired contacts: {email!r}")
        seen.add(email)
        if not contact.segments:
            raise ValueError(f"desired contact {email!r} is in no segment")
        old_hash = hashes.get(email)
        changed = old_hash != contact.payload_hash
        if old_hash is None:
            added += 1
        elif changed:
            updated += 1
        else:
            unchanged += 1
        new_segments: list[str | None] = []
        had = memberships.get(email, NO_SEGMENTS)
        for segment in sorted(contact.segments) if len(contact.segments) > 1 else contact.segments:
            if segment not in members:
                raise ValueError(f"desired contact {email!r} is in unknown segment {segment!r}")
            members[segment] += 1
            if segment in fresh or segment not in had:
                new_segments.append(segment)
                to_add[segment] += 1
        if changed and not new_segments:
            new_segments.append(None)
        if leaving and (gone := leaving.pop(email, None)) is not None:
            removals.extend((segment, email) for segment in gone - contact.segments)
        if len(new_segments) > 1:
            several.add(email)
        if new_segments:
            items.extend(contact_items(contact, new_segments))
    for email, keys in settled:
        unchanged += 1
        for segment in keys:
            if segment not in members:
                raise ValueError(f"settled contact {email!r} is in unknown segment {segment!r}")
            members[segment] += 1
        if leaving and (gone := leaving.pop(email, None)) is not None:
            removals.extend((segment, email) for segment in gone.difference(keys))
    unchanged += apart[0]
    for segment, contacts in apart[1].items():
        if segment not in members:
            raise ValueError(f"settled contacts in unknown segment {segment!r}")
        members[segment] += contacts
    counts.contacts = added + updated + unchanged
    counts.added, counts.updated, counts.unchanged = added, updated, unchanged
    counts.new_memberships = sum(to_add.values())
    for key, listed in per_list.items():
        listed.members, listed.to_add = members[key], to_add[key]

    del seen
    items.sort(key=lambda item: item.email)  # stable: segments stay in order within an email
    for email, gone in leaving.items():  # in no segment of the export any more
        removals.extend((segment, email) for segment in gone)
    del leaving
    removals.sort(key=lambda m: (m[1], m[0]))
    for segment, _ in removals:
        per_list[segment].to_remove += 1
    counts.removals = len(removals)
    counts.items = len(items)
    return SyncPlan(
        segments=segment_keys,
        list_ids=list_ids,
        lists_to_ensure=lists_to_ensure,
        batches=pack(items, key=lambda item: item.email, max_batch=max_batch),
        removals=removals,
        counts=counts,
        per_list=per_list,
        several=several,
        ordered=items,
    )


def _removable(state: SyncStateView, segments: frozenset[str]) -> dict[str, frozenset[str]]:
    """email → the segments of its memberships, known or pending, among ``segments`` (those
    :func:`build_plan` may remove): one dict entry per contact, the frozensets shared."""
    cut: dict[frozenset[str], frozenset[str]] = {}  # each distinct set of segments, cut once
    removable: dict[str, frozenset[str]] = {}
    for email, had in state.memberships.by_email.items():
        mine = cut.get(had)
        if mine is None:
            mine = cut[had] = had & segments
        if mine:
            removable[email] = mine
    sets = SegmentSets()
    for segment, email in state.pending:
        if segment in segments:
            removable[email] = sets.add(removable.get(email, NO_SEGMENTS), segment)
    return removable


@dataclass
class StateDelta:
    """What to commit to the sync state after a batch was acknowledged."""

    hashes: dict[str, str] = field(default_factory=dict)
    memberships: list[tuple[str, str]] = field(default_factory=list)


def acknowledged(
    batch: Iterable[UpsertItem], rejected: AbstractSet[str] = frozenset()
) -> StateDelta:
    """The sync-state changes of an acknowledged batch: every item whose email Autopilot did not
    reject records its payload hash and, if it carried a list, its membership."""
    delta = StateDelta()
    for item in batch:
        if item.email in rejected:
            continue
        delta.hashes[item.email] = item.payload_hash
        if item.segment is not None:
            delta.memberships.append((item.segment, item.email))
    return delta


NO_LIST = ""


def sample_items(
    plan: SyncPlan, per_list: int = 3
) -> dict[str, list[tuple[UpsertItem, str | None]]]:
    """Up to ``per_list`` items per segment key with the list id each would carry, for the dry
    run's sample payloads (X11; the destination renders them with its own serializer).

    Items that only update a contact (no new membership) are under :data:`NO_LIST` (``""``). A list
    that does not exist yet shows ``"<new list for segment KEY>"`` as its id.
    """
    samples: dict[str, list[tuple[UpsertItem, str | None]]] = {}
    for item in plan.items():
        key = NO_LIST if item.segment is None else item.segment
        bucket = samples.setdefault(key, [])
        if len(bucket) >= per_list:
            continue
        list_id: str | None = None
        if item.segment is not None:
            list_id = plan.list_ids.get(item.segment) or f"<new list for segment {item.segment}>"
        bucket.append((item, list_id))
    return samples


def list_title(segment_name: str, prefix: str | None = None) -> str:
    """The Autopilot list title of a segment (E6): the optional prefix, then the segment name."""
    return f"{prefix or ''}{segment_name}"
