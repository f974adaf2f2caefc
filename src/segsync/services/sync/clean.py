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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from segsync.domain.emails import email_digest, mask_email, normalise_email
from segsync.domain.mapping import FieldMapping, build_contact, contact_hash
from segsync.domain.plan import Desired
from segsync.errors import RecordRejected
from segsync.storage.repositories.runs import RejectRecord

log = logging.getLogger(__name__)

FORGOTTEN_REASON = (
    "forgotten with `segsync forget`: never sent again "
    "(an administrator may lift this with `segsync erasures lift EMAIL`)"
)
_EMPTY: dict[str, Any] = {}

NeedsPayload = Callable[[str, str, str], bool]
"""``(email, payload_hash, segment_key) -> bool``: whether the run may have to send this
contact for this segment (its payload must then be kept)."""


@dataclass(slots=True)
class _Entry:
    profile_id: Any
    payload_hash: str
    fields: dict[str, Any]
    custom: dict[str, Any]
    segments: set[str]
    has_payload: bool


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

    @property
    def contacts(self) -> int:
        """Distinct valid emails (what the contract limit is compared with, X3)."""
        return len(self.entries)

    def desired(self) -> Iterator[Desired]:
        """The entries as :class:`Desired` contacts, for :func:`segsync.domain.plan.build_plan`."""
        for email, entry in self.entries.items():
            yield Desired(
                email=email,
                payload_hash=entry.payload_hash,
                fields=entry.fields,
                custom=entry.custom,
                segments=frozenset(entry.segments),
                profile_id=str(entry.profile_id),
            )


class Cleaner:
    """Feed it every member row (:meth:`row`), segment after segment, then :meth:`finish`."""

    def __init__(
        self,
        mapping: FieldMapping,
        key: str,
        needs_payload: NeedsPayload | None = None,
        suppressed: frozenset[str] = frozenset(),
    ) -> None:
        self.mapping = mapping
        self.key = key
        self.needs_payload = needs_payload or (lambda _e, _h, _s: True)
        self.suppressed = suppressed
        self.scan = MemberScan()
        self.email_of: dict[Any, str] = {}  # profile id → its valid email
        self.set_aside: set[Any] = set()  # profile ids with an invalid email or a bad value

    def row(self, segment: str, row: dict[str, Any]) -> None:
        """One member of ``segment``: the profile key and the mapped attributes."""
        profile_id = row[self.key]
        if profile_id in self.set_aside:
            return
        known = self.email_of.get(profile_id)
        if known is not None:
            self._again(segment, known, profile_id, row)
            return
        email, reason = normalise_email(row.get(self.mapping.email))
        if email is None:
            self._set_aside_invalid(profile_id, row.get(self.mapping.email), reason)
            return
        if self.suppressed and email_digest(email) in self.suppressed:
            self.set_aside.add(profile_id)
            self.scan.rejects.append(
                RejectRecord("forgotten", str(profile_id), None, FORGOTTEN_REASON)
            )
            self.scan.forgotten += 1
            return
        try:
            contact = build_contact(self.mapping, row)
        except RecordRejected as err:
            self.set_aside.add(profile_id)
            self.scan.rejects.append(RejectRecord("rejected", str(profile_id), email, err.message))
            self.scan.conversion_rejected += 1
            log.info("profile %s set aside (%s): %s", profile_id, mask_email(email), err.message)
            return
        self.email_of[profile_id] = email
        digest = contact_hash(self.mapping, contact)
        current = self.scan.entries.get(email)
        if current is not None and current.profile_id < profile_id:
            self._merge(segment, email, current)  # the lower profile id keeps the fields
            return
        segments = {segment} if current is None else {segment, *current.segments}
        keep = any(self.needs_payload(email, digest, s) for s in segments)
        self.scan.entries[email] = _Entry(
            profile_id,
            digest,
            contact.fields if keep else _EMPTY,
            contact.custom if keep else _EMPTY,
            segments,
            keep,
        )

    def _merge(self, segment: str, email: str, entry: _Entry) -> None:
        """A member of ``segment`` whose email belongs to ``entry`` (a lower profile id)."""
        entry.segments.add(segment)
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

    def _again(self, segment: str, email: str, profile_id: Any, row: dict[str, Any]) -> None:
        """A profile already seen in an earlier segment."""
        entry = self.scan.entries[email]
        if entry.profile_id != profile_id:
            self._merge(segment, email, entry)  # it gave its email to a lower profile id
            return
        entry.segments.add(segment)
        if not entry.has_payload and self.needs_payload(email, entry.payload_hash, segment):
            contact = build_contact(self.mapping, row)  # the same row: it built before
            entry.fields, entry.custom, entry.has_payload = contact.fields, contact.custom, True

    def fill(self, row: dict[str, Any]) -> None:
        """The row of a winning profile whose payload is missing (read again by id)."""
        email = self.scan.missing.get(row[self.key])
        entry = None if email is None else self.scan.entries.get(email)
        if entry is None or entry.has_payload or entry.profile_id != row[self.key]:
            return
        contact = build_contact(self.mapping, row)  # it built when it was first read
        entry.fields, entry.custom, entry.has_payload = contact.fields, contact.custom, True

    def finish(self) -> MemberScan:
        """Count the merged profiles and return the scan; the cleaner is spent afterwards.
        :attr:`MemberScan.missing` then names the payloads still to :meth:`fill`."""
        scan = self.scan
        scan.members = len(self.email_of) + len(self.set_aside)
        for profile_id, email in self.email_of.items():
            winner = scan.entries[email].profile_id
            if winner != profile_id:
                scan.duplicates += 1
                scan.rejects.append(
                    RejectRecord(
                        "merged",
                        str(profile_id),
                        email,
                        f"merged: profile {winner} has the same email; its field values are "
                        "sent, and this profile's segments count for the contact too",
                    )
                )
        scan.missing = {
            profile_id: email
            for profile_id, email in scan.missing.items()
            if not scan.entries[email].has_payload and scan.entries[email].profile_id == profile_id
        }
        del self.email_of
        return scan
