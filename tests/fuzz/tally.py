"""What the fuzz suite counts, per target, and how it checks stored state.

Every generated input is one *try*; it ends as ``ok`` (accepted), a ``clean`` error (an
``InputError``-family refusal, CLI exit 2, HTTP 4xx), a ``server_error`` (HTTP 5xx), a
``traceback`` (any other exception, or a CLI run that printed one), a ``late_failure`` (accepted
at save, then failing when used), a ``state_change`` (refused, yet the stored state changed) or
a ``canary_hit`` (the planted key showed up in an answer). The suite asserts the last five are
zero; ``scripts/fuzz.py`` (``make fuzz``) prints them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

BAD = ("server_error", "traceback", "late_failure", "state_change", "canary_hit")
REPORT_ENV = "SEGSYNC_FUZZ_REPORT"
EXAMPLES_ENV = "SEGSYNC_FUZZ_EXAMPLES"

# Columns that change on every request by design (a token's last use), not state a refusal
# could corrupt.
_VOLATILE = {"last_used_at", "heartbeat_at", "last_failed_at"}
_SKIPPED_TABLES = {"alembic_version", "sign_in_failures", "web_sessions", "workers"}


def full_run() -> bool:
    """Whether this is ``make fuzz`` (or an explicit number of examples), not the short run."""
    return os.environ.get(EXAMPLES_ENV, "") != ""


def examples(short: int, full: int) -> int:
    """Examples per target: ``short`` in the test suite, ``full`` under ``make fuzz`` (which
    sets SEGSYNC_FUZZ_EXAMPLES=full), or an explicit number."""
    wanted = os.environ.get(EXAMPLES_ENV, "")
    if wanted == "full":
        return full
    return int(wanted) if wanted.isdigit() else short


@dataclass
class Tally:
    target: str
    tries: int = 0
    ok: int = 0
    clean: int = 0
    server_error: int = 0
    traceback: int = 0
    late_failure: int = 0
    state_change: int = 0
    canary_hit: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, outcome: str, detail: str = "") -> None:
        if outcome in {"ok", "clean", "server_error", "traceback", "late_failure"}:
            self.tries += 1
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome in BAD and len(self.examples) < 5:
            self.examples.append(f"{outcome}: {detail[:500]}")

    @property
    def bad(self) -> int:
        return sum(getattr(self, name) for name in BAD)


TALLIES: dict[str, Tally] = {}


def tally(target: str) -> Tally:
    return TALLIES.setdefault(target, Tally(target))


def write_report() -> None:
    path = os.environ.get(REPORT_ENV)
    if path and TALLIES:
        existing = json.loads(Path(path).read_text()) if Path(path).exists() else {}
        existing.update({name: asdict(t) for name, t in TALLIES.items()})
        Path(path).write_text(json.dumps(existing, indent=2))


def metadata_digest(db_file: Path) -> str:
    """A hash of every row of the metadata DB's tables (volatile columns left out)."""
    digest = hashlib.sha256()
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as con:
        tables = [
            row[0]
            for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] not in _SKIPPED_TABLES and not row[0].startswith("sqlite_")
        ]
        for table in sorted(tables):
            columns = [
                row[1]
                for row in con.execute(f'PRAGMA table_info("{table}")')
                if row[1] not in _VOLATILE
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            digest.update(table.encode())
            for row in con.execute(f'SELECT {select} FROM "{table}" ORDER BY 1'):
                digest.update(repr(row).encode())
    return digest.hexdigest()
