"""The removal stage commits each confirmation as soon as the commit task is free, so a crash
re-sends at most the removals in flight and one round confirmed but not committed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from segsync.services.sync.removals import remove_memberships


class Removals:
    """A destination whose removals answer only when the test lets them (``answer``)."""

    def __init__(self, in_flight: int, members: set[str]) -> None:
        self.in_flight = in_flight
        self.members = members
        self.sent: list[tuple[str, str]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.intended: list[tuple[str, str]] = []

    async def intend(self, memberships: Sequence[tuple[str, str]]) -> None:
        self.intended.extend(memberships)

    def max_in_flight(self) -> int:
        return self.in_flight

    async def remove_membership(self, list_id: str, email: str) -> bool:
        assert ("1", email) in self.intended  # never a removal before its intent
        self.sent.append((list_id, email))
        gate = self.gates.setdefault(email, asyncio.Event())
        await gate.wait()
        return email in self.members

    def answer(self, email: str) -> None:
        self.gates.setdefault(email, asyncio.Event()).set()


def removing(
    destination: Removals,
    emails: list[str],
    commit: Callable[[list[tuple[str, str]], list[tuple[str, str]]], Awaitable[None]],
    stop: Callable[[], bool] = lambda: False,
) -> Awaitable[bool]:
    """The removal stage of ``emails`` from segment 1's list."""
    return remove_memberships(
        destination,  # type: ignore[arg-type]
        [("1", e) for e in emails],
        {"1": "list_1"},
        commit=commit,
        after_commit=lambda: None,
        stop=stop,
        intend=destination.intend,
    )


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_each_confirmation_is_committed_before_the_next_round_ends() -> None:
    emails = [f"p{i}@x.org" for i in range(6)]
    destination = Removals(in_flight=2, members=set(emails[:4]))
    committed: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]] = []

    async def commit(done: list[tuple[str, str]], were_members: list[tuple[str, str]]) -> None:
        committed.append((list(done), were_members))

    stage = asyncio.ensure_future(removing(destination, emails, commit))
    for email in emails:
        await settle()
        assert len(destination.sent) - sum(len(d) for d, _ in committed) <= 2  # in flight
        destination.answer(email)
        await settle()
        # confirmed → committed at once, not after a group of them
        assert ("1", email) in [m for done, _ in committed for m in done]
    assert await stage is True
    assert [m for done, _ in committed for m in done] == [("1", e) for e in emails]
    # only those who were members count as removed
    assert sorted(m for _, were in committed for m in were) == [("1", e) for e in emails[:4]]


async def test_a_stop_finishes_the_removals_in_flight_and_commits_them() -> None:
    emails = [f"p{i}@x.org" for i in range(5)]
    destination = Removals(in_flight=2, members=set(emails))
    committed: list[tuple[str, str]] = []
    stopping = False

    async def commit(done: list[tuple[str, str]], _were: list[tuple[str, str]]) -> None:
        committed.extend(done)

    stage = asyncio.ensure_future(removing(destination, emails, commit, lambda: stopping))
    await settle()
    assert len(destination.sent) == 2
    stopping = True
    destination.answer(emails[0])
    destination.answer(emails[1])
    assert await stage is False
    assert sorted(committed) == [("1", emails[0]), ("1", emails[1])]
    assert len(destination.sent) == 2  # nothing new started after the stop
    assert len(destination.intended) == 2  # nothing intended but unsent


async def test_a_failed_removal_is_raised_after_the_confirmed_ones_are_committed() -> None:
    class Failing(Removals):
        async def remove_membership(self, list_id: str, email: str) -> bool:
            if email == "bad@x.org":
                raise RuntimeError("boom")
            return True

    destination = Failing(in_flight=1, members=set())
    committed: list[Any] = []

    async def commit(done: list[tuple[str, str]], _were: list[tuple[str, str]]) -> None:
        committed.extend(done)

    with pytest.raises(RuntimeError, match="boom"):
        await removing(destination, ["ok@x.org", "bad@x.org", "never@x.org"], commit)
    assert committed == [("1", "ok@x.org")]
