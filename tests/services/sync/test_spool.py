"""The spool of a first run's batches made beyond those held in memory (services/sync/spool.py):
written by one thread, read back by another in the order written, gone when closed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from segsync.domain.plan import UpsertItem
from segsync.services.sync.spool import Spool


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
