"""Fixtures of the end-to-end tests: the ``segsync`` processes a test starts are killed at its
end if they still run, so a failing test leaves none behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.midrun import Processes


@pytest.fixture
def processes() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.kill_leftovers()
