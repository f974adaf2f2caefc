"""The crash-free baseline: the data versions the soak's runs synced, replayed in order in a
fresh data dir against a fresh simulator, each run once to its end — no kill, no fault.

It runs in this process through segsync's services (starting a CLI process per version would
cost more than the chaos it measures); it measures requests, it never decides what is right:
the expectation is :func:`soaklib.data.expectation`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from segsync.services import runs
from segsync.services.connections import NewConnection, add_connection, connection_id
from segsync.services.context import open_context
from segsync.services.exports import DataMatching, ExportSettings, MappingLine, create_export
from segsync.services.profiles import import_profiles
from segsync.settings import Settings
from segsync.storage.repositories.segments import SegmentRepository
from soaklib.check import Comparison, compare
from soaklib.cli import CONNECTION
from soaklib.data import EXPORT, LIST_PREFIX, SEGMENTS, expectation, read_csv
from soaklib.sim import API_KEY, SoakSimulator


def replay(
    csv_paths: list[Path], destination: str = "autopilot"
) -> tuple[dict[str, int], Comparison]:
    """Sync each CSV in turn, once; the accepted requests by route and status, and the final
    comparison."""
    sim = SoakSimulator(seed=1, api=destination)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="segsync-soak-baseline-") as tmp,
            open_context(Settings(data_dir=Path(tmp))) as ctx,
        ):
            import_profiles(ctx, csv_paths[0], "people", key="id", profile=True, replace=True)
            with ctx.db.session() as session:
                repo = SegmentRepository(session)
                for segment in SEGMENTS:
                    repo.create(name=segment.name, definition=segment.definition(), now=ctx.now())
            connection = NewConnection(
                CONNECTION,
                type=destination,
                api_key=API_KEY,
                base_url=sim.base_url,
                rate_limit=1000.0,
            )
            add_connection(ctx, connection, agree=True)
            matching = DataMatching(
                "Email", "FirstName", "LastName", [MappingLine("custom:string:Tier", "Tier")]
            )
            settings = ExportSettings(
                name=EXPORT,
                connection_id=connection_id(ctx, CONNECTION),
                matching=matching,
                segments=[s.name for s in SEGMENTS],
                removal="mirror",
                list_prefix=LIST_PREFIX,
                hold_removals="off",  # what the data needs; an approved hold sends the same
                hold_growth="off",
            )
            create_export(ctx, settings)
            for i, path in enumerate(csv_paths):
                if i:
                    import_profiles(ctx, path, "people", key="id", profile=True, replace=True)
                runs.run_export(ctx, EXPORT)
        expected = expectation(read_csv(csv_paths[-1]))
        return sim.answers(accepted=True), compare(expected, sim.contacts(), sim.lists())
    finally:
        sim.close()
