"""A run process loads what a run needs and no more: every ``segsync exports run`` and worker
pays for its imports in start-up time and in memory (the sample-data generator's Faker alone
is ~40 MB and 0.14 s). Deterministic: reads which modules a fresh interpreter imported."""

from __future__ import annotations

import json
import subprocess
import sys

from segsync.services.context import open_context
from segsync.services.profiles import load_sample
from segsync.settings import Settings

NOT_IN_A_RUN = (
    *("faker", "pandas", "pyarrow", "numpy", "fastapi", "uvicorn", "jinja2", "alembic"),
    *("ibis", "sqlglot", "yaml"),
)
"""Ibis and its sqlglot are imported by the run that compiles its segments, when it does: a run
whose SQL was kept never imports them (tests/services/sync/test_compiled.py). YAML is imported
where a segment definition is read or written, which a run whose SQL is kept never does."""


def test_the_run_engine_and_worker_do_not_import_sample_data_web_or_migrations() -> None:
    code = (
        "import json, sys\n"
        "import segsync.services.sync.engine, segsync.services.runs.worker\n"
        f"print(json.dumps([m for m in {list(NOT_IN_A_RUN)!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == []


READ_IN_A_FRESH_PROCESS = """
import json, sys
from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.domain.mapping import FieldMapping
from segsync.services.context import open_context
from segsync.services.sync import read
from segsync.settings import Settings

NOT_LOADED = {"pandas", "pyarrow", "numpy"}
hashed = []
digests_of = read.digests_of
read.digests_of = lambda batch, mapping: hashed.append(batch.num_rows) or digests_of(batch, mapping)
everyone = {"attribute": "CustomerId", "op": "greater_or_equal", "value": 0}
rules = [{"conditions": {"all": [everyone]}}]
segments = [read.SegmentSource("1", "All", json.dumps({"name": "All", "rules": rules}))]
mapping = FieldMapping(email="Email", first_name="FirstName", catalogue=AUTOPILOT_FIELDS)
settings = Settings(_env_file=None, data_dir=sys.argv[1])
with open_context(settings) as ctx:
    scan = read.read_members(ctx, segments, mapping, lambda e, d, s: e < "m", frozenset())
payloads = sum(1 for e in scan.entries.values() if e.has_payload)
print(json.dumps([scan.contacts, payloads, sum(hashed), sorted(NOT_LOADED & set(sys.modules))]))
"""


def test_reading_members_from_duckdb_does_not_import_arrow(settings: Settings) -> None:
    """The read on DuckDB (payloads hashed and emails checked by DuckDB, the rows whose
    payload the run needs taken from the batch) never loads pyarrow and the numpy it brings
    (some 50 MB and 0.1 s of every run), nor pandas, which pyarrow imports to ask whether a
    Python value is one of its types (a quarter of a second, 40 MB more)."""
    with open_context(settings) as ctx:
        load_sample(ctx, profiles=300, seed=3)
    done = subprocess.run(
        [sys.executable, "-c", READ_IN_A_FRESH_PROCESS, str(settings.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    contacts, payloads, hashed, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert hashed == 300  # every member went through the SQL-hashed path
    assert 0 < payloads < contacts  # some rows were taken from the batch to be built
    assert loaded == []
