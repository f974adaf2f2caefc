"""The export's sync state as a run reads it (:class:`SyncStateView`), and its list memberships
held per contact (:class:`Memberships`).

A run holds every membership segsync created for the export while it reads and plans. As a set
of ``(segment key, email)`` pairs that cost a tuple, an email text of its own and a slot in the
set per membership: about 175 bytes each, 20 MB for the 116,000 memberships of 100,000
contacts. Held as one dict entry per email whose value is the frozenset of its segments — one
frozenset shared by every contact with the same segments, and the email text shared with the
state's hashes — it is about 50 bytes per contact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

NO_SEGMENTS: frozenset[str] = frozenset()


class SegmentSets:
    """One frozenset object per distinct set of segment keys, for every contact that has it: a
    run has a few distinct sets and up to millions of contacts (a set each was 216 bytes)."""

    __slots__ = ("_sets",)

    def __init__(self) -> None:
        self._sets: dict[frozenset[str], frozenset[str]] = {}

    def add(self, segments: frozenset[str], segment: str) -> frozenset[str]:
        """``segments`` and ``segment``, as the one frozenset every holder of them shares."""
        if segment in segments:
            return segments
        wanted = segments | {segment}
        return self._sets.setdefault(wanted, wanted)


class Memberships(AbstractSet[tuple[str, str]]):
    """A read-only set of ``(segment key, email)`` pairs, held per email.

    ``emails``: text objects to use for the emails (email → that same email, e.g. the keys of
    the state's hashes), so that a contact's email is held once for both."""

    __slots__ = ("_by_email", "_size")

    def __init__(
        self, pairs: Iterable[tuple[str, str]] = (), *, emails: Mapping[str, str] | None = None
    ) -> None:
        by_email: dict[str, frozenset[str]] = {}
        sets = SegmentSets()
        size = 0
        for segment, email in pairs:
            if emails is not None:
                email = emails.get(email, email)
            had = by_email.get(email, NO_SEGMENTS)
            if segment not in had:
                by_email[email] = sets.add(had, segment)
                size += 1
        self._by_email = by_email
        self._size = size

    @classmethod
    def of(cls, pairs: AbstractSet[tuple[str, str]]) -> Memberships:
        """``pairs`` as :class:`Memberships` (itself when it is one already)."""
        return pairs if isinstance(pairs, Memberships) else cls(pairs)

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> AbstractSet[Any]:
        """What the set operators (``|``, ``&``, ``-``) return: a plain set (their results may
        hold other things than pairs)."""
        return set(it)

    @property
    def by_email(self) -> Mapping[str, frozenset[str]]:
        """email → the segment keys of its memberships (never empty)."""
        return self._by_email

    def segments_of(self, email: str) -> frozenset[str]:
        """The segment keys of ``email``'s memberships (empty when it has none)."""
        return self._by_email.get(email, NO_SEGMENTS)

    def per_segment(self) -> Counter[str]:
        """How many memberships each segment has."""
        sizes: Counter[str] = Counter()
        for segments, contacts in Counter(self._by_email.values()).items():
            for segment in segments:
                sizes[segment] += contacts
        return sizes

    def without(self, segments: Container[str]) -> Memberships:
        """These memberships but those of ``segments``."""
        return Memberships(pair for pair in self if pair[0] not in segments)

    def __contains__(self, pair: object) -> bool:
        if not isinstance(pair, tuple) or len(pair) != 2:
            return False
        segment, email = pair
        return segment in self._by_email.get(email, NO_SEGMENTS)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for email, segments in self._by_email.items():
            for segment in segments:
                yield segment, email

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"Memberships({sorted(self)!r})"


@dataclass(frozen=True)
class SyncStateView:
    """The export's sync state as the planner reads it.

    ``hashes``: email → payload hash of every acknowledged contact. ``memberships``: the
    ``(segment_key, email)`` list memberships segsync created (acknowledged; any set of pairs
    is taken and held as :class:`Memberships`). ``pending``: the memberships a batch may have
    created whose answer never came (write-ahead intents): each may or may not exist.
    ``list_ids``: segment key → the Autopilot list id, or ``None`` while its list does not
    exist yet. ``sizes``: memberships per segment (known and pending), when the view holds only
    some contacts' (:meth:`recorded_per_segment` then answers for the whole state).
    """

    hashes: Mapping[str, str] = field(default_factory=dict)
    memberships: Memberships = field(default_factory=Memberships)
    list_ids: Mapping[str, str | None] = field(default_factory=dict)
    pending: AbstractSet[tuple[str, str]] = field(default_factory=frozenset)
    sizes: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "memberships", Memberships.of(self.memberships))

    def needs(self, email: str, payload_hash: str, segment: str) -> bool:
        """Whether :func:`~segsync.domain.plan.build_plan` against this state may give a
        contact with this payload hash an item for ``segment``: it is new or changed, the
        segment's list does not exist, or its membership is not acknowledged. A contact for
        which this is False in every one of its segments is *settled* (``build_plan``'s
        ``settled``)."""
        return (
            self.hashes.get(email) != payload_hash
            or self.list_ids.get(segment) is None
            or segment not in self.memberships.segments_of(email)
        )

    def recorded_per_segment(self) -> Counter[str]:
        """Memberships per segment, known and pending (a pending one may exist)."""
        if self.sizes is not None:
            return Counter(self.sizes)
        sizes = self.memberships.per_segment()
        sizes.update(segment for segment, _ in self.pending)
        return sizes
