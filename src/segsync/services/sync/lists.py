"""The run's lists in the destination, and lists changed there by hand (docs/exports.md "Lists
changed by hand").

* **Before reading**, a run whose export has lists already asks the destination once for every
  list it holds (:meth:`RunLists.check`). A stored list id the destination no longer has was
  deleted by hand: its id and the memberships recorded on it are forgotten, so the planner makes
  the list again (:meth:`RunLists.ensure`) and adds every current member to it. A list renamed by
  hand keeps its id and goes on being used; the run only reports it.
* **While sending**, a batch can find its list gone (deleted meanwhile:
  :class:`~segsync.errors.UnknownList`). :meth:`RunLists.send` makes the list again, once for all
  the batches that meet it, records the new id and sends the batch again; later batches carry
  the new id. The members the list had before this run are not in this run's plan: once sending
  is over (:meth:`RunLists.finish`) their memberships are forgotten, so the next run adds them
  back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from segsync.destinations.base import BatchResult, Destination, UpsertItem
from segsync.domain.plan import SyncPlan, list_title
from segsync.domain.sync_state import SyncStateView
from segsync.errors import UnknownList
from segsync.services.sync.store import RunStore
from segsync.services.sync.target import RunTarget

log = logging.getLogger(__name__)

MAX_REMAKES_PER_BATCH = 2
"""A batch whose list vanishes again after being made anew this many times stops the run."""


@dataclass
class RunLists:
    """The lists of one run attempt: what it found changed by hand, and what it made anew."""

    store: RunStore
    target: RunTarget
    warnings: list[str]
    list_ids: dict[str, str] = field(default_factory=dict)
    """Segment key → list id, as the batches use them (updated when a list is made anew)."""
    _remade: dict[str, str] = field(default_factory=dict)
    """Old list id → the id of the list made to replace it while sending."""
    _sent_on_new: dict[str, set[str]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _ahead: asyncio.Future[dict[str, str] | None] | None = None

    def ask_ahead(self, opened: Callable[[], Awaitable[Destination]]) -> None:
        """Ask for the account's lists now, where that is one request
        (:attr:`~segsync.destinations.base.Destination.lists_in_one_request`): while a first
        run opens its profiles (DuckDB's import, the kept SQL's stamp, its checks: some 0.1
        s), so :meth:`ensure` looks its lists up in the answer without waiting for it."""

        async def existing() -> dict[str, str] | None:
            destination = await opened()
            return await destination.existing_lists() if destination.lists_in_one_request else None

        self._ahead = asyncio.ensure_future(existing())

    async def drop_ahead(self) -> None:
        """Forget the lists asked for ahead (a run that reads and plans asks again later)."""
        if self._ahead is not None:
            self._ahead.cancel()
            await asyncio.gather(self._ahead, return_exceptions=True)
            self._ahead = None

    def _title(self, key: str) -> str:
        return list_title(self.target.segment_name(key), self.target.list_prefix)

    async def check(self, destination: Destination, state: SyncStateView) -> SyncStateView:
        """Compare the stored list ids with the destination's lists (one request); forget the
        lists deleted by hand and return the state the planner should see."""
        stored = {key: list_id for key, list_id in state.list_ids.items() if list_id}
        if not stored:
            return state
        existing = await destination.existing_lists()
        titles = await self.store.list_titles()
        name = destination.capabilities.display_name
        gone = {key for key, list_id in stored.items() if list_id not in existing}
        for key, list_id in stored.items():
            was = titles.get(key, "")
            if key in gone:
                await self.store.list_gone(key)
                log.info("list %r (%s) was deleted in %s; it is made again", was, list_id, name)
                self.warnings.append(
                    f"the list {was!r} was deleted in {name}: it was made again and every "
                    "member of its segment sent to it"
                )
            elif existing[list_id] != was:
                self.warnings.append(
                    f"the list {was!r} is titled {existing[list_id]!r} in {name} (renamed by "
                    "hand?): segsync keeps sending to it"
                )
        if not gone:
            return state
        return replace(  # as the store holds it now: nothing recorded on the gone lists
            state,
            list_ids={key: None if key in gone else value for key, value in state.list_ids.items()},
            memberships=state.memberships.without(gone),
            pending=frozenset(pair for pair in state.pending if pair[0] not in gone),
            sizes=None
            if state.sizes is None
            else {key: size for key, size in state.sizes.items() if key not in gone},
        )

    async def ensure(
        self,
        destination: Destination,
        plan: SyncPlan,
        *,
        check_stop: Callable[[], None],
        started: Callable[[], None],
    ) -> dict[str, str]:
        """Make (or find by title) the lists the plan needs; return every segment's list id.
        They are made at once: each is a look-up and maybe a creation, so two lists cost two
        round trips, not four (their titles differ: segment names are unique). Where the
        account's lists come in one request (:attr:`Destination.lists_in_one_request`) they
        are asked for once and each title is looked up in them (asked for ahead where a first
        run did: :meth:`ask_ahead`). Those made are recorded even when another fails (its
        error is raised then)."""
        try:
            self.list_ids = {key: id_ for key, id_ in plan.list_ids.items() if id_ is not None}
            if not plan.lists_to_ensure:
                return self.list_ids
            started()
            check_stop()
            titles = {key: self._title(key) for key in plan.lists_to_ensure}
            known: Awaitable[dict[str, str] | None] | None = self._ahead
            if known is None and destination.lists_in_one_request:
                known = destination.existing_lists()
            lists = None if known is None else await known
        finally:  # used, or not needed (nothing to make, or a stop): let go either way
            await self.drop_ahead()
        asked = [destination.ensure_list(title, known=lists) for title in titles.values()]
        made = await asyncio.gather(*asked, return_exceptions=True)
        for (key, title), list_id in zip(titles.items(), made, strict=True):
            if isinstance(list_id, str):
                self.list_ids[key] = list_id
                await self.store.list_made(key, list_id, title)
                log.info("list %r is %s", title, list_id)
        for failed in made:
            if isinstance(failed, BaseException):
                raise failed
        return self.list_ids

    def sender(
        self, destination: Destination
    ) -> Callable[[Sequence[UpsertItem]], Awaitable[BatchResult]]:
        """What sends one batch: ``destination.upsert_batch``, making a vanished list anew."""

        def send(items: Sequence[UpsertItem]) -> Awaitable[BatchResult]:
            # The first attempt is asked for now, as the batch is started (not a loop step
            # later, when its task first runs).
            return sending(items, destination.upsert_batch(items))

        async def sending(
            items: Sequence[UpsertItem], first: Awaitable[BatchResult]
        ) -> BatchResult:
            remakes = 0
            attempt = first
            while True:
                try:
                    result = await attempt
                except UnknownList as err:
                    remakes += 1
                    if remakes > MAX_REMAKES_PER_BATCH:
                        raise
                    new_id = await self._remake(destination, err)
                    items = [
                        replace(item, list_id=new_id) if item.list_id == err.list_id else item
                        for item in items
                    ]
                    attempt = destination.upsert_batch(items)
                    continue
                self._note(items, result)
                return result

        return send

    async def _remake(self, destination: Destination, err: UnknownList) -> str:
        async with self._lock:
            if err.list_id in self._remade:
                return self._remade[err.list_id]
            key = next((k for k, v in self.list_ids.items() if v == err.list_id), None)
            if key is None:
                raise err  # not a list of this run: nothing to make again
            title = self._title(key)
            new_id = await destination.ensure_list(title)
            if new_id == err.list_id:
                raise err
            await self.store.list_remade(key, new_id, title)
            self.list_ids[key] = new_id
            self._remade[err.list_id] = new_id
            self._sent_on_new[key] = set()
            name = destination.capabilities.display_name
            log.info(
                "list %r vanished from %s while sending; made again as %s", title, name, new_id
            )
            self.warnings.append(
                f"the list {title!r} was deleted in {name} while this run sent to it: it was "
                "made again and this run's contacts sent to it; the members it had before "
                "are added back by the next run"
            )
            return new_id

    def _note(self, items: Sequence[UpsertItem], result: BatchResult) -> None:
        """Remember who landed on a list made anew (their memberships are kept)."""
        if not self._sent_on_new:
            return
        keys = {self.list_ids[key]: key for key in self._sent_on_new}
        for item, outcome in zip(items, result.outcomes, strict=True):
            key = keys.get(item.list_id or "")
            if key is not None and outcome.ok:
                self._sent_on_new[key].add(item.email)

    async def finish(self) -> None:
        """After sending: forget the memberships of the lists made anew meanwhile, but those
        made on the new list (commits of batches sent to the old list may have come late)."""
        for key, emails in self._sent_on_new.items():
            await self.store.forget_memberships(key, emails)
