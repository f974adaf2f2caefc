"""Read an export's members for a run (X2): one streamed pass per segment, emails normalised,
invalid ones set aside, each email kept once.

Rules (our decisions where docs/requirements.md is silent):

* A person in several segments is one contact on several lists.
* Two profiles with the same (normalised) email: the lowest profile id wins; the others are set
  aside as ``duplicate`` and their segments do not count for that email.
* A person forgotten with ``segsync forget`` (their email's digest is suppressed) is set aside
  as ``forgotten``, without recording the email again, and never sent.
* An empty or invalid email sets the profile aside as ``invalid`` with the reason; a value that
  cannot be sent in its mapped field (e.g. 12.5 for an integer field) sets it aside as
  ``rejected`` (it is not sent, and another profile with that email may take its place).

Memory stays flat in the rows: members arrive in Arrow batches and only one batch at a time
becomes Python objects. What is kept per distinct email is its hash and segments, plus its
payload only when the run may send it (new, changed, or on a list it is not on yet).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from segsync.domain.emails import email_digest, mask_email, normalise_email
from segsync.domain.mapping import FieldMapping, build_contact, mapped_attributes, payload_hash
from segsync.domain.plan import Desired
from segsync.domain.segment_definition import parse_definition
from segsync.errors import RecordRejected
from segsync.segments.compiler import compile_segment
from segsync.segments.evaluate import stream_members
from segsync.services.context import ServiceContext
from segsync.services.profiles.manage import catalog
from segsync.storage.repositories.runs import RejectRecord

log = logging.getLogger(__name__)

STREAM_BATCH_ROWS = 10_000
FORGOTTEN_REASON = (
    "forgotten with `segsync forget`: never sent again "
    "(an administrator may lift this with `segsync erasures lift EMAIL`)"
)
_EMPTY: dict[str, Any] = {}

NeedsPayload = Callable[[str, str, str], bool]
"""``(email, payload_hash, segment_key) -> bool``: whether the run may have to send this
contact for this segment (its payload must then be kept)."""


@dataclass(frozen=True)
class SegmentSource:
    """One segment of the export: its key in the plan (the segment id as text), its name and
    its definition (JSON or YAML text)."""

    key: str
    name: str
    definition: str


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
    conversion_rejected: int = 0
    forgotten: int = 0
    rejects: list[RejectRecord] = field(default_factory=list)
    per_segment: dict[str, int] = field(default_factory=dict)

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
            )


class _Scanner:
    def __init__(
        self,
        mapping: FieldMapping,
        key: str,
        needs_payload: NeedsPayload,
        suppressed: frozenset[str] = frozenset(),
    ) -> None:
        self.mapping = mapping
        self.key = key
        self.needs_payload = needs_payload
        self.suppressed = suppressed
        self.scan = MemberScan()
        self.email_of: dict[Any, str] = {}  # profile id → its valid email
        self.set_aside: set[Any] = set()  # profile ids with an invalid email or a bad value

    def row(self, segment: str, row: dict[str, Any]) -> None:
        profile_id = row[self.key]
        if profile_id in self.set_aside:
            return
        known = self.email_of.get(profile_id)
        if known is not None:
            self._again(segment, known, profile_id, row)
            return
        email, reason = normalise_email(row.get(self.mapping.email))
        if email is None:
            self.set_aside.add(profile_id)
            raw = row.get(self.mapping.email)
            self.scan.rejects.append(
                RejectRecord(
                    "invalid",
                    str(profile_id),
                    None if raw is None else str(raw),
                    reason or "invalid",
                )
            )
            self.scan.invalid += 1
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
        digest = payload_hash(contact.fields, contact.custom)
        current = self.scan.entries.get(email)
        if current is not None and current.profile_id < profile_id:
            return  # a duplicate: the lower profile id keeps the email
        keep = self.needs_payload(email, digest, segment)
        self.scan.entries[email] = _Entry(
            profile_id,
            digest,
            contact.fields if keep else _EMPTY,
            contact.custom if keep else _EMPTY,
            {segment},
            keep,
        )

    def _again(self, segment: str, email: str, profile_id: Any, row: dict[str, Any]) -> None:
        """A profile already seen in an earlier segment."""
        entry = self.scan.entries.get(email)
        if entry is None or entry.profile_id != profile_id:
            return  # it lost its email to a lower profile id
        entry.segments.add(segment)
        if not entry.has_payload and self.needs_payload(email, entry.payload_hash, segment):
            contact = build_contact(self.mapping, row)  # the same row: it built before
            entry.fields, entry.custom, entry.has_payload = contact.fields, contact.custom, True

    def finish(self) -> MemberScan:
        scan = self.scan
        scan.members = len(self.email_of) + len(self.set_aside)
        for profile_id, email in self.email_of.items():
            winner = scan.entries[email].profile_id
            if winner != profile_id:
                scan.duplicates += 1
                scan.rejects.append(
                    RejectRecord(
                        "duplicate",
                        str(profile_id),
                        email,
                        f"duplicate: profile {winner} has the same email and is sent instead",
                    )
                )
        del self.email_of
        return scan


def scan_members(
    ctx: ServiceContext,
    segments: Sequence[SegmentSource],
    mapping: FieldMapping,
    *,
    needs_payload: NeedsPayload | None = None,
    batch_size: int = STREAM_BATCH_ROWS,
    on_rows: Callable[[int], None] | None = None,
    suppressed: frozenset[str] = frozenset(),
) -> MemberScan:
    """Stream every segment's members with the mapped attributes (one pass per segment) and
    return the distinct valid contacts. ``needs_payload`` (default: always) says which payloads
    to keep; ``on_rows`` is told how many rows each Arrow batch held (progress); people whose
    email digest is in ``suppressed`` are set aside as forgotten."""
    cat = catalog(ctx)
    engine = ctx.profiles
    profile = engine.table(cat.profile_table)
    attributes = [a for a in mapped_attributes(mapping) if a != cat.profile_key]
    scanner = _Scanner(
        mapping, cat.profile_key, needs_payload or (lambda _e, _h, _s: True), suppressed
    )
    now = ctx.now()
    for source in segments:
        compiled = compile_segment(parse_definition(source.definition), cat, engine.table, now)
        rows = 0
        for batch in stream_members(compiled, profile, cat.profile_key, attributes, batch_size):
            for row in batch.to_pylist():
                scanner.row(source.key, row)
            rows += batch.num_rows
            if on_rows is not None:
                on_rows(batch.num_rows)
        scanner.scan.per_segment[source.key] = rows
        log.info("segment %r: %d members read", source.name, rows)
    return scanner.finish()
