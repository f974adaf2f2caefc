"""The Destination base: concurrent batch sending, and the registry of destination types."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, ClassVar

import pytest

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.destinations.base import (
    AccountInfo,
    BatchResult,
    ConnectionConfig,
    Destination,
    ListMember,
    RecordOutcome,
    UpsertItem,
)
from segsync.destinations.capabilities import Capabilities
from segsync.destinations.registry import capabilities, create_destination, destination_types
from segsync.errors import InputError, RetriableError


class Recording(Destination):
    """Batches finish when the test releases them; records what ran concurrently."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        name="recording",
        display_name="Recording",
        description="",
        consent_statement="",
        max_batch_size=10,
        default_rate_limit=5.0,
        default_base_url="",
        catalogue=AUTOPILOT_FIELDS,
        settings=(),
    )

    def __init__(self, in_flight: int, fail: set[str] | None = None) -> None:
        self.in_flight = in_flight
        self.fail = fail or set()
        self.running: set[str] = set()
        self.peak = 0
        self.started: list[str] = []
        self.release: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.began: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.cancelled: list[str] = []

    def max_in_flight(self) -> int:
        return self.in_flight

    async def upsert_batch(self, items: Sequence[UpsertItem]) -> BatchResult:
        name = items[0].email
        self.started.append(name)
        self.running.add(name)
        self.peak = max(self.peak, len(self.running))
        self.began[name].set()
        try:
            await self.release[name].wait()
        except asyncio.CancelledError:
            self.cancelled.append(name)
            raise
        finally:
            self.running.discard(name)
        if name in self.fail:
            raise RetriableError(f"{name} failed")
        return BatchResult([RecordOutcome(i.email, True) for i in items], 1)

    async def releaser(self, order: list[str]) -> None:
        for name in order:
            await self.began[name].wait()
            self.release[name].set()
            for _ in range(3):
                await asyncio.sleep(0)

    # the rest of the interface is not exercised here
    async def check_credentials(self) -> AccountInfo:
        raise NotImplementedError

    async def ensure_list(self, title: str, *, known: Any = None) -> str:
        raise NotImplementedError

    async def existing_lists(self) -> dict[str, str]:
        raise NotImplementedError

    async def remove_membership(self, list_id: str, email: str) -> bool:
        raise NotImplementedError

    async def forget(self, email: str) -> bool:
        raise NotImplementedError

    def list_members(self, list_id: str) -> AsyncIterator[ListMember]:
        raise NotImplementedError

    @classmethod
    def preview(cls, item: UpsertItem) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def requests_made(self) -> int:
        return 0

    @property
    def throttled(self) -> int:
        return 0

    async def aclose(self) -> None:
        return None


def batches(n: int, pulled: list[int] | None = None) -> Iterator[list[UpsertItem]]:
    for i in range(n):
        if pulled is not None:
            pulled.append(i)
        yield [UpsertItem(f"b{i}")]


async def test_batches_run_concurrently_up_to_the_limit_and_complete_out_of_order() -> None:
    dest = Recording(in_flight=3)
    pulled: list[int] = []
    order = ["b1", "b0", "b2", "b4", "b3", "b5", "b6"]
    releasing = asyncio.ensure_future(dest.releaser(order))
    seen = [i async for i, _ in dest.upsert_batches(batches(7, pulled))]
    await releasing
    assert dest.peak == 3
    assert seen == [1, 0, 2, 4, 3, 5, 6]
    assert pulled == list(range(7))


async def test_batches_are_pulled_only_when_there_is_room() -> None:
    dest = Recording(in_flight=2)
    pulled: list[int] = []
    stream = dest.upsert_batches(batches(10, pulled))
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert pulled == [0, 1]
    dest.release["b0"].set()
    index, result = await first
    assert (index, result.outcomes[0].email) == (0, "b0")
    assert pulled == [0, 1]  # b2 waits until the consumer asks for more
    await stream.aclose()
    assert dest.cancelled == ["b1"]  # in flight when the consumer stopped


async def test_async_sources_work_too() -> None:
    dest = Recording(in_flight=2)

    async def source() -> AsyncIterator[list[UpsertItem]]:
        for batch in batches(3):
            yield batch

    releasing = asyncio.ensure_future(dest.releaser(["b0", "b1", "b2"]))
    seen = sorted([i async for i, _ in dest.upsert_batches(source())])
    await releasing
    assert seen == [0, 1, 2]


async def test_a_failed_batch_stops_new_ones_but_in_flight_results_are_kept() -> None:
    dest = Recording(in_flight=3, fail={"b1"})
    seen: list[int] = []
    releasing = asyncio.ensure_future(dest.releaser(["b1", "b0", "b2"]))

    async def consume() -> None:
        async for i, _ in dest.upsert_batches(batches(6)):
            seen.append(i)

    with pytest.raises(RetriableError, match="b1 failed"):
        await consume()
    await releasing
    assert sorted(seen) == [0, 2]
    assert dest.started == ["b0", "b1", "b2"]


def test_the_registry_knows_autopilot() -> None:
    assert destination_types(listed_only=True) == ["autopilot", "ortto"]
    assert "autopilot" in destination_types()
    caps = capabilities("autopilot")
    assert (caps.max_batch_size, caps.default_rate_limit) == (100, 5.0)
    assert caps.default_base_url == "https://api2.autopilothq.com/v1"
    config = ConnectionConfig("http://127.0.0.1:9/v1", "k", 5.0)
    assert isinstance(create_destination("autopilot", config), AutopilotDestination)
    with pytest.raises(InputError, match=r"unknown destination type 'mailchimp'.*autopilot"):
        capabilities("mailchimp")


def test_connection_config_keeps_the_key_out_of_its_repr() -> None:
    config = ConnectionConfig("http://127.0.0.1:9/v1", "very-secret", 5.0)
    assert "very-secret" not in repr(config)
