"""The clean stage of a run (X2): rows of segment members become one contact per distinct valid
email; what cannot be sent is set aside with its reason.

Rules (our decisions where the requirements are silent):

* A person in several segments is one contact on several lists.
* Profiles with the same (normalised) email are one Autopilot contact (a contact *is* an email):
  its lists are the union of the segments of every such profile, and its field values come from
  the profile with the lowest id. The others are counted as *merged* and named in the run's
  rejects (kind ``merged``), though their segments count.
* A person forgotten with ``segsync forget`` (their email's digest is suppressed) is set aside
  as ``forgotten``, without recording the email again, and never sent.
* An empty or invalid email sets the profile aside as ``invalid`` with the reason; a value that
  cannot be sent in its mapped field (e.g. 12.5 for an integer field) sets it aside as
  ``rejected`` (it is not sent, and another profile with that email may take its place).

What is kept per distinct email is its hash and segments, plus its payload only when the run
may send it (new, changed, or on a list it is not on yet): ``needs_payload`` says which. When a
merged profile's segment makes the run send a contact whose payload was not kept, the email is
in :attr:`MemberScan.missing`: the read stage reads the winning profile's row again
(:meth:`Cleaner.fill`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from segsync.domain.emails import email_digest, mask_email, normalise_email
from segsync.domain.mapping import FieldMapping, build_contact, contact_hash
from segsync.domain.plan import Desired
from segsync.domain.sync_state import NO_SEGMENTS, SegmentSets
from segsync.errors import RecordRejected
from segsync.storage.repositories.runs import RejectRecord

log = logging.getLogger(__name__)

FORGOTTEN_REASON = (
    "forgotten with `segsync forget`: never sent again "
    "(an administrator may lift this with `segsync erasures lift EMAIL`)"
)
_EMPTY: dict[str, Any] = {}
"""Every kept payload's empty part (most mappings have no custom fields) and every payload not
kept: one dict, never changed, instead of an empty one per contact (64 bytes each)."""

NeedsPayload = Callable[[str, str, str], bool]
"""``(email, payload_hash, segment_key) -> bool``: whether the run may have to send this
contact for this segment (its payload must then be kept)."""


@dataclass(slots=True)
class _Entry:
    profile_id: Any
    payload_hash: str
    fields: dict[str, Any]
    custom: dict[str, Any]
    segments: frozenset[str]
    """One frozenset shared by every entry with the same segments
    (:class:`~segsync.domain.sync_state.SegmentSets`)."""
    has_payload: bool

    def desired(self, email: str) -> Desired:
        """The contact as the plan wants it in the destination."""
        return Desired(
            email, self.payload_hash, self.fields, self.custom, self.segments, self.profile_id
        )


@dataclass
class MemberScan:
    """The outcome of reading the members: one entry per distinct valid email, the counts of
    X9 that reading decides, and what was set aside."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    members: int = 0
    invalid: int = 0
    duplicates: int = 0
    """Profiles merged into a contact of a lower profile id with the same email."""
    conversion_rejected: int = 0
    forgotten: int = 0
    rejects: list[RejectRecord] = field(default_factory=list)
    per_segment: dict[str, int] = field(default_factory=dict)
    missing: dict[Any, str] = field(default_factory=dict)
    """Winning profile id → email, for contacts to send whose payload was not kept."""
    apart: int = 0
    """Contacts settled apart (:mod:`.settled`): counted here, never read as entries."""
    apart_per_segment: dict[str, int] = field(default_factory=dict)
    """The settled-apart contacts per segment."""

    @property
    def contacts(self) -> int:
        """Distinct valid emails (what the contract limit is compared with, X3)."""
        return len(self.entries) + self.apart

    def settled_apart(
        self, contacts: int, per_segment: Mapping[str, int], rows: Mapping[str, int]
    ) -> None:
        """Count ``contacts`` settled apart, one profile each, ``per_segment`` of them in each
        segment, besides the entries read; ``rows``: the member rows of every segment, all."""
        self.apart = contacts
        self.apart_per_segment = dict(per_segment)
        self.members += contacts
        self.per_segment = dict(rows)

    def desired(self, *, settled_apart: bool = False) -> Iterator[Desired]:
        """The entries as :class:`Desired` contacts, for :func:`segsync.domain.plan.build_plan`;
        with ``settled_apart``, only those with a payload (the rest are :meth:`settled`)."""
        for email, entry in self.entries.items():
            if settled_apart and not entry.has_payload:
                continue
            yield entry.desired(email)

    def settled(self) -> Iterator[tuple[str, frozenset[str]]]:
        """``(email, segment keys)`` of the entries without a payload: ``needs_payload`` said
        no for every one of their segments, so the plan has nothing to send them (the same
        state; ``settled`` of :func:`~segsync.domain.plan.build_plan`). A scan read without
        ``needs_payload`` has none."""
        for email, entry in self.entries.items():
            if not entry.has_payload:
                yield email, entry.segments


class Cleaner:
    """Feed it every member row (:meth:`row`), segment after segment, then :meth:`finish`.
    Within a segment the rows may come in any order (the read stage takes them as the profile
    engine streams them): the outcome is the same but for the order of the rejects.

    ``known_hashes`` (email → payload hash, the sync state's): a contact whose hash equals its
    known one keeps the known text object instead of its own equal copy — a rerun holds both
    for every unchanged contact otherwise (113 bytes each: 11 MB per 100,000 contacts)."""

    def __init__(
        self,
        mapping: FieldMapping,
        key: str,
        needs_payload: NeedsPayload | None = None,
        suppressed: frozenset[str] = frozenset(),
        known_hashes: Mapping[str, str] | None = None,
    ) -> None:
        self.mapping = mapping
        self.key = key
        self.needs_payload = needs_payload or (lambda _e, _h, _s: True)
        self.suppressed = suppressed
        self.known_hashes: Mapping[str, str] = known_hashes or {}
        self.scan = MemberScan()
        self.merged: dict[Any, str] = {}
        """Profile id → email of every profile whose email a lower profile id has: few. The
        others are the entries' profiles, found by their email; no map of every profile's email
        is kept (at a million profiles it was 50 MB and two look-ups per member in a table too
        big for the processor's caches)."""
        self.set_aside: set[Any] = set()  # profile ids with an invalid email or a bad value
        self._with = SegmentSets().add  # entries' segments: one frozenset per distinct set

    def row(self, segment: str, row: dict[str, Any]) -> None:
        """One member of ``segment``: the profile key and the mapped attributes."""
        self._member(segment, row[self.key], row.get(self.mapping.email), row, None, False)

    def hashed(
        self,
        segment: str,
        ids: Sequence[Any],
        emails: Sequence[object],
        digests: Sequence[str],
        ready: Sequence[bool | None],
    ) -> list[tuple[int, str]]:
        """Members of ``segment`` whose payload hashes were computed already (each row's
        profile id, raw email and hash, in the order read, and whether the raw email is known
        to be valid and normalised already): the same decisions as :meth:`row`, without
        building their contacts. Returns the positions of the rows whose payload the run
        needs, each with its email: hand each such row and email to :meth:`complete`.

        Only for rows whose values all go out as they are (:mod:`.batch_hash`): such a row
        can never be refused for a value that does not fit."""
        member = self._member
        return [
            (i, email)
            for i, (profile_id, raw, digest, as_is) in enumerate(
                zip(ids, emails, digests, ready, strict=True)
            )
            if (email := member(segment, profile_id, raw, None, digest, as_is)) is not None
        ]

    def complete(self, row: dict[str, Any], email: str) -> None:
        """The row of a member :meth:`hashed` said needs its payload, with the email it gave:
        build it, and take Python's hash of it (the one the sync state keeps)."""
        profile_id = row[self.key]
        entry = self.scan.entries[email]
        if entry.profile_id == profile_id and not entry.has_payload:  # not merged meanwhile
            self._give_payload(entry, row, rehash=True)

    def _member(
        self,
        segment: str,
        profile_id: Any,
        raw: object,
        row: dict[str, Any] | None,
        digest: str | None,
        as_is: bool | None,
    ) -> str | None:
        """One member: from its ``row`` (its contact is built here), or with its ``digest``
        only (``row`` None); ``as_is``: its raw email is valid and normalised already. The
        email when the payload of such a digest-only member is needed, else None."""
        if profile_id in self.set_aside:
            return None
        email, reason = (cast(str, raw), None) if as_is else normalise_email(raw)
        if email is None:  # the same answer every time: a profile is set aside when first met
            self._set_aside_invalid(profile_id, raw, reason)
            return None
        current = self.scan.entries.get(email)
        if current is not None and (current.profile_id == profile_id or profile_id in self.merged):
            return self._again(segment, email, profile_id, current, row)
        if self.suppressed and email_digest(email) in self.suppressed:
            self.set_aside.add(profile_id)
            self.scan.rejects.append(
                RejectRecord("forgotten", str(profile_id), None, FORGOTTEN_REASON)
            )
            self.scan.forgotten += 1
            return None
        contact = None
        if row is not None:
            try:
                contact = build_contact(self.mapping, row)
            except RecordRejected as err:
                self.set_aside.add(profile_id)
                self.scan.rejects.append(
                    RejectRecord("rejected", str(profile_id), email, err.message)
                )
                self.scan.conversion_rejected += 1
                log.info(
                    "profile %s set aside (%s): %s", profile_id, mask_email(email), err.message
                )
                return None
            digest = contact_hash(self.mapping, contact)
        assert digest is not None
        known = self.known_hashes.get(email)
        if known == digest:
            digest = known  # one object for both (see the class)
        if current is not None and current.profile_id < profile_id:
            self.merged[profile_id] = email
            self._merge(segment, email, current)  # the lower profile id keeps the fields
            return None
        if current is None:
            segments = self._with(NO_SEGMENTS, segment)
            keep = self.needs_payload(email, digest, segment)
        else:  # this profile takes the email from a higher profile id
            self.merged[current.profile_id] = email
            segments = self._with(current.segments, segment)
            keep = any(self.needs_payload(email, digest, s) for s in segments)
        if keep and contact is not None:
            self.scan.entries[email] = _Entry(
                profile_id,
                digest,
                contact.fields or _EMPTY,
                contact.custom or _EMPTY,
                segments,
                True,
            )
            return None
        self.scan.entries[email] = _Entry(profile_id, digest, _EMPTY, _EMPTY, segments, False)
        return email if keep else None

    def _merge(self, segment: str, email: str, entry: _Entry) -> None:
        """A member of ``segment`` whose email belongs to ``entry`` (a lower profile id)."""
        entry.segments = self._with(entry.segments, segment)
        if not entry.has_payload and self.needs_payload(email, entry.payload_hash, segment):
            self.scan.missing[entry.profile_id] = email

    def _set_aside_invalid(self, profile_id: Any, raw: object, reason: str | None) -> None:
        self.set_aside.add(profile_id)
        self.scan.rejects.append(
            RejectRecord(
                "invalid", str(profile_id), None if raw is None else str(raw), reason or "invalid"
            )
        )
        self.scan.invalid += 1

    def _again(
        self, segment: str, email: str, profile_id: Any, entry: _Entry, row: dict[str, Any] | None
    ) -> str | None:
        """A profile already seen in an earlier segment, ``entry`` its email's (the email when
        a digest-only member's payload is needed now)."""
        if entry.profile_id != profile_id:
            self._merge(segment, email, entry)  # it gave its email to a lower profile id
            return None
        entry.segments = self._with(entry.segments, segment)
        if not entry.has_payload and self.needs_payload(email, entry.payload_hash, segment):
            if row is None:
                return email
            self._give_payload(entry, row)  # the same row: it built before
        return None

    def _give_payload(self, entry: _Entry, row: dict[str, Any], *, rehash: bool = False) -> None:
        contact = build_contact(self.mapping, row)
        entry.fields, entry.custom = contact.fields or _EMPTY, contact.custom or _EMPTY
        entry.has_payload = True
        if rehash:
            entry.payload_hash = contact_hash(self.mapping, contact)

    def fill(self, row: dict[str, Any]) -> None:
        """The row of a winning profile whose payload is missing (read again by id)."""
        email = self.scan.missing.get(row[self.key])
        entry = None if email is None else self.scan.entries.get(email)
        if entry is None or entry.has_payload or entry.profile_id != row[self.key]:
            return
        self._give_payload(entry, row)  # it built when it was first read

    def drain(self) -> dict[str, _Entry]:
        """Hand over the contacts so far and go on afresh, the counts and rejects kept: for a
        read that has fed every row of their emails and of every profile met so far (a first
        run read in email order, :mod:`.stream`). The members and merged profiles of what is
        handed over are counted, as :meth:`finish` counts them all."""
        entries = self.scan.entries
        if entries or self.merged or self.set_aside:
            self._count_members()
            self.scan.entries, self.merged, self.set_aside = {}, {}, set()
        return entries

    def finish(self) -> MemberScan:
        """Count the merged profiles and return the scan; the cleaner is spent afterwards.
        :attr:`MemberScan.missing` then names the payloads still to :meth:`fill`."""
        scan = self._count_members()
        scan.missing = {
            profile_id: email
            for profile_id, email in scan.missing.items()
            if not scan.entries[email].has_payload and scan.entries[email].profile_id == profile_id
        }
        return scan

    def _count_members(self) -> MemberScan:
        """Count the members and merged profiles met (besides those counted before: a
        :meth:`drain`'s) and name the merged ones in the rejects."""
        scan = self.scan
        scan.members += len(scan.entries) + len(self.merged) + len(self.set_aside)
        scan.duplicates += len(self.merged)
        for profile_id, email in self.merged.items():
            winner = scan.entries[email].profile_id
            scan.rejects.append(
                RejectRecord(
                    "merged",
                    str(profile_id),
                    email,
                    f"merged: profile {winner} has the same email; its field values are "
                    "sent, and this profile's segments count for the contact too",
                )
            )
        return scan
