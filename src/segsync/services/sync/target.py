"""What a run needs to know about its export, read once when the run (or its resumption)
starts."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from segsync.destinations.registry import capabilities
from segsync.domain.hold import HoldRule
from segsync.domain.mapping import FieldMapping
from segsync.domain.plan import RemovalPolicy
from segsync.errors import InputError
from segsync.services.sync.read import SegmentSource
from segsync.storage.repositories.exports import ExportRecord, ExportRepository
from segsync.storage.repositories.segments import SegmentRepository


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
    hold: HoldRule = field(default_factory=HoldRule)

    def segment_name(self, key: str) -> str:
        return next((s.name for s in self.segments if s.key == key), key)


def load_target(session: Session, record: ExportRecord) -> RunTarget:
    """The export's :class:`RunTarget`, read now. ``InputError`` when the export has no
    connection (detached) or no segment: it cannot run."""
    if record.connection_id is None:
        raise InputError(
            f"export {record.name!r} has no connection; attach one with "
            f"`segsync exports attach {record.name} --connection C`"
        )
    connection = ExportRepository(session).connection(record.connection_id)
    segments = SegmentRepository(session)
    sources = []
    for segment_id in record.segment_ids:
        segment = segments.get(segment_id)
        sources.append(SegmentSource(str(segment.id), segment.name, segment.definition))
    if not sources:
        raise InputError(f"export {record.name!r} has no segments; add one with `exports edit`")
    return RunTarget(
        export_id=record.id,
        export_name=record.name,
        connection_id=connection.id,
        connection_name=connection.name,
        connection_type=connection.type,
        contract_limit=connection.contract_limit,
        mapping=FieldMapping.from_dict(record.mapping, capabilities(connection.type).catalogue),
        removal=RemovalPolicy.parse(record.removal_policy),
        list_prefix=record.list_prefix or "",
        segments=tuple(sources),
        hold=HoldRule(record.hold_removals, record.hold_growth),
    )
