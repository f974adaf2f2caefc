"""segsync as the soak drives it: ``segsync`` CLI processes on one data dir (SQLite metadata DB,
or a fresh PostgreSQL database), and the metadata DB's ``runs`` table read directly."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soaklib.data import EXPORT, LIST_PREFIX, SEGMENTS
from soaklib.sim import API_KEY

HOLD_REMOVALS = "10%"  # the blast-radius hold trips often: its approve path soaks too

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
KEY_VARIABLE = "SOAK_AUTOPILOT_KEY"
CONNECTION = "Sim"
COMMAND_TIMEOUT = 300.0
RATE_LIMIT = "10"  # requests/s: a run takes a while, so kills land mid-send


class SetupFailed(RuntimeError):
    """A set-up command of the soak failed (its output is in the message)."""


@dataclass(frozen=True)
class RunRow:
    id: int
    status: str
    lease_owner: str | None
    attempts: int


class Segsync:
    """The ``segsync`` command on one data dir, with the soak's environment."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
        env[KEY_VARIABLE] = API_KEY
        if database_url is not None:
            env["SEGSYNC_DATABASE_URL"] = database_url
        self.env = env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "segsync", "--data-dir", str(self.data_dir), *args]

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 - segsync itself
            self.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            start_new_session=True,
        )

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - segsync itself
            self.command(*args),
            capture_output=True,
            text=True,
            env=self.env,
            input=stdin,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    def must(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        if done.returncode != 0:
            raise SetupFailed(f"segsync {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done.stdout

    def import_profiles(self, csv_path: Path) -> None:
        self.must(
            "profiles", "import", str(csv_path), "--table", "people", "--key", "id", "--profile",
            "--replace",
        )  # fmt: skip

    def setup(self, csv_path: Path, base_url: str, destination: str = "autopilot") -> None:
        """Profiles, the segments, a connection to the simulator and the export (mirror
        removal; email, first and last name and a custom field)."""
        self.must("init")
        self.import_profiles(csv_path)
        for segment in SEGMENTS:
            self.must("segments", "create", "--file", "-", stdin=segment.definition())
        self.must("segments", "refresh", "--all")
        self.must(
            "connections", "add", destination, "--name", CONNECTION,
            "--api-key-env", KEY_VARIABLE, "--base-url", base_url, "--rate-limit", RATE_LIMIT,
            "--agree",
        )  # fmt: skip
        segments = [arg for s in SEGMENTS for arg in ("--segment", s.name)]
        self.must(
            "exports", "create", "--name", EXPORT, "--connection", CONNECTION,
            "--email", "Email", "--first-name", "FirstName", "--last-name", "LastName",
            "--map", "custom:string:Tier=Tier", *segments, "--removal", "mirror",
            "--list-prefix", LIST_PREFIX, "--schedule", "off",
            "--hold-removals", HOLD_REMOVALS,
        )  # fmt: skip

    def test_connection(self) -> bool:
        return self.run("connections", "test", CONNECTION).returncode == 0

    def runs(self) -> list[RunRow]:
        """Every run, read from the metadata DB's ``runs`` table."""
        query = "SELECT id, status, lease_owner, attempts FROM runs ORDER BY id"
        rows: list[Any]
        if self.database_url is None:
            with closing(sqlite3.connect(self.data_dir / "segsync.db", timeout=30)) as db:
                rows = db.execute(query).fetchall()
        else:
            import psycopg

            with psycopg.connect(self.database_url) as db:
                rows = db.execute(query).fetchall()
        return [RunRow(int(r[0]), str(r[1]), r[2], int(r[3])) for r in rows]


class PostgresDatabase:
    """A fresh PostgreSQL database for one soak's metadata, dropped at :meth:`drop`."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"segsync_soak_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        self.url = f"postgresql://postgres@127.0.0.1:5432/{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
