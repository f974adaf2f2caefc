"""How close the Autopilot client sits to the rate-limit floor.

Starts the simulator (`segsync simulator`, its own process, on a free loopback port) with a rate
limit of R requests/s and L ms added latency, then has the client — its connection set to C
requests/s, R unless `--client-rate` says otherwise — upsert N contacts in bulk batches of 100
through `Destination.upsert_batches`, and prints:

- requests made, and the minimum ceil(N / 100);
- 429s received (the client's count, checked against the simulator's), and the lowest rate the
  client's adaptive rate went down to;
- wall time, the floor requests / R, and wall / floor;
- the strict floor (minimum − B) / R, where B = max(R, 1) is the simulator's initial burst (its
  token bucket starts full), and wall / strict floor.

Target at C = R: requests = minimum, 429s = 0, wall / floor <= 1.05. With the connection set
faster than the API allows (`--rate 1 --client-rate 5`), the client slows itself down: the run
completes, and wall / strict floor says what the slowing down cost.

    python bench/client_rate.py [--contacts 20000] [--rate 50] [--latency-ms 100] [--in-thread]
    python bench/client_rate.py --rate 1 --client-rate 5 --contacts 6000 --latency-ms 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx

from segsync.destinations.base import ConnectionConfig, UpsertItem
from segsync.destinations.registry import create_destination

KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def simulator_process(rate: float, latency_ms: float) -> Iterator[str]:
    """The simulator as its own process (so it does not share the client's GIL); yields root."""
    port = free_port()
    args = ["simulator", "--port", str(port), "--api-key", KEY, "--seed", "1"]
    args += ["--rate-limit", f"{rate:g}", "--latency-ms", f"{latency_ms:g}"]
    code = "from segsync.cli import main; main()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{root}/_sim/stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read().decode() if process.stderr else ""
                    raise SystemExit(f"the simulator did not start: {err}") from None
                time.sleep(0.05)
        yield root
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def simulator_thread(rate: float, latency_ms: float) -> Iterator[str]:
    from segsync.simulator import SimulatorConfig, serve_in_thread

    config = SimulatorConfig(api_keys=[KEY], rate_limit=rate, latency_ms=latency_ms, seed=1)
    with serve_in_thread(config) as running:
        yield running.root_url


def batches(contacts: int, size: int) -> Iterator[list[UpsertItem]]:
    for start in range(0, contacts, size):
        yield [
            UpsertItem(
                f"c{i:06d}@bench.example",
                {"FirstName": "Bench", "LastName": f"N{i}"},
                {"integer--Orders": i % 17, "string--Tier": "gold"},
            )
            for i in range(start, min(start + size, contacts))
        ]


async def run(root: str, contacts: int, rate: float) -> dict[str, float]:
    config = ConnectionConfig(base_url=f"{root}/v1", api_key=KEY, rate_limit=rate)
    async with create_destination("autopilot", config) as dest:
        size = dest.capabilities.max_batch_size
        rejected = 0
        peak = 0
        started = time.perf_counter()
        async for _, result in dest.upsert_batches(batches(contacts, size)):
            rejected += len(result.rejected)
            peak = max(peak, dest.max_in_flight())
        wall = time.perf_counter() - started
        slowdown = dest.slowdown()
        return {
            "requests": dest.requests_made,
            "minimum": math.ceil(contacts / size),
            "throttled": dest.throttled,
            "lowest": rate if slowdown is None else slowdown.lowest,
            "rejected": rejected,
            "wall": wall,
            "in_flight": peak,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=50.0, help="what the simulator allows")
    parser.add_argument(
        "--client-rate", type=float, default=None, help="the connection's rate (default: --rate)"
    )
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument(
        "--in-thread", action="store_true", help="serve the simulator in a thread of this process"
    )
    args = parser.parse_args()
    serve = simulator_thread if args.in_thread else simulator_process
    client_rate = args.rate if args.client_rate is None else args.client_rate
    with serve(args.rate, args.latency_ms) as root:
        figures = asyncio.run(run(root, args.contacts, client_rate))
        server = httpx.get(f"{root}/_sim/stats").json()
    floor = figures["requests"] / args.rate
    strict = max(figures["minimum"] - max(args.rate, 1.0), 0.0) / args.rate
    print(
        f"client_rate: {args.contacts} contacts, R = {args.rate:g} r/s, C = {client_rate:g} r/s, "
        f"latency {args.latency_ms:g} ms, simulator {'in-thread' if args.in_thread else 'process'}"
    )
    print(f"  requests made      {figures['requests']:.0f}  (simulator saw {server['total']})")
    print(f"  minimum ceil(N/100) {figures['minimum']:.0f}")
    sent = server["throttled"]
    print(f"  429s received      {figures['throttled']:.0f}  (simulator sent {sent})")
    print(f"  lowest rate        {figures['lowest']:.3g} r/s")
    print(f"  rejected contacts  {figures['rejected']:.0f}")
    print(f"  peak in flight     {figures['in_flight']:.0f}")
    print(f"  wall time          {figures['wall']:.3f} s")
    print(f"  floor (requests/R) {floor:.3f} s")
    print(f"  wall / floor       {figures['wall'] / floor:.3f}  (target <= 1.05 at C = R)")
    if strict > 0:
        print(f"  strict floor       {strict:.3f} s  ((minimum - burst) / R)")
        print(f"  wall / strict      {figures['wall'] / strict:.3f}")


if __name__ == "__main__":
    main()
