"""Fuzz the inputs people hand segsync (issue 14): segment definitions through the service and
the CLI, files through ``segsync profiles import``, export data matchings through the service.
Every refusal must be clean (an InputError-family error, CLI exit 2) and leave the stored state
as it was; nothing accepted may fail when used. Figures: tests/fuzz/tally.py."""

from __future__ import annotations

import itertools
import traceback
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from segsync.cli.app import app as cli_app
from segsync.errors import InputError, PermissionDenied
from segsync.services import exports, segments
from segsync.services.exports.inputs import MappingLine
from segsync.services.segments import members as segment_members
from segsync.storage.repositories.segments import SegmentRepository
from tests.fuzz.conftest import CANARY, Seeded
from tests.fuzz.strategies import csv_files, matchings, segment_texts
from tests.fuzz.tally import Tally, examples, metadata_digest, tally

CLEAN = (InputError, PermissionDenied)
_names = itertools.count()


def _fuzz_settings(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )


def _assert_clean(figures: Tally) -> None:
    assert figures.tries > 0
    assert figures.bad == 0, "\n".join(figures.examples)


def _check_refusal(figures: Tally, before: str, seeded: Seeded, what: str, message: str) -> None:
    figures.add("clean")
    if metadata_digest(seeded.db_file) != before:
        figures.add("state_change", what)
    if CANARY in message:
        figures.add("canary_hit", what)


# ---------------------------------------------------------------- segment definitions


def _segment_names(seeded: Seeded) -> set[str]:
    ctx = seeded.context()
    try:
        with ctx.db.session() as session:
            return {record.name for record in SegmentRepository(session).list()}
    finally:
        seeded.release(ctx)


def _try_segment(seeded: Seeded, figures: Tally, text: str) -> None:
    before = metadata_digest(seeded.db_file)
    known = _segment_names(seeded)
    ctx = seeded.context()
    try:
        record = segments.create_segment(ctx, text)
    except CLEAN as err:
        seeded.release(ctx)
        _check_refusal(figures, before, seeded, repr(text[:300]), err.message)
        return
    except Exception:
        seeded.release(ctx)
        figures.add("traceback", f"{text[:300]!r}\n{traceback.format_exc()[-1500:]}")
        return
    try:
        segment_members.count_segment(ctx, record.name)
        figures.add("ok")
    except Exception:
        figures.add("late_failure", f"{text[:300]!r}\n{traceback.format_exc()[-1500:]}")
    finally:
        segments.delete_segment(ctx, record.name)
        seeded.release(ctx)
    assert _segment_names(seeded) == known


def test_fuzz_segment_definitions_through_the_service(seeded: Seeded) -> None:
    figures = tally("segment definitions (service)")

    @given(text=segment_texts)
    @_fuzz_settings(examples(short=40, full=800))
    def run(text: str) -> None:
        _try_segment(seeded, figures, text)

    run()
    _assert_clean(figures)


def _cli(seeded: Seeded, *args: str) -> Any:
    runner = CliRunner(env={"SEGSYNC_DATA_DIR": None, "SEGSYNC_DATABASE_URL": None})
    return runner.invoke(cli_app, ["--data-dir", str(seeded.settings.data_dir), *args])


def _classify_cli(figures: Tally, result: Any, what: str) -> bool:
    """Count a CLI run; True when it was refused cleanly (exit 2)."""
    printed = (result.stdout or "") + (result.stderr or "")
    if CANARY in printed:
        figures.add("canary_hit", what)
    if "Traceback" in printed or (
        result.exception is not None and not isinstance(result.exception, SystemExit)
    ):
        detail = "".join(traceback.format_exception(result.exception))[-1500:]
        figures.add("traceback", f"{what}\n{printed[-500:]}\n{detail}")
        return False
    if result.exit_code == 0:
        figures.add("ok")
        return False
    if result.exit_code == 2:
        figures.add("clean")
        return True
    figures.add("traceback", f"{what}: exit {result.exit_code}\n{printed[-800:]}")
    return False


def test_fuzz_segment_definitions_through_the_cli(seeded: Seeded, tmp_path: Path) -> None:
    figures = tally("segment definitions (CLI)")

    @given(text=segment_texts)
    @_fuzz_settings(examples(short=8, full=250))
    def run(text: str) -> None:
        path = tmp_path / f"definition-{next(_names)}.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        before = metadata_digest(seeded.db_file)
        known = _segment_names(seeded)
        result = _cli(seeded, "segments", "create", "--file", str(path))
        refused = _classify_cli(figures, result, repr(text[:300]))
        if refused and metadata_digest(seeded.db_file) != before:
            figures.add("state_change", repr(text[:300]))
        for name in _segment_names(seeded) - known:
            ctx = seeded.context()
            segments.delete_segment(ctx, name)
            seeded.release(ctx)

    run()
    _assert_clean(figures)


# ---------------------------------------------------------------- files to import


def _profile_tables(seeded: Seeded) -> str:
    with duckdb.connect(str(seeded.profiles_file)) as con:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
        counts = [
            (name, con.execute(f'SELECT count(*) FROM "{name}"').fetchone())
            for name in sorted({row[0] for row in rows})
        ]
    return repr((rows, counts))


def test_fuzz_files_through_profiles_import(seeded: Seeded, tmp_path: Path) -> None:
    figures = tally("files (CLI profiles import)")

    @given(file=csv_files())
    @_fuzz_settings(examples(short=20, full=400))
    def run(file: tuple[str, bytes]) -> None:
        name, data = file
        folder = tmp_path / str(next(_names))
        folder.mkdir()
        path = folder / name
        path.write_bytes(data)
        before = (_profile_tables(seeded), metadata_digest(seeded.db_file))
        result = _cli(
            seeded, "profiles", "import", str(path), "--table", "fuzzed", "--key", "CustomerId",
            "--replace",
        )  # fmt: skip
        what = f"{name} {data[:300]!r}"
        refused = _classify_cli(figures, result, what)
        if refused and (_profile_tables(seeded), metadata_digest(seeded.db_file)) != before:
            figures.add("state_change", what)

    run()
    _assert_clean(figures)


# ---------------------------------------------------------------- data matchings


def test_fuzz_export_matchings_through_the_service(seeded: Seeded) -> None:
    figures = tally("export data matchings (service)")
    seeded.ensure_basics()

    @given(raw=matchings)
    @_fuzz_settings(examples(short=20, full=500))
    def run(raw: dict[str, Any]) -> None:
        matching = exports.DataMatching(
            raw["email"],
            raw["first_name"],
            raw["last_name"],
            [MappingLine(field, attribute) for field, attribute in raw["lines"]],
        )
        name = raw["name"]
        if name.startswith("Fuzz export"):  # a removed export keeps its name taken
            name = f"{name} {next(_names)}"
        wanted = exports.ExportSettings(
            name,
            seeded.connection_id,
            matching,
            raw["segments"],
            removal=raw["removal"],
            list_prefix=raw["list_prefix"],
        )
        before = metadata_digest(seeded.db_file)
        ctx = seeded.context()
        try:
            record = exports.create_export(ctx, wanted)
        except CLEAN as err:
            _check_refusal(figures, before, seeded, repr(raw)[:400], err.message)
            return
        except Exception:
            figures.add("traceback", f"{raw!r}"[:400] + "\n" + traceback.format_exc()[-1500:])
            return
        finally:
            seeded.release(ctx)
        figures.add("ok")
        ctx = seeded.context()
        try:
            exports.remove_export(ctx, record.id)
        finally:
            seeded.release(ctx)

    run()
    _assert_clean(figures)
