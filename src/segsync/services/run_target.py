"""What a run needs to know about its export, read once when the run starts."""

from __future__ import annotations

from dataclasses import dataclass

from segsync.domain.mapping import FieldMapping
from segsync.domain.plan import RemovalPolicy
from segsync.services.members import SegmentSource


@dataclass(frozen=True)
class RunTarget:
    """What a run needs to know about its export, read when it starts."""

    export_id: int
    export_name: str
    connection_id: int
    connection_name: str
    connection_type: str
    contract_limit: int
    mapping: FieldMapping
    removal: RemovalPolicy
    list_prefix: str
    segments: tuple[SegmentSource, ...]

    def segment_name(self, key: str) -> str:
        return next((s.name for s in self.segments if s.key == key), key)
