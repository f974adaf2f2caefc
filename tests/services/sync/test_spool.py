"""The spool of a first run's batches made beyond those held in memory (services/sync/spool.py):
written by one thread, read back by another in the order written, gone when closed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from segsync.domain.plan import UpsertItem
from segsync.services.sync.spool import _LENGTH, Spool


def batch(n: int) -> list[UpsertItem]:
    fields = {"FirstName": f"F{n}", "Joined": datetime(2026, 1, n % 28 + 1, tzinfo=UTC)}
    custom = {"Spend": Decimal("12.50"), "Score": 1.5 * n}
    return [UpsertItem(f"p{n}-{i}@example.com", fields, custom, "1", f"h{n}", n) for i in range(3)]


def test_batches_come_back_in_the_order_written_across_threads(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(LookupError):
        spool.get()
    writer = threading.Thread(target=lambda: [spool.put(batch(n)) for n in range(500)])
    writer.start()
    got: list[list[UpsertItem]] = []
    while len(got) < 500:
        try:
            got.append(spool.get())
        except LookupError:
            writer.join(timeout=0.01)  # not written yet: let the writer go on
    writer.join()
    assert got == [batch(n) for n in range(500)]
    assert spool.held == 0
    with pytest.raises(LookupError):
        spool.get()
    spool.close()


def test_the_file_is_made_with_the_first_batch_unlinked_and_gone_when_closed(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    assert spool._file is None
    spool.put(batch(1))
    spool.put(batch(2))
    assert spool.held == 2
    assert spool._file is not None
    assert not list(tmp_path.iterdir())  # unlinked from the start: nothing left behind
    assert spool.get() == batch(1)
    spool.close()
    assert spool.held == 0
    with pytest.raises(LookupError):
        spool.get()


def plain(n: int) -> list[UpsertItem]:
    """A batch of built-in values only (text, numbers, booleans, None), two items sharing one
    contact's payload as a contact in two segments does."""
    fields = {"FirstName": f"F{n}", "Orders": n, "Gold": n % 2 == 0, "Phone": None}
    custom = {"float--Spend": 12.5 * n, "integer--Big": 2**70 + n, "string--City": "Lisboa é"}
    return [
        UpsertItem(f"p{n}@example.com", fields, custom, segment, f"h{n}", profile)
        for segment, profile in (("1", n), (None, f"key-{n}"))
    ]


def record_kinds(spool: Spool) -> list[bytes]:
    """Which writer made each record in the spool's file (the byte after its length)."""
    assert spool._file is not None
    spool._file.seek(0)
    data, kinds, at = spool._file.read(), [], 0
    while at < len(data):
        kinds.append(data[at + _LENGTH : at + _LENGTH + 1])
        at += _LENGTH + int.from_bytes(data[at : at + _LENGTH], "big")
    return kinds


def test_batches_of_built_in_values_are_marshalled_and_others_pickled_alike(
    tmp_path: Path,
) -> None:
    """A batch of built-in values goes through marshal, one with a date or a Decimal through
    pickle; either comes back as the same items, of the same types, the payloads still shared."""
    spool = Spool(tmp_path)
    spool.put(plain(1))
    spool.put(batch(2))
    spool.put(plain(3))
    assert record_kinds(spool) == [b"m", b"p", b"m"]
    for want in (plain(1), batch(2), plain(3)):
        got = spool.get()
        assert got == want
        for item, wanted in zip(got, want, strict=True):
            assert type(item) is UpsertItem
            values = [*item.fields.values(), *item.custom.values(), item.profile_id]
            wanted_values = [*wanted.fields.values(), *wanted.custom.values(), wanted.profile_id]
            assert [type(v) for v in values] == [type(v) for v in wanted_values]
            assert list(item.fields) == list(wanted.fields)  # the order of the fields, kept
        assert all(item.fields is got[0].fields for item in got)  # one payload object, shared
    spool.close()
