"""The lists stage: lists deleted or renamed by hand before a run, and a list vanishing while
batches go out (Autopilot's client against the simulator in-process; the store's list calls
recorded)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.base import UpsertItem
from segsync.domain.mapping import FieldMapping
from segsync.domain.plan import RemovalPolicy
from segsync.domain.sync_state import SyncStateView
from segsync.errors import UnknownList
from segsync.services.sync.lists import RunLists
from segsync.services.sync.read import SegmentSource
from segsync.services.sync.store import RunStore
from segsync.services.sync.target import RunTarget
from segsync.simulator import Simulator, by_hand


class Store:
    """The list calls of :class:`RunStore`, recorded."""

    def __init__(self, titles: dict[str, str]) -> None:
        self.titles = titles
        self.calls: list[tuple[Any, ...]] = []

    async def list_titles(self) -> dict[str, str]:
        return dict(self.titles)

    async def list_gone(self, key: str) -> None:
        self.calls.append(("gone", key))

    async def list_remade(self, key: str, list_id: str, title: str) -> None:
        self.calls.append(("remade", key, list_id, title))

    async def forget_memberships(self, key: str, keep: set[str]) -> None:
        self.calls.append(("forget", key, sorted(keep)))


def target() -> RunTarget:
    segments = (SegmentSource("1", "Seg A", "{}"), SegmentSource("2", "Seg B", "{}"))
    return RunTarget(
        export_id=1,
        export_name="E",
        connection_id=1,
        connection_name="C",
        connection_type="autopilot",
        contract_limit=1000,
        mapping=cast(FieldMapping, None),
        removal=RemovalPolicy.MIRROR,
        list_prefix="",
        segments=segments,
    )


def run_lists(store: Store, warnings: list[str]) -> RunLists:
    return RunLists(cast(RunStore, store), target(), warnings)


async def test_check_forgets_a_deleted_list_and_reports_a_renamed_one(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    seg_a = await destination.ensure_list("Seg A")
    seg_b = await destination.ensure_list("Seg B")
    by_hand.delete_list(simulator.state, seg_a)
    by_hand.rename_list(simulator.state, seg_b, b'{"title": "Mine"}')
    store = Store({"1": "Seg A", "2": "Seg B"})
    warnings: list[str] = []
    state = SyncStateView(
        hashes={"a@x.org": "h"},
        memberships=frozenset({("1", "a@x.org"), ("2", "a@x.org")}),
        list_ids={"1": seg_a, "2": seg_b},
    )
    before = destination.requests_made

    seen = await run_lists(store, warnings).check(destination, state)

    assert destination.requests_made == before + 1
    assert seen.list_ids == {"1": None, "2": seg_b}
    assert seen.memberships == frozenset({("2", "a@x.org")})
    assert seen.hashes == state.hashes
    assert store.calls == [("gone", "1")]
    assert warnings == [
        "the list 'Seg A' was deleted in Autopilot: it was made again and every member of its "
        "segment sent to it",
        "the list 'Seg B' is titled 'Mine' in Autopilot (renamed by hand?): segsync keeps "
        "sending to it",
    ]


async def test_check_leaves_a_light_view_as_the_store_then_holds_it(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    """A run's view without contacts (list ids, pending memberships, sizes): the deleted list's
    pending memberships and size go with it, as the store forgets them (the run plans on this
    view without loading the state again)."""
    seg_a = await destination.ensure_list("Seg A")
    seg_b = await destination.ensure_list("Seg B")
    by_hand.delete_list(simulator.state, seg_a)
    state = SyncStateView(
        list_ids={"1": seg_a, "2": seg_b},
        pending=frozenset({("1", "a@x.org"), ("2", "b@x.org")}),
        sizes={"1": 5, "2": 7},
    )

    seen = await run_lists(Store({"1": "Seg A", "2": "Seg B"}), []).check(destination, state)

    assert seen.list_ids == {"1": None, "2": seg_b}
    assert seen.pending == frozenset({("2", "b@x.org")})
    assert seen.recorded_per_segment() == {"2": 7}


async def test_check_asks_nothing_without_stored_lists(destination: AutopilotDestination) -> None:
    state = SyncStateView(list_ids={"1": None})
    assert await run_lists(Store({}), []).check(destination, state) is state
    assert destination.requests_made == 0


async def test_batches_finding_their_list_gone_make_it_again_once(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    old = await destination.ensure_list("Seg A")
    store = Store({"1": "Seg A"})
    warnings: list[str] = []
    lists = run_lists(store, warnings)
    lists.list_ids["1"] = old
    send = lists.sender(destination)
    by_hand.delete_list(simulator.state, old)
    batches = [[UpsertItem(f"p{b}{i}@x.org", list_id=old) for i in range(3)] for b in range(3)]

    results = await asyncio.gather(*(send(batch) for batch in batches))

    assert all(o.ok for result in results for o in result.outcomes)
    new = lists.list_ids["1"]
    assert new != old
    assert [item.title for item in simulator.state.lists.values()] == ["Seg A"]
    assert len(simulator.state.lists[new].members) == 9
    assert store.calls == [("remade", "1", new, "Seg A")]
    assert len(warnings) == 1
    await lists.finish()
    assert store.calls[-1] == ("forget", "1", sorted(i.email for b in batches for i in b))


async def test_a_list_that_keeps_vanishing_stops_the_batch(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    old = await destination.ensure_list("Seg A")
    lists = run_lists(Store({"1": "Seg A"}), [])
    lists.list_ids["1"] = old
    by_hand.delete_list(simulator.state, old)
    original = simulator.state.create_list

    def made_and_gone(title: str) -> Any:
        made = original(title)
        del simulator.state.lists[made.list_id]  # deleted again at once
        return made

    simulator.state.create_list = made_and_gone  # type: ignore[method-assign]
    with pytest.raises(UnknownList):
        await lists.sender(destination)([UpsertItem("a@x.org", list_id=old)])


class Making:
    """A destination whose lists are made when the test says: it records which titles were
    asked for before any was answered, and fails the titles it is told to."""

    lists_in_one_request = False

    def __init__(self, failing: str = "") -> None:
        self.asked: list[str] = []
        self.known: list[Any] = []
        self.answer = asyncio.Event()
        self.failing = failing

    async def ensure_list(self, title: str, *, known: Any = None) -> str:
        self.asked.append(title)
        self.known.append(known)
        await self.answer.wait()
        if title == self.failing:
            raise RuntimeError(f"could not make {title}")
        return f"id-{title}"


class Made(Store):
    async def list_made(self, key: str, list_id: str, title: str) -> None:
        self.calls.append(("made", key, list_id, title))


def _plan() -> Any:
    from segsync.domain.plan import build_plan

    state = SyncStateView(list_ids={"1": None, "2": None})
    return build_plan((), state, segments=["1", "2"], removal=RemovalPolicy.MIRROR)


@pytest.mark.parametrize("failing", ["", "Seg B"])
async def test_lists_of_distinct_titles_are_made_at_once_and_each_made_one_recorded(
    failing: str,
) -> None:
    store, making = Made({}), Making(failing)
    lists = RunLists(cast(RunStore, store), target(), [])
    ensure = asyncio.ensure_future(
        lists.ensure(cast(Any, making), _plan(), check_stop=lambda: None, started=lambda: None)
    )
    for _ in range(100):  # let the loop run the calls as far as they go unanswered
        await asyncio.sleep(0)
    assert making.asked == ["Seg A", "Seg B"]  # both asked for before either was answered
    assert not ensure.done()
    making.answer.set()
    if failing:
        with pytest.raises(RuntimeError, match="could not make Seg B"):
            await ensure
        assert store.calls == [("made", "1", "id-Seg A", "Seg A")]
    else:
        assert await ensure == {"1": "id-Seg A", "2": "id-Seg B"}
        assert store.calls == [
            ("made", "1", "id-Seg A", "Seg A"),
            ("made", "2", "id-Seg B", "Seg B"),
        ]


async def test_lists_asked_for_ahead_are_handed_to_each_list_made() -> None:
    """A first run asks for the account's lists ahead (:meth:`RunLists.ask_ahead`, while it
    opens its profiles): ``ensure`` waits for that answer and looks each list up in it, and
    asks for none again."""
    store = Made({})
    answered: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    class Ahead(Making):
        lists_in_one_request = True
        existing_asked = 0

        async def existing_lists(self) -> dict[str, str]:
            self.existing_asked += 1
            return await answered

    ahead = Ahead()
    ahead.answer.set()

    async def opened() -> Any:
        return ahead

    lists = RunLists(cast(RunStore, store), target(), [])
    lists.ask_ahead(opened)
    ensure = asyncio.ensure_future(
        lists.ensure(cast(Any, ahead), _plan(), check_stop=lambda: None, started=lambda: None)
    )
    for _ in range(100):
        await asyncio.sleep(0)
    assert (ahead.existing_asked, ahead.asked) == (1, [])  # nothing made before the answer
    account = {"l-7": "Seg A"}
    answered.set_result(account)
    assert await ensure == {"1": "id-Seg A", "2": "id-Seg B"}
    assert ahead.known == [account, account]
    assert ahead.existing_asked == 1
