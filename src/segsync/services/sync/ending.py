"""How a run attempt ends (:class:`RunEnding`, a part of the run engine, :mod:`.engine`):
recorded in its final status with its counts, warnings and message, the requests made saved
on the way, the connection flagged when the destination refused its key."""

from __future__ import annotations

import logging
from dataclasses import replace

from segsync.destinations.base import Destination, slowdown_warnings
from segsync.domain.plan import SyncPlan
from segsync.domain.runs import RunStatus
from segsync.errors import AuthenticationFailed, SegsyncError
from segsync.services.connections.checks import HEALTH_KEY_REJECTED
from segsync.services.sync.finish import RunEnd
from segsync.services.sync.parts import RunOutcome
from segsync.services.sync.report import (
    done_message,
    key_rejected_message,
    refused_warning,
    stop_message,
)
from segsync.services.sync.store import RunStore
from segsync.services.sync.tally import Tally
from segsync.services.sync.target import RunTarget
from segsync.storage.repositories.runs import RunRecord

log = logging.getLogger(__name__)


class RunEnding:
    """The run engine's ends: what it has (declared here, set by the engine) and how it
    records its end."""

    run_record: RunRecord
    target: RunTarget
    store: RunStore
    tally: Tally
    warnings: list[str]
    destination: Destination | None
    plan: SyncPlan | None

    @property
    def requests(self) -> int:
        return 0 if self.destination is None else self.destination.requests_made

    def emit(self, phase: str) -> None:
        raise NotImplementedError

    async def _done(self) -> RunOutcome:
        await self._save_requests()
        if self.tally.api_rejected:
            self.warnings.append(
                refused_warning(self.target, self.tally.api_rejected, self.run_record.id)
            )
        return await self._end(RunStatus.SUCCESSFUL, done_message(self.tally.counts))

    async def _end(self, status: RunStatus, message: str) -> RunOutcome:
        if self.destination is not None:
            self.tally.requests(self.requests)
        counts = replace(self.tally.counts)
        end = RunEnd(
            run=self.run_record,
            target=self.target,
            status=status,
            message=message,
            counts=counts,
            warnings=[*self.warnings, *slowdown_warnings(self.destination)],
            sent_anything=self.plan is not None and counts.requests > 0,
            items_done=self.tally.items_done,
        )
        record = await self.store.end(end)
        self.emit("done")
        return RunOutcome(record)

    async def _save_requests(self) -> None:
        self.tally.requests(self.requests)
        try:
            await self.store.progress(self.tally.snapshot())
        except SegsyncError:
            log.warning("could not save the request count of run %s", self.run_record.id)

    async def _export_removed(self) -> bool:
        try:
            return await self.store.export_removed()
        except SegsyncError:
            return False

    async def _stop_message(self) -> str:
        return stop_message(export_removed=await self._export_removed())

    async def _key_rejected(self, err: AuthenticationFailed) -> RunOutcome:
        await self._save_requests()
        message = key_rejected_message(self.target, err.message)
        await self.store.flag_connection(self.target.connection_id, HEALTH_KEY_REJECTED, message)
        return await self._end(RunStatus.FAILURE, message)
