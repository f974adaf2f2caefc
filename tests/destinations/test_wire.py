"""The destination clients' HTTP transport (segsync.destinations.wire) against real loopback
servers: a scripted asyncio server for the shapes an answer can take and the ways a connection
can fail, and the simulator for the clients themselves."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.autopilot.client import AutopilotClient
from segsync.destinations.base import ConnectionConfig
from segsync.destinations.ortto.client import OrttoAnswers, OrttoClient
from segsync.destinations.wire import WireTransport, default_transport
from segsync.simulator import SimulatorConfig, serve_in_thread
from tests.tls_support import self_signed

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Handler = Callable[[Reader, Writer], Awaitable[None]]


class Server:
    """A loopback server whose every connection is handed to ``handler``; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: Reader, writer: Writer) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()

    async def start(self, tls: ssl.SSLContext | None = None) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def read_request(reader: Reader) -> tuple[bytes, bytes] | None:
    """One request's head and body (None at the end of the connection)."""
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


def answering(*answers: bytes) -> Handler:
    """Answer each request on a connection with the next of ``answers`` (then close)."""

    async def handler(reader: Reader, writer: Writer) -> None:
        for answer in answers:
            try:
                if await read_request(reader) is None:
                    return
            except asyncio.IncompleteReadError:
                return
            writer.write(answer)
            await writer.drain()

    return handler


def ok(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n" % len(body)
    return head + b"".join(h + b"\r\n" for h in extra) + b"\r\n" + body


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., Awaitable[tuple[httpx.AsyncClient, Server]]]]:
    made: list[tuple[httpx.AsyncClient, Server]] = []

    async def make(
        handler: Handler, *, connections: int = 4, seconds: float = 30.0
    ) -> tuple[httpx.AsyncClient, Server]:
        server = Server(handler)
        url = await server.start()
        transport = WireTransport(max_connections=connections)
        client = httpx.AsyncClient(base_url=url, transport=transport, timeout=seconds)
        made.append((client, server))
        return client, server

    yield make
    for client, server in made:
        await client.aclose()
        await server.stop()


async def test_a_connection_is_kept_alive_between_requests(client_for) -> None:  # type: ignore[no-untyped-def]
    client, server = await client_for(answering(ok(b"one"), ok(b"two"), ok(b"three")))
    bodies = [(await client.post("/x", content=b"hello")).content for _ in range(3)]
    assert bodies == [b"one", b"two", b"three"]
    assert server.connections == 1


async def test_the_request_goes_out_as_httpx_built_it(client_for) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        assert request is not None
        seen.append(request)
        writer.write(ok(b"{}"))
        await writer.drain()

    client, _ = await client_for(handler)
    answer = await client.post(
        "/v1/contacts?x=1", content=b'{"a": 1}', headers={"autopilotapikey": "k"}
    )
    assert answer.status_code == 200
    head, body = seen[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/contacts?x=1 HTTP/1.1"
    assert "autopilotapikey: k" in lines
    assert "content-length: 8" in [line.lower() for line in lines]
    assert body == b'{"a": 1}'


async def test_answers_chunked_gzipped_or_ended_by_closing_are_read_whole(client_for) -> None:  # type: ignore[no-untyped-def]
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    packed = gzip.compress(b"squeezed")
    zipped = ok(packed, b"content-encoding: gzip")
    until_close = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end"
    client, server = await client_for(answering(chunked, zipped, until_close))
    assert (await client.get("/a")).content == b"hello world"
    assert (await client.get("/b")).content == b"squeezed"
    assert (await client.get("/c")).content == b"to the end"
    assert server.connections == 1


async def test_status_reason_and_headers_reach_the_caller(client_for) -> None:  # type: ignore[no-untyped-def]
    teapot = b"HTTP/1.1 429 Slow Down\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n"
    client, _ = await client_for(answering(teapot))
    answer = await client.get("/")
    assert (answer.status_code, answer.reason_phrase) == (429, "Slow Down")
    assert answer.headers["Retry-After"] == "7"


async def test_an_answer_without_a_body_completes_at_its_head(client_for) -> None:  # type: ignore[no-untyped-def]
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n"
    client, server = await client_for(answering(no_content, head, ok(b"after")))
    assert (await client.delete("/x")).status_code == 204
    assert (await client.head("/x")).headers["content-length"] == "99"
    assert (await client.get("/x")).content == b"after"
    assert server.connections == 1


async def test_an_informational_answer_is_followed_by_the_real_one(client_for) -> None:  # type: ignore[no-untyped-def]
    hints = b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\n"
    client, _ = await client_for(answering(hints + ok(b"the answer", b"x-real: yes"), ok(b"next")))
    answer = await client.get("/")
    assert (answer.status_code, answer.content) == (200, b"the answer")
    assert answer.headers["x-real"] == "yes"
    assert "link" not in answer.headers
    assert (await client.get("/")).content == b"next"


async def test_a_connection_the_server_speaks_on_unasked_is_not_reused(client_for) -> None:  # type: ignore[no-untyped-def]
    said = asyncio.Event()

    async def then_time_out(reader: Reader, writer: Writer) -> None:
        await answering(ok(b"first"))(reader, writer)
        writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        said.set()
        await answering(ok(b"never read"))(reader, writer)

    client, server = await client_for(then_time_out)
    assert (await client.get("/")).content == b"first"
    await said.wait()
    for _ in range(20):  # let the loop read what the server said
        await asyncio.sleep(0)
    second = await client.get("/")
    assert (second.status_code, second.content) == (200, b"first")  # a new connection's answer
    assert server.connections == 2


async def test_connection_close_is_honoured(client_for) -> None:  # type: ignore[no-untyped-def]
    client, server = await client_for(answering(ok(b"once", b"connection: close")))
    assert (await client.get("/")).content == b"once"
    assert (await client.get("/")).content == b"once"
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_not_reused(client_for) -> None:  # type: ignore[no-untyped-def]
    closed = asyncio.Event()

    async def one_then_close(reader: Reader, writer: Writer) -> None:
        await answering(ok(b"ok"))(reader, writer)
        writer.close()
        await writer.wait_closed()
        closed.set()

    client, server = await client_for(one_then_close)
    assert (await client.get("/")).content == b"ok"
    await closed.wait()
    for _ in range(20):  # let the loop see the end of the connection
        await asyncio.sleep(0)
    assert (await client.get("/")).content == b"ok"
    assert server.connections == 2


async def test_no_answer_at_all_is_a_protocol_error(client_for) -> None:  # type: ignore[no-untyped-def]
    async def hang_up(reader: Reader, writer: Writer) -> None:
        await read_request(reader)

    client, _ = await client_for(hang_up)
    with pytest.raises(httpx.RemoteProtocolError, match="disconnected"):
        await client.get("/")


async def test_an_answer_cut_short_is_a_read_error(client_for) -> None:  # type: ignore[no-untyped-def]
    client, _ = await client_for(answering(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nhalf"))
    with pytest.raises(httpx.ReadError, match="middle of an answer"):
        await client.get("/")


async def test_an_answer_that_is_not_http_is_a_protocol_error(client_for) -> None:  # type: ignore[no-untyped-def]
    client, _ = await client_for(answering(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
    with pytest.raises(httpx.RemoteProtocolError, match="not valid HTTP"):
        await client.get("/")


async def test_no_answer_in_time_is_a_read_timeout(client_for) -> None:  # type: ignore[no-untyped-def]
    release = asyncio.Event()

    async def silent(reader: Reader, writer: Writer) -> None:
        await read_request(reader)
        await release.wait()

    client, _ = await client_for(silent, seconds=0.05)
    with pytest.raises(httpx.ReadTimeout):
        await client.get("/")
    release.set()


async def test_a_busy_pool_times_out_without_sending(client_for) -> None:  # type: ignore[no-untyped-def]
    release, arrived = asyncio.Event(), asyncio.Event()
    requests = 0

    async def slow(reader: Reader, writer: Writer) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1
        arrived.set()
        await release.wait()
        writer.write(ok(b"late"))
        await writer.drain()

    client, server = await client_for(slow, connections=1)
    first = asyncio.create_task(client.get("/"))
    await arrived.wait()  # the first request holds the only connection
    with pytest.raises(httpx.PoolTimeout):
        await client.get("/", timeout=httpx.Timeout(30.0, pool=0.05))
    release.set()
    assert (await first).content == b"late"
    assert (server.connections, requests) == (1, 1)


async def test_a_refused_connection_is_a_connect_error() -> None:
    server = Server(answering())
    url = await server.start()
    await server.stop()  # nothing listens on the port any more
    async with httpx.AsyncClient(transport=WireTransport(max_connections=2)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url)


async def test_only_http_and_https_are_spoken() -> None:
    async with httpx.AsyncClient(transport=WireTransport(max_connections=2)) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://127.0.0.1/x")


def _certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The server's context with a self-signed certificate, and a client context trusting it."""
    cert_file, key_file = self_signed(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=cert_file)


async def test_https_is_spoken_and_the_certificate_checked(tmp_path: Path) -> None:
    server_tls, trusting = _certificate(tmp_path)
    server = Server(answering(ok(b"secret"), ok(b"again")))
    url = await server.start(server_tls)
    try:
        transport = WireTransport(max_connections=2, tls=trusting)
        async with httpx.AsyncClient(base_url=url, transport=transport) as client:
            assert (await client.get("/")).content == b"secret"
            assert (await client.get("/")).content == b"again"
        assert server.connections == 1
        # By default only certificates from certifi's authorities pass: this one does not.
        async with httpx.AsyncClient(transport=WireTransport(max_connections=2)) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(url)
    finally:
        await server.stop()


async def test_a_proxy_in_the_environment_is_honoured_through_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert isinstance(default_transport(4), WireTransport)
    seen: list[bytes] = []

    async def proxy(reader: Reader, writer: Writer) -> None:
        request = await read_request(reader)
        assert request is not None
        seen.append(request[0].split(b"\r\n")[0])
        writer.write(ok(b'{"lists": []}'))
        await writer.drain()

    server = Server(proxy)
    proxy_url = await server.start()
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    assert default_transport(4) is None
    # 192.0.2.1 (TEST-NET-1) answers nobody: only the proxy can.
    config = ConnectionConfig(
        "http://192.0.2.1/v1", "key-0123456789", 5.0, max_attempts=1, timeout=5
    )
    client = AutopilotClient(config)
    try:
        assert (await client.lists()).data == {"lists": []}
    finally:
        await client.aclose()
        await server.stop()
    assert seen == [b"GET http://192.0.2.1/v1/lists HTTP/1.1"]


async def test_the_clients_send_through_it_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    key = "wire-key-0123456789"
    with serve_in_thread(SimulatorConfig(api_keys=[key], rate_limit=0, seed=5)) as running:
        destination = AutopilotDestination(ConnectionConfig(running.base_url, key, 1000.0))
        assert isinstance(destination.client._http._transport, WireTransport)
        try:
            list_id = await destination.ensure_list("Wire")
            assert (await destination.existing_lists())[list_id] == "Wire"
        finally:
            await destination.aclose()
    ortto = OrttoClient(ConnectionConfig("http://127.0.0.1:9", "ortto-key", 5.0))
    answers = ortto._http._transport
    assert isinstance(answers, OrttoAnswers)
    assert isinstance(answers.inner, WireTransport)
    await ortto.aclose()
