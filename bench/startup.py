"""Start-up cost of the `segsync` command: wall time, CPU time and peak memory.

Measures, each the median of --repeat fresh processes (default 5):

* `python -c pass` — the floor every command pays;
* `segsync --help`, `segsync --version` and `segsync runs --help` (a group's help runs the root
  callback too);
* `segsync runs list` on a fresh data dir holding the demo's runs (`segsync demo`, small);
* the simulator's time to first answer: from starting `segsync simulator` to its first HTTP
  reply (`GET /_sim/stats`).

Each figure is printed beside the floor (as a ratio) and beside its target (docs/design.md,
"Start-up"). Wall time depends on how busy the machine is, so the load average is printed
with the figures; CPU time moves much less with load. Bounded: about a minute on an idle
2-core machine, under 5 minutes on a busy one.

    python bench/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

TARGETS = {
    "segsync --help": 0.3,
    "segsync --version": 0.3,
    "segsync runs --help": 0.3,
    "segsync runs list": 0.6,
    "simulator: first answer": 1.0,
}
"""Wall seconds each may take (issue 11, target 4)."""
SIMULATOR_DEADLINE = 60.0
"""Give up on a simulator that has not answered by then (a broken start, not a slow one)."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float
    peak_rss_mb: float


def _segsync() -> list[str]:
    """The `segsync` console script beside this interpreter (what users run)."""
    script = Path(sys.executable).parent / "segsync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "segsync"]


GNU_TIME = shutil.which("time", path="/usr/bin:/bin")
"""GNU time reports the command's own peak RSS. Without it the kernel's figure for the child is
used, which counts this script's memory at the fork (an upper bound)."""


def run_once(argv: Sequence[str], env: dict[str, str]) -> Sample:
    """Run ``argv`` to its end: its wall time, CPU time (wait4) and peak RSS."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        wrapped = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *argv] if GNU_TIME else list(argv)
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {errors[-2000:]}")
        peak_kb = int(rss_file.read().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return Sample(wall, usage.ru_utime + usage.ru_stime, peak_kb / 1024)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_cpu_and_peak(pid: int) -> tuple[float, float]:
    """CPU seconds and peak RSS (MB) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    peak_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak_kb = int(line.split()[1])
    return cpu, peak_kb / 1024


def simulator_first_answer(env: dict[str, str]) -> Sample:
    """Start `segsync simulator`; time until its first HTTP reply, its CPU and memory then."""
    port = _free_port()
    argv = [*_segsync(), "simulator", "--port", str(port), "--rate-limit", "0"]
    url = f"http://127.0.0.1:{port}/_sim/stats"
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    reply.read()
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None:
                    message = f"the simulator exited {proc.returncode} before answering"
                    raise SystemExit(message) from None
                if time.perf_counter() - started > SIMULATOR_DEADLINE:
                    raise SystemExit("the simulator did not answer within a minute") from None
                time.sleep(0.005)  # a bench, not a test: polling the port is what is measured
        wall = time.perf_counter() - started
        cpu, peak = _proc_cpu_and_peak(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return Sample(wall, cpu, peak)


def median(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.wall for s in samples),
        statistics.median(s.cpu for s in samples),
        statistics.median(s.peak_rss_mb for s in samples),
    )


def demo_data_dir(root: Path, env: dict[str, str]) -> Path:
    """A fresh data dir with real runs in it: a small `segsync demo` (two runs)."""
    directory = root / "demo"
    options = ["--profiles", "200", "--rate-limit", "1000", "--dir", str(directory)]
    argv = [*_segsync(), "demo", *options]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=root, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"segsync demo exited {done.returncode}: {done.stderr[-2000:]}")
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="processes per figure (median)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="segsync-startup-"))
    env = {**os.environ, "HOME": str(root), "SEGSYNC_DATA_DIR": str(root / "data")}
    env.pop("SEGSYNC_DATABASE_URL", None)
    env.pop("SEGSYNC_PROFILES_URL", None)
    try:
        print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
        data_dir = demo_data_dir(root, env)
        list_argv = [*_segsync(), "--data-dir", str(data_dir), "runs", "list"]
        measures: list[tuple[str, Callable[[], Sample]]] = [
            ("python -c pass", lambda: run_once([sys.executable, "-c", "pass"], env)),
            ("segsync --help", lambda: run_once([*_segsync(), "--help"], env)),
            ("segsync --version", lambda: run_once([*_segsync(), "--version"], env)),
            ("segsync runs --help", lambda: run_once([*_segsync(), "runs", "--help"], env)),
            ("segsync runs list", lambda: run_once(list_argv, env)),
            ("simulator: first answer", lambda: simulator_first_answer(env)),
        ]
        results: dict[str, Sample] = {}
        for name, measure in measures:
            measure()  # warm the page cache and the bytecode; not counted
            results[name] = median([measure() for _ in range(args.repeat)])
        floor = results["python -c pass"]
        print(f"median of {args.repeat}; ratio = wall / wall of `python -c pass`")
        header = f"{'':<26}{'wall s':>8}{'CPU s':>8}{'peak MB':>9}{'ratio':>8}{'target s':>10}"
        print(header)
        for name, sample in results.items():
            target = TARGETS.get(name)
            verdict = "" if target is None else ("  ok" if sample.wall <= target else "  over")
            print(
                f"{name:<26}{sample.wall:>8.3f}{sample.cpu:>8.3f}{sample.peak_rss_mb:>9.1f}"
                f"{sample.wall / floor.wall:>8.1f}"
                f"{'' if target is None else f'{target:.1f}':>10}{verdict}"
            )
        print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
