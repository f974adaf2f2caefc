"""Requests per second the Autopilot simulator sustains on loopback, rate limit off.

Starts `segsync simulator --rate-limit 0` as its own process on a free loopback port and drives
it from N concurrent keep-alive connections (a minimal asyncio HTTP/1.1 client, so that the
client is not what is measured), then prints requests/s per kind of request and overall.
Bounded: each phase stops after its request count or PHASE_SECONDS, whichever comes first.

    python bench/simulator_throughput.py [--concurrency 16] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

KEY = "simulator-key"
PHASE_SECONDS = 15.0
Request = tuple[str, str, bytes | None]


class Connection:
    """One keep-alive HTTP/1.1 connection; the simulator always sends Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        payload = body or b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nautopilotapikey: {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode() + payload)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Phase:
    name: str
    count: int
    request: Callable[[int], Request]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    code = "from segsync.cli import main; main()"
    args = ["simulator", "--rate-limit", "0", "--port", str(port), "--seed", "1"]
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"the simulator exited with code {process.returncode}: {errors}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the simulator did not start within 20 s")


async def run_phase(connections: list[Connection], phase: Phase) -> int:
    next_index = 0
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + PHASE_SECONDS

    async def worker(connection: Connection) -> None:
        nonlocal next_index
        while next_index < phase.count and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            status, _ = await connection.send(*phase.request(index))
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    done = sum(statuses.values())
    codes = ", ".join(f"{code}x{n}" for code, n in sorted(statuses.items()))
    rate = done / elapsed
    print(f"  {phase.name:<36} {done:>6} in {elapsed:5.2f} s = {rate:7.0f} req/s  [{codes}]")
    return done


def phases(list_id: str, scale: float) -> list[Phase]:
    def dumps(data: object) -> bytes:
        return json.dumps(data).encode()

    def one(i: int) -> Request:
        contact = {"Email": f"s{i}@bench.example", "FirstName": "S", "custom": {"integer--N": i}}
        return "POST", "/v1/contact", dumps({"contact": contact})

    def bulk(i: int) -> Request:
        contacts = [
            {"Email": f"b{i}-{j}@bench.example", "FirstName": "B", "_autopilot_list": list_id}
            for j in range(100)
        ]
        return "POST", "/v1/contacts", dumps({"contacts": contacts})

    n = int(4000 * scale)
    return [
        Phase("GET /v1/account", n, lambda i: ("GET", "/v1/account", None)),
        Phase("POST /v1/contact (one upsert)", n, one),
        Phase(
            "GET /v1/contact/{email}", n, lambda i: ("GET", f"/v1/contact/s{i}@bench.example", None)
        ),
        Phase(
            "POST /v1/list/{id}/contact/{email}",
            n,
            lambda i: ("POST", f"/v1/list/{list_id}/contact/s{i}@bench.example", None),
        ),
        Phase("POST /v1/contacts (bulk of 100)", int(300 * scale), bulk),
    ]


async def main(concurrency: int, scale: float) -> None:
    port = free_port()
    process = start_simulator(port)
    connections: list[Connection] = []
    try:
        connections = [await Connection.open(port) for _ in range(concurrency)]
        _, body = await connections[0].send("POST", "/v1/list", b'{"name": "bench"}')
        list_id = json.loads(body)["list_id"]
        print(f"simulator on 127.0.0.1:{port}, rate limit off, {concurrency} connections")
        started = time.perf_counter()
        total = 0
        for phase in phases(list_id, scale):
            total += await run_phase(connections, phase)
        elapsed = time.perf_counter() - started
        print(f"  {'all phases':<36} {total:>6} in {elapsed:5.2f} s = {total / elapsed:7.0f} req/s")
        _, stats = await connections[0].send("GET", "/_sim/stats", None)
        print(f"  server counted {json.loads(stats)['total']} /v1 requests")
    finally:
        for connection in connections:
            connection.close()
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Simulator throughput on loopback.")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    args = parser.parse_args()
    asyncio.run(main(args.concurrency, args.scale))
