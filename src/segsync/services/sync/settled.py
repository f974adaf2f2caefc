"""Settled contacts found apart (X2): on a rerun, most members are exactly as the sync state
has them — the same payload, on the same lists, acknowledged. This finds them without holding
either side in memory, so that reading, cleaning and planning (:mod:`.read`, :mod:`.clean`,
:func:`~segsync.domain.plan.build_plan`) only see the rest.

Both sides are read in email order: the members of every segment by the profile engine (one
DuckDB query, its members' emails trimmed and lower-cased, sorted — DuckDB spills a big sort to
disk), the sync state by the metadata database (its contacts by their primary key, each segment's
memberships likewise), and walked together as a merge join, one email at a time. An email is
*settled* when

* every member row with it comes from one profile, has it as its email already (valid and
  normalised, as the clean stage would make it: DuckDB tells for the ASCII emails, Python for
  the rest) and a payload hash the profile engine computed (:mod:`.batch_hash`);
* the sync state has that hash acknowledged for it, and its acknowledged memberships are
  exactly the export's segments it is in now, each with a list, none pending;
* it is not forgotten (suppressed).

Such a contact needs no item and no removal: the plan would count it unchanged and list it as a
member of its segments, nothing more (:func:`~segsync.domain.plan.build_plan`'s ``settled``).
Every other email the walk meets — on either side — is *unsettled*: the run reads those
members again and plans them as before, against the state of those emails only.

The walk gives up (None: the run reads and plans everything, as before) where it cannot vouch
for the outcome: the profile engine is not DuckDB or cannot hash the payloads, or an email
trimmed and lower-cased by DuckDB is not what Python's normalising makes of it, or either side
does not come in Python's order of text (each is checked as it goes).
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import chain, groupby, islice
from operator import itemgetter
from typing import Any

from segsync.domain.emails import email_digest, normalise_email
from segsync.domain.mapping import FieldMapping
from segsync.domain.sync_state import Memberships, SyncStateView
from segsync.profiles.sql import quote_identifier
from segsync.services.context import ServiceContext
from segsync.services.sync.batch_hash import DIGEST_COLUMN, EMAIL_AS_IS_COLUMN, email_valid_sql
from segsync.services.sync.by_email import (
    ASCII_ONLY,
    members_by_email,
    sort_memory,
    sorted_rows,
)
from segsync.services.sync.compiled import member_sql
from segsync.services.sync.read import MemberReading, SegmentSource, profile_reader
from segsync.storage.repositories.sync import SyncStateRepository

log = logging.getLogger(__name__)

STATE_AHEAD = 50_000
"""Rows of each of the sync state's streams read on a thread of their own while DuckDB sorts
the members (it lets go of Python's lock as it does). Measured (docs/design.md, twelfth round):
the 1 % change of bench/export.py peaked at 231 MB instead of 218 MB, a million's rerun at 281
instead of 275 MB. (DuckDB's query on the other thread instead cost 15–18 MB more at a million,
its memory then coming from another of the C library's per-thread arenas.)"""
MOST_UNSETTLED = 0.25
"""Past this share of the state's memberships unsettled (and past 1,000 emails), the walk gives
up and the run reads and plans everything. The walk holds the unsettled emails' rows, hashes and
memberships; the share was set when it looked them up by email instead (as many look-ups cost
more than loading the state) and has not been measured again since."""
_END = (None, None)
_PLAIN = "__segsync_key_plain"
_HEAD = 3  # columns before the member row as read.scan_members reads it: key, segment, plain


@dataclass
class Settled:
    """What the settled contacts add up to, and the rest: the unsettled emails and their
    members' rows (held: few, or the walk gives up)."""

    contacts: int = 0
    """Settled contacts: each is one profile (counted as a member) and one unchanged contact."""
    per_segment: Counter[str] = field(default_factory=Counter)
    """Settled contacts per segment: the members of its list they are."""
    rows: dict[str, int] = field(default_factory=dict)
    """Member rows per segment, all of them (as the read stage counts them)."""
    unsettled: set[str] = field(default_factory=set)
    """Emails (trimmed and lower-cased) to plan in full: those of ``unread`` and those only the
    sync state has."""
    hashes: dict[str, str] = field(default_factory=dict)
    """The unsettled emails' acknowledged payload hashes, as the walk read them."""
    memberships: list[tuple[str, str]] = field(default_factory=list)
    """The unsettled emails' acknowledged memberships of the export's segments with a list,
    ``(segment key, email)``, as the walk read them."""
    names: tuple[str, ...] = ()
    """The columns of the member rows in ``unread``, as :func:`.read.scan_members` reads them."""
    unread: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    """Segment key → the rows of its members whose email is unsettled or empty, to read."""

    @property
    def key(self) -> str:
        """The profile key's column: the first of a member row."""
        return self.names[0]

    def state(self, light: SyncStateView) -> SyncStateView:
        """The sync state to plan the unsettled emails against: ``light`` (list ids, pending
        memberships and sizes, read after the lists were checked) with their hashes and
        memberships. The export's other segments have no list, so no memberships either."""
        emails = {email: email for email in self.hashes}
        return replace(
            light, hashes=self.hashes, memberships=Memberships(self.memberships, emails=emails)
        )


def find_settled(
    ctx: ServiceContext,
    export_id: int,
    segments: Sequence[SegmentSource],
    mapping: FieldMapping,
    state: SyncStateView,
    suppressed: frozenset[str],
) -> Settled | None:
    """Walk the members and the export's sync state (``state``: its list ids, pending
    memberships and sizes; the rest is read here) in email order, see the module. None when
    the walk cannot vouch for its outcome or too much is unsettled: read and plan everything
    then."""
    listed = sorted(key for key, list_id in state.list_ids.items() if list_id)
    most = max(1000, MOST_UNSETTLED * sum(state.recorded_per_segment().values()))
    with profile_reader(ctx) as reader, ctx.db.session() as session:
        query = member_sql(reader, export_id, "walk", segments, mapping)
        if query is None:
            return None
        sync = SyncStateRepository(session)
        walk = _Walk(mapping, frozenset(listed), {e for _, e in state.pending}, suppressed, most)
        import duckdb  # the profile engine has it loaded: no import for a run that never walks

        try:
            with sort_memory(reader.profiles.duckdb) as cursor, ThreadPoolExecutor(1) as pool:
                ahead = pool.submit(_state_ahead, sync, export_id, listed)  # while DuckDB sorts
                members = sorted_rows(cursor, query)
                settled = walk.run(members, *ahead.result())
        except duckdb.Error as err:  # out of memory for the sort, above all
            walk.gave_up, settled = f"DuckDB: {err}", None
    if settled is None:
        log.info("settled contacts: none vouched for (%s); everything is read", walk.gave_up)
        return None
    log.info(
        "%d contacts settled, %d emails read in full", settled.contacts, len(settled.unsettled)
    )
    return settled


def walk_sql(
    ctx: ServiceContext, segments: Sequence[SegmentSource], mapping: FieldMapping
) -> str | None:
    """Every segment's member rows as :func:`.read.scan_members` reads them (the profile
    key, the mapped attributes, the payload hash and whether the email is taken as it is),
    after their email key, segment key and whether the key is plainly the email Python makes
    of the row's (:func:`_plain`), by email key (no email last); None where the profile
    engine cannot give them so."""
    reading = MemberReading.of(ctx, mapping)
    if [name for name, _ in reading.hashing.sql] != [DIGEST_COLUMN, EMAIL_AS_IS_COLUMN]:
        return None

    def plain(alias: str, key: str) -> str:
        as_is = f"{alias}.{quote_identifier(EMAIL_AS_IS_COLUMN)}"
        return f"{_plain(as_is, mapping.email, key)} AS {_PLAIN}"

    return members_by_email(reading, segments, mapping.email, hashed=True, extra=plain)


def _plain(as_is: str, column: str, key: str) -> str:
    """SQL telling that the email key ``key`` of the raw email in ``column`` is what
    :func:`normalise_email` makes of it: the raw email is taken as it is (``as_is``), or it is
    all ASCII — where DuckDB's ``trim`` and ``lower`` do what Python's ``strip`` and ``lower``
    do — and its key is an email Python takes as it is. Where not (NULL or false: invalid or
    not ASCII), the walk asks Python."""
    ascii_only = f"regexp_matches({quote_identifier(column)}, {ASCII_ONLY})"
    return f"CASE WHEN {as_is} THEN true ELSE {ascii_only} AND ({email_valid_sql(key)}) END"


def _state_ahead(
    sync: SyncStateRepository, export_id: int, listed: Sequence[str]
) -> tuple[Iterator[tuple[str, str]], Iterator[tuple[str, str]]]:
    """The state's contacts and memberships in email order, each begun (:func:`_ahead`)."""
    contacts = _ahead(sync.hashes_in_order(export_id))
    return contacts, _ahead(sync.memberships_in_order(export_id, [int(k) for k in listed]))


def _ahead(rows: Iterator[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """``rows``, the first :data:`STATE_AHEAD` read now, each let go as the walk passes it."""
    head = deque(islice(rows, STATE_AHEAD))

    def stream() -> Iterator[tuple[str, str]]:
        while head:
            yield head.popleft()
        yield from rows

    return stream()


class _State:
    """The sync state's side of the walk: its contacts and memberships, each in email order."""

    def __init__(
        self,
        contacts: Iterator[tuple[str, str]],
        memberships: Iterator[tuple[str, str]],
        give_up: Callable[[str], object],
    ) -> None:
        self.contacts, self.memberships, self.give_up = contacts, memberships, give_up
        self.contact: str | None
        self.known: str | None
        self.contact, self.known = next(contacts, _END)
        self.member: tuple[Any, Any] = next(memberships, _END)  # (None, None) at the end

    def up_to(self, email: str | None, settled: Settled) -> tuple[str | None, list[str]]:
        """Pass every contact and membership up to ``email`` (None: to the end): those of
        ``email`` give its acknowledged hash and segments; the others, the state's only, are
        unsettled and kept in ``settled``. Gives up on text out of Python's order."""
        hashed: str | None = None
        had: list[str] = []
        while self.contact is not None and (email is None or self.contact <= email):
            if self.contact == email:
                hashed = self.known or None  # a contact only intended has no hash
            else:
                settled.unsettled.add(self.contact)
                if self.known:
                    settled.hashes[self.contact] = self.known
            before, (self.contact, self.known) = self.contact, next(self.contacts, _END)
            if self.contact is not None and self.contact <= before:
                self.give_up("the database's order of contacts is not Python's")
                break
        while self.member[0] is not None and (email is None or self.member[0] <= email):
            if self.member[0] == email:
                had.append(self.member[1])
            else:
                settled.unsettled.add(self.member[0])
                settled.memberships.append((self.member[1], self.member[0]))
            before, self.member = self.member[0], next(self.memberships, _END)
            if self.member[0] is not None and self.member[0] < before:
                self.give_up("the database's order of memberships is not Python's")
                break
        return hashed, had


@dataclass
class _Walk:
    """The merge join of :func:`find_settled`: the export's segments with a list, the emails
    with a pending membership, the suppressed digests, and how many emails may be unsettled."""

    mapping: FieldMapping
    listed: frozenset[str]
    pending: set[str]
    suppressed: frozenset[str]
    most: float
    gave_up: str = ""
    """Why the walk gave up, when it did."""

    def run(
        self,
        members: tuple[tuple[str, ...], Iterator[list[tuple[Any, ...]]]],
        contacts: Iterator[tuple[str, str]],
        memberships: Iterator[tuple[str, str]],
    ) -> Settled | None:
        names, chunks = members
        settled = Settled(names=names[_HEAD:])
        at = {name: i for i, name in enumerate(names)}
        profile_at = _HEAD  # the profile key comes first in a member row
        email_at, digest_at, plain_at = at[self.mapping.email], at[DIGEST_COLUMN], at[_PLAIN]
        unsettled, unread = settled.unsettled, settled.unread
        hashes, pairs = settled.hashes, settled.memberships
        settled_sets: Counter[frozenset[str]] = Counter()
        singles: dict[str, frozenset[str]] = {}  # a segment key → the set of it alone
        state = _State(contacts, memberships, self._give_up)
        last = ""
        for email, group in groupby(chain.from_iterable(chunks), key=itemgetter(0)):
            found = list(group)
            if email is None:  # members without an email: last, as asked
                for row in found:
                    unread.setdefault(row[1], []).append(row[_HEAD:])
                continue
            if email <= last:
                return self._give_up("the profile engine's order of emails is not Python's")
            last = email
            hashed, had = state.up_to(email, settled)
            if self.gave_up:
                return None
            first = found[0]
            if len(found) == 1:  # most emails: one profile in one segment
                segments = singles.get(first[1]) or singles.setdefault(
                    first[1], frozenset(first[1:2])
                )
                plain = first[plain_at] or self._normal(first[email_at], email)
                same = plain and first[digest_at] == hashed and had == [first[1]]
            else:
                segments = frozenset(row[1] for row in found)
                same = (
                    all(row[plain_at] or self._normal(row[email_at], email) for row in found)
                    and all(row[digest_at] == hashed for row in found)
                    and all(row[profile_at] == first[profile_at] for row in found)
                    and len(found) == len(segments)  # one row in each of its segments
                    and len(had) == len(segments)
                    and segments.issuperset(had)
                )
            if self.gave_up:
                return None
            if (
                same
                and hashed is not None
                and segments <= self.listed
                and email not in self.pending
                and not (self.suppressed and email_digest(email) in self.suppressed)
            ):
                settled.contacts += 1
                settled_sets[segments] += 1
                continue
            unsettled.add(email)
            if hashed is not None:
                hashes[email] = hashed
            pairs.extend((segment, email) for segment in had)
            for row in found:
                unread.setdefault(row[1], []).append(row[_HEAD:])
            if len(unsettled) > self.most:
                return self._give_up(f"more than {self.most:.0f} emails unsettled")
        state.up_to(None, settled)  # in the sync state only, after the last member
        if self.gave_up:
            return None
        if len(unsettled) > self.most:
            return self._give_up(f"more than {self.most:.0f} emails unsettled")
        for segments, count in settled_sets.items():
            for segment in segments:
                settled.per_segment[segment] += count
        # a settled contact is one row in each of its segments; every other row is unread
        rows = settled.per_segment + Counter({s: len(held) for s, held in unread.items()})
        settled.rows = dict(rows)
        return settled

    def _normal(self, raw: object, email: str) -> bool:
        """Whether ``raw`` normalises to ``email`` (a valid email, DuckDB's key); gives up when
        it normalises to another valid email (DuckDB and Python would disagree)."""
        normal, _ = normalise_email(raw)
        if normal is not None and normal != email:
            self._give_up("an email DuckDB and Python normalise apart")
        return normal == email

    def _give_up(self, why: str) -> Settled | None:
        self.gave_up = why
        return None
