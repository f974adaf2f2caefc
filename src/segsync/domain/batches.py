"""Upsert items packed into batches (:func:`pack`): the fewest batches a destination's batch
size allows, no email twice in one, neighbouring emails together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

MAX_BATCH = 100
T = TypeVar("T")


def batch_count(n_items: int, max_per_email: int, max_batch: int = MAX_BATCH) -> int:
    """The fewest batches that can hold ``n_items`` with ≤ ``max_batch`` each and no email
    twice in one: ``max(ceil(n_items / max_batch), max_per_email)`` (0 when there is nothing)."""
    if n_items == 0:
        return 0
    return max(-(-n_items // max_batch), max_per_email)


def pack(items: Sequence[T], key: Callable[[T], str], max_batch: int = MAX_BATCH) -> list[list[T]]:
    """Pack ``items`` (sorted by ``key``, so equal keys are adjacent) into the fewest batches of
    at most ``max_batch`` with no key twice in one batch, each batch holding items that lie close
    together in the given order.

    Closeness matters because items come sorted by email and each batch's acknowledgement is
    written to indexes keyed by email: a batch of neighbouring emails touches a few index pages,
    a batch spread over the whole range touches one page per item (bench/export.py measured the
    run's database thread about 7× busier that way).

    With ``N`` items, ``m`` the largest group and ``C = m × max_batch``, the items are cut into
    blocks of ``C`` consecutive items. Every block but the last becomes ``m`` full batches: its
    item at offset ``j`` goes to the block's batch ``j mod m``. What remains (the last full block
    and the rest, fewer than ``2C`` items) is packed round robin: with ``R`` items and
    ``B = max(ceil(R / max_batch), m)`` batches, item ``i`` goes to batch ``i mod B``. Why this is
    correct and minimal:

    * distinct batches per key: a group occupies ``k ≤ m`` consecutive items; those inside one
      block (or inside the remainder, where ``B ≥ m``) have distinct residues; a group cut by a
      block's edge has its parts in disjoint sets of batches;
    * ≤ ``max_batch`` per batch: a block's ``m`` batches get ``max_batch`` items each; in the
      remainder batch ``b`` holds at most ``ceil(R / B) ≤ max_batch`` items;
    * minimal: any valid packing needs ``ceil(N / max_batch)`` batches for capacity and ``m``
      for the largest group. With ``q ≥ 2`` blocks in ``N = qC + r``, the full blocks but the
      last give ``(q − 1)m`` batches and the remainder ``max(ceil((C + r) / max_batch), m) = m +
      ceil(r / max_batch)``: ``qm + ceil(r / max_batch) = ceil(N / max_batch)`` in all. With fewer
      items everything is the remainder, and ``B`` is the larger of the two bounds.

    Raises ``ValueError`` when the keys are not in ascending order: sorted items are grouped,
    and checking the order needs no set of the keys seen (32 MB at 1,000,000 contacts).
    """
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    largest, run, previous = 0, 0, None
    for item in items:
        k = key(item)
        if k == previous:
            run += 1
        else:
            if previous is not None and k < previous:
                raise ValueError(f"items are not sorted by key: {k!r} comes after {previous!r}")
            previous, run = k, 1
        largest = max(largest, run)
    block = max(largest * max_batch, 1)
    head = max(len(items) // block - 1, 0) * block  # the full blocks but the last
    batches: list[list[T]] = []
    for start in range(0, head, block):
        batches.extend(list(items[start + j : start + block : largest]) for j in range(largest))
    rest = items[head:]
    n_batches = batch_count(len(rest), largest, max_batch)
    tail: list[list[T]] = [[] for _ in range(n_batches)]
    for index, item in enumerate(rest):
        tail[index % n_batches].append(item)
    return batches + tail


class BlockPacker(Generic[T]):
    """:func:`pack` for items that come a group at a time (a group: one key's items, in no
    other group; at most ``most`` items, known ahead), handing out batches as they fill, so
    that only two blocks are ever held: a first run sent while it is read
    (:mod:`segsync.services.sync.stream`).

    A block is ``most × max_batch`` consecutive items; once two are held, the first becomes
    ``most`` full batches (its item at offset ``j`` in batch ``j mod most``: a group, at most
    ``most`` consecutive items, lands in distinct batches; a group cut by the block's edge has
    its parts in disjoint batches). :meth:`finish` packs the rest (one block or more, fewer
    than two) with :func:`pack`: at least ``most × max_batch`` items need at least ``most``
    batches for capacity, so every batch but the last ``ceil(rest / max_batch)`` is full and
    the count is :func:`batch_count`'s, as if :func:`pack` had had them all."""

    def __init__(self, most: int, max_batch: int = MAX_BATCH) -> None:
        if most < 1 or max_batch < 1:
            raise ValueError("most and max_batch must be at least 1")
        self.most = most
        self.max_batch = max_batch
        self.block = most * max_batch
        self._held: list[tuple[int, T]] = []  # (group number, item): pack's key at the end
        self._groups = 0

    def add(self, group: Sequence[T]) -> list[list[T]]:
        """One group's items; the batches that filled (none, or ``most`` of them)."""
        if len(group) > self.most:
            raise ValueError(f"a group of {len(group)} items, more than {self.most}")
        self._groups += 1
        self._held.extend((self._groups, item) for item in group)
        if len(self._held) < 2 * self.block:
            return []
        block, self._held = self._held[: self.block], self._held[self.block :]
        return [[item for _, item in block[j :: self.most]] for j in range(self.most)]

    def finish(self) -> list[list[T]]:
        """The batches of the items still held (the packer is empty afterwards)."""
        held, self._held = self._held, []
        return [
            [item for _, item in batch]
            for batch in pack(held, key=lambda pair: f"{pair[0]:020d}", max_batch=self.max_batch)
        ]
