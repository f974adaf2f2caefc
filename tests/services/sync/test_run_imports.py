"""A run process loads what a run needs and no more: every ``segsync exports run`` and worker
pays for its imports in start-up time and in memory (the sample-data generator's Faker alone
is ~40 MB and 0.14 s). Deterministic: reads which modules a fresh interpreter imported."""

from __future__ import annotations

import json
import subprocess
import sys

NOT_IN_A_RUN = ("faker", "pandas", "fastapi", "uvicorn", "jinja2", "alembic")


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
