"""docs/quickstart.md, word for word: its shell blocks are run in order by bash in a temporary
directory, against the real `segsync` command and a `segsync simulator` process on loopback.

Blocks preceded by ``<!-- quickstart-test: skip ... -->`` are not run (``make demo``, the real
Autopilot). The one change made to the commands is the simulator's port: 8765 in the doc, a
free port here, so two runs of the suite never meet. The simulator block is started as a
process of its own (the doc puts it in the background), and the next block waits until its
port answers (a bounded poll, no sleep for timing)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "quickstart.md"
DOC_PORT = "8765"
SKIP = "<!-- quickstart-test: skip"
BLOCK = re.compile(r"(<!-- quickstart-test: skip[^\n]*-->\n)?```sh\n(.*?)```", re.DOTALL)
STEP_TIMEOUT = 300  # seconds a block may take on a loaded machine
READY_TIMEOUT = 30.0


def blocks() -> list[str]:
    """The shell blocks the test runs, in the doc's order."""
    text = QUICKSTART.read_text(encoding="utf-8")
    return [match.group(2) for match in BLOCK.finditer(text) if not match.group(1)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    """Poll until the simulator accepts connections (bounded; fails if it exits)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the simulator exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # poll interval only: the outcome does not depend on it
    pytest.fail(f"the simulator did not listen on port {port} within {READY_TIMEOUT} s")


def start_environment() -> dict[str, str]:
    """This process's environment without segsync's settings, with this venv's ``segsync``
    first on the PATH (as the doc's ``export PATH=...`` puts it) and an 80-column terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "80"
    return env


def run_block(script: str, cwd: Path, env: dict[str, str]) -> dict[str, str]:
    """Run ``script`` with bash (``-e``: any failing command fails the test) in ``env``, and
    return the environment it leaves (what its ``export`` lines set)."""
    left = cwd / ".env-after-block"
    done = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{script}\nenv -0 > {left}\n"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"block failed:\n{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    pairs = (item.split("=", 1) for item in left.read_text().split("\0") if "=" in item)
    return {key: value for key, value in pairs}


@pytest.mark.slow  # starts segsync a dozen times and a simulator process
def test_the_quickstart_works_word_for_word(tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is missing")
    port = free_port()
    steps = [block.replace(DOC_PORT, str(port)) for block in blocks()]
    assert any(step.strip().startswith("segsync simulator") for step in steps)
    env = start_environment()
    simulator: subprocess.Popen[bytes] | None = None
    log = (tmp_path / "simulator.log").open("wb")
    try:
        for step in steps:
            command = step.strip()
            if command.startswith("segsync simulator"):
                assert command.endswith("&"), "the doc starts the simulator in the background"
                args = command.removesuffix("&").split()
                simulator = subprocess.Popen(
                    [shutil.which("segsync", path=env["PATH"]) or "segsync", *args[1:]],
                    cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
                wait_for_port(port, simulator)
                continue
            env = run_block(step, tmp_path, env)
        assert simulator is not None
        lists = httpx.get(f"http://127.0.0.1:{port}/_sim/lists", timeout=10).json()["lists"]
        contacts = httpx.get(f"http://127.0.0.1:{port}/_sim/contacts", timeout=10).json()
        data_dir = Path(env["SEGSYNC_DATA_DIR"])
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.terminate()
            simulator.wait(timeout=30)
        log.close()

    # What the doc says happened, checked against the simulator and the runs themselves.
    (lisbon,) = [item for item in lists if item["title"] == "Lisbon"]
    on_list = {c["Email"]: c for c in contacts["contacts"] if lisbon["list_id"] in set(c["lists"])}
    assert set(on_list) == {"ana@example.com", "eva@example.com"}  # Carla left, Duarte invalid
    assert on_list["ana@example.com"]["LastName"] == "Silva-Mendes"
    runs = subprocess.run(
        ["segsync", "--data-dir", str(data_dir), "runs", "list", "--json"],
        env=env, capture_output=True, text=True, check=True, timeout=STEP_TIMEOUT,
    ).stdout  # fmt: skip
    last = json.loads(runs)[0]
    assert last["counts"]["added"] == 1
    assert last["counts"]["updated"] == 1
    assert last["counts"]["removed"] == 1
    assert str(data_dir).startswith(str(tmp_path))
