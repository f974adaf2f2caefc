"""The send stage (X5, X7, X8): batches go to the destination — here Autopilot's client against
the simulator in-process — each acknowledgement reaches the committer, and a stop or a failure
never leaves an acknowledged batch uncommitted."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from segsync.destinations.autopilot import AutopilotDestination
from segsync.domain.plan import (
    Desired,
    RemovalPolicy,
    SyncPlan,
    UpsertItem,
    build_plan,
)
from segsync.domain.sync_state import SyncStateView
from segsync.errors import RetriableError
from segsync.services.sync.committer import Committer
from segsync.services.sync.send import Planned, send_batches
from segsync.services.sync.switching import SENDING_COLLECTION_THRESHOLD
from segsync.services.sync.tally import Ack
from segsync.simulator import Simulator


def plan_of(n: int, max_batch: int = 10) -> SyncPlan:
    desired = (
        Desired(f"p{i:03}@example.com", f"h{i}", {"FirstName": f"P{i}"}, {}, frozenset({"1"}))
        for i in range(n)
    )
    state = SyncStateView(list_ids={"1": None})
    return build_plan(
        desired, state, segments=["1"], removal=RemovalPolicy.MIRROR, max_batch=max_batch
    )


class Recorder:
    def __init__(self) -> None:
        self.acks: list[Ack] = []
        self.intended: set[str] = set()
        self.intents: dict[int, set[str]] = {}  # intent id → the emails it held

    async def intend(self, items: Sequence[UpsertItem]) -> int:
        self.intended.update(item.email for item in items)
        self.intents[len(self.intents) + 1] = {item.email for item in items}
        return len(self.intents)

    async def commit(self, acks: Sequence[Ack]) -> None:
        self.acks.extend(acks)

    def emails(self) -> set[str]:
        return {o.email for ack in self.acks for o in ack.result.outcomes if o.ok}

    async def send(
        self,
        destination: AutopilotDestination,
        plan: SyncPlan,
        list_id: str,
        stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """The send stage of ``plan`` (segment 1 on ``list_id``), recorded here."""
        return await send_batches(
            destination,
            Planned(plan.batches),
            {"1": list_id},
            Committer(self.commit),
            stop=stop,
            intend=self.intend,
        )


async def ready(destination: AutopilotDestination, n: int) -> tuple[SyncPlan, str, Recorder]:
    """A plan of ``n`` contacts in batches of 10, its list made, and a recorder."""
    return plan_of(n), await destination.ensure_list("Seg"), Recorder()


def before_each_upsert(
    destination: AutopilotDestination, look: Callable[[Sequence[Any]], None]
) -> None:
    """Let ``look`` see (and raise on) every batch just before the destination sends it."""
    real_upsert = destination.upsert_batch

    async def watched(items: Sequence[Any]) -> Any:
        look(items)
        return await real_upsert(items)

    destination.upsert_batch = watched  # type: ignore[method-assign]


async def test_every_batch_is_sent_once_and_committed(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    plan, list_id, recorder = await ready(destination, 45)

    assert await recorder.send(destination, plan, list_id)
    assert len(recorder.acks) == len(plan.batches) == 5
    assert recorder.emails() == {c["Email"] for c in simulator.contacts_snapshot()}
    assert len(recorder.emails()) == 45


async def test_a_stop_starts_no_new_batch_and_commits_those_in_flight(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    plan, list_id, recorder = await ready(destination, 100)
    left: list[int] = []
    before_each_upsert(destination, lambda items: left.append(len(items)))
    destination.max_in_flight = lambda: 3  # type: ignore[method-assign]

    # The stop is asked before and after each intent: it comes once the first three batches
    # (intended together, as three may be in flight) have left.
    assert not await recorder.send(destination, plan, list_id, stop=lambda: bool(left))
    assert len(left) == len(recorder.acks) == 3  # every batch that left was committed
    assert recorder.intended == recorder.emails()  # nothing intended was left unsent
    sent = {c["Email"] for c in simulator.contacts_snapshot()}
    assert sent == recorder.emails()
    assert len(sent) == 10 * len(left)


async def test_a_failing_batch_is_raised_after_the_acknowledged_ones_are_committed(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    plan, list_id, recorder = await ready(destination, 30)
    sent_batches: list[int] = []

    def third_fails(_items: Sequence[Any]) -> None:
        sent_batches.append(1)
        if len(sent_batches) == 3:
            raise RetriableError("503 Service Unavailable after 2 attempts")

    before_each_upsert(destination, third_fails)

    with pytest.raises(RetriableError, match="503"):
        await recorder.send(destination, plan, list_id)

    assert len(recorder.acks) == 2
    assert recorder.emails() == {c["Email"] for c in simulator.contacts_snapshot()}


class FailingAfter:
    """A source of batches (what a first run read as it sends gives) that hands out its first
    ``good`` batches, then fails as reading can (DuckDB out of memory, say)."""

    def __init__(self, plan: SyncPlan, good: int) -> None:
        self.planned, self.left = Planned(plan.batches), good

    async def take(self, most: int) -> list[list[UpsertItem]]:
        if self.left == 0:
            raise RetriableError("reading failed")
        taken = await self.planned.take(min(most, self.left))
        self.left -= len(taken)
        return taken


async def test_a_failing_source_is_raised_after_the_batches_in_flight_are_committed(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    plan, list_id, recorder = await ready(destination, 50)
    destination.max_in_flight = lambda: 3  # type: ignore[method-assign]

    # Two batches come, and the source fails when a third is asked for (there is room for
    # three in flight): the two are still in flight then.
    with pytest.raises(RetriableError, match="reading failed"):
        await send_batches(
            destination,
            FailingAfter(plan, good=2),
            {"1": list_id},
            Committer(recorder.commit),
            stop=lambda: False,
            intend=recorder.intend,
        )

    # the two taken before the failure went out and were committed; nothing else left
    assert len(recorder.acks) == 2
    assert recorder.intended == recorder.emails()
    assert recorder.emails() == {c["Email"] for c in simulator.contacts_snapshot()}
    assert len(recorder.emails()) == 20


async def test_no_batch_leaves_before_its_intents_are_recorded(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    plan, list_id, recorder = await ready(destination, 60)
    unintended: list[str] = []
    before_each_upsert(
        destination,
        lambda items: unintended.extend(i.email for i in items if i.email not in recorder.intended),
    )

    assert await recorder.send(destination, plan, list_id)

    assert unintended == []
    assert len(recorder.intended) == 60
    assert len(recorder.emails()) == 60


async def test_the_batches_leaving_together_are_intended_in_one_write(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    plan = plan_of(200)  # 20 batches
    list_id = await destination.ensure_list("Seg")
    recorder = Recorder()
    writes: list[int] = []
    left: list[str] = []
    real_intend = recorder.intend

    async def intend(items: Sequence[UpsertItem]) -> int:
        # Whatever an earlier write intended has left by the time the next one is asked.
        assert recorder.intended <= set(left)
        writes.append(len(items))
        return await real_intend(items)

    recorder.intend = intend  # type: ignore[method-assign]
    before_each_upsert(destination, lambda items: left.extend(i.email for i in items))
    room = destination.max_in_flight()

    assert await recorder.send(destination, plan, list_id)

    assert room > 1  # the bucket is unlimited here: the gauge's ceiling
    assert writes[0] == 10 * min(room, 20)  # the first write: every batch with room to leave
    assert len(writes) < len(plan.batches)
    assert sum(writes) == 200
    assert set(left) == recorder.intended == recorder.emails()


async def test_each_acknowledgement_names_the_intent_that_held_its_batch(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    """The store deletes an intent once its items are answered: each acknowledged batch must
    say which intent held it, and every intent's items must be answered in all."""
    plan, list_id, recorder = await ready(destination, 200)  # 20 batches

    assert await recorder.send(destination, plan, list_id)

    assert len(recorder.intents) > 1
    answered: dict[int, set[str]] = {}
    for ack in recorder.acks:
        assert ack.intent is not None
        batch = {item.email for item in ack.items}
        assert batch <= recorder.intents[ack.intent]
        answered.setdefault(ack.intent, set()).update(batch)
    assert answered == recorder.intents


async def test_while_batches_are_sent_young_objects_are_collected_less_often(
    destination: AutopilotDestination, simulator: Simulator
) -> None:
    plan, list_id, recorder = await ready(destination, 30)
    seen: list[tuple[int, ...]] = []
    before_each_upsert(destination, lambda _items: seen.append(gc.get_threshold()))
    before = gc.get_threshold()

    assert await recorder.send(destination, plan, list_id)

    young = max(before[0], SENDING_COLLECTION_THRESHOLD)
    assert seen == [(young, *before[1:])] * 3 != [before] * 3
    assert gc.get_threshold() == before
