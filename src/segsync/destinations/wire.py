"""The HTTP transport under the destination clients: HTTP/1.1 with kept-alive connections, on
asyncio's own sockets, with httptools (the C parser uvicorn uses) reading the answers.

The clients speak ``httpx``; this is the ``httpx.AsyncBaseTransport`` they send through by
default (:func:`default_transport`), in place of httpx's own (httpcore over anyio). Measured
on this project's 2-core machine against the simulator, 100-contact upserts four at a time:
httpx's transport took 1.8–2.4 ms of CPU per request, httpx over this one 0.7–0.8 ms
(docs/design.md "The engine against its floor"); a 100k-contact run makes over a thousand.

What it does not do, and who does it then:

* a proxy from the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``): when one is
  set, :func:`default_transport` returns ``None`` and httpx chooses (an ``AsyncClient`` given no
  transport honours them);
* HTTP/2, ``Expect: 100-continue``, upgrades, streaming bodies: the clients send small JSON
  bodies and read whole answers.

Failures are httpx's exceptions, as its own transport raises them, so the clients classify
them once: :class:`httpx.ConnectError` / :class:`httpx.ConnectTimeout` before anything was
sent, :class:`httpx.PoolTimeout` when no connection came free, and after the request left
:class:`httpx.ReadTimeout`, :class:`httpx.RemoteProtocolError` (the server closed the
connection or answered something that is not HTTP) or :class:`httpx.ReadError`.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from typing import Any

import httptools
import httpx

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def default_transport(max_connections: int) -> httpx.AsyncBaseTransport | None:
    """The transport a destination client sends through unless a test gives its own: this
    module's, or ``None`` (httpx's own) when the environment names a proxy."""
    names = {name.lower() for name, value in os.environ.items() if value.strip()}
    if names & set(_PROXY_VARIABLES):
        return None
    return WireTransport(max_connections=max_connections)


class _Answer(asyncio.Protocol):
    """One connection: writes a request, gathers its answer through the parser's callbacks."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.waiter: asyncio.Future[None] | None = None
        self._expect(head_only=False)

    def _expect(self, *, head_only: bool) -> None:
        """Ready for the next answer (to a HEAD request: one without a body)."""
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.reason = b""
        self.status = 0
        self.headers_done = self.complete = self.keep_alive = False
        self.head_only = head_only

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # nothing was asked: an idle connection the server gave up (a 408)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"the answer is not valid HTTP/1.1: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None or self.waiter.done():
            return
        if self.headers_done and not self._length_known():
            self._done()  # an answer delimited by the end of the connection
            return
        if self.headers_done:
            failure: Exception = httpx.ReadError("the connection closed in the middle of an answer")
        elif exc is not None:
            failure = httpx.ReadError(f"{type(exc).__name__}: {exc}".rstrip(": "))
        else:
            failure = httpx.RemoteProtocolError("Server disconnected without sending a response.")
        self._fail(failure)

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # more than the one answer asked for: never use this connection again
            self.keep_alive = False

    def on_status(self, status: bytes) -> None:
        if not self.complete:
            self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.complete:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        self.headers_done = True
        if self.head_only or self.parser.get_status_code() in (204, 304):
            self._done()

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if 100 <= self.parser.get_status_code() < 200:  # informational: the answer follows
            self.headers, self.body, self.reason = [], [], b""
            self.headers_done = False
            return
        self._done()

    # -- one exchange ----------------------------------------------------------------------

    def _length_known(self) -> bool:
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" in names or b"transfer-encoding" in names

    def _done(self) -> None:
        if not self.complete:
            self.complete = True
            self.status = self.parser.get_status_code()
            self.keep_alive = self.parser.should_keep_alive()  # the parser forgets it later
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes, *, head_only: bool, timeout: float | None) -> None:  # noqa: ASYNC109 (the request's own)
        """Write ``request`` and wait for its whole answer (raises httpx's errors)."""
        assert self.transport is not None
        self._expect(head_only=head_only)
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            async with asyncio.timeout(timeout):
                await self.waiter
        except TimeoutError:
            self.close()
            raise httpx.ReadTimeout("no answer within the timeout") from None


def _timeouts(request: httpx.Request) -> dict[str, float | None]:
    timeout: dict[str, float | None] = request.extensions.get("timeout", {})
    return timeout


class WireTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for httpx on asyncio: up to ``max_connections`` connections per origin, kept
    alive between requests. Safe for concurrent use within one event loop. ``tls``: how
    https servers are checked (default: certifi's CA bundle, as httpx does, made on first use)."""

    def __init__(self, *, max_connections: int, tls: ssl.SSLContext | None = None) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self._idle: dict[tuple[str, str, int], deque[_Answer]] = {}
        self._slots: dict[tuple[str, str, int], asyncio.Semaphore] = {}
        self._tls = tls
        self._closed = False

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:  # loading the CA bundle costs ~50 ms: not for http
            import certifi

            self._tls = ssl.create_default_context(cafile=certifi.where())
        return self._tls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}'.")
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        timeouts = _timeouts(request)
        body = await request.aread()
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), url.raw_path)]
        head.extend(b"%s: %s\r\n" % pair for pair in request.headers.raw)
        head.append(b"\r\n")
        data = b"".join(head) + body
        slots = self._slots.get(origin)
        if slots is None:
            slots = self._slots[origin] = asyncio.Semaphore(self.max_connections)
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection came free within the timeout") from None
        try:
            answer = self._reuse(origin) or await self._connect(origin, timeouts.get("connect"))
            try:
                await answer.exchange(
                    data, head_only=request.method == "HEAD", timeout=timeouts.get("read")
                )
            except BaseException:
                answer.close()  # an answer may still be on its way: the connection is spent
                raise
            if answer.keep_alive and not answer.closed and not self._closed:
                self._idle.setdefault(origin, deque()).append(answer)
            else:
                answer.close()
        finally:
            slots.release()
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=httpx.ByteStream(b"".join(answer.body)),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason},
        )

    def _reuse(self, origin: tuple[str, str, int]) -> _Answer | None:
        idle = self._idle.get(origin)
        while idle:
            answer = idle.pop()
            if not answer.closed:
                return answer
        return None

    async def _connect(self, origin: tuple[str, str, int], timeout: float | None) -> _Answer:  # noqa: ASYNC109
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls: dict[str, Any] = {}
        if scheme == "https":
            tls = {"ssl": self._tls_context(), "server_hostname": host}
        try:
            async with asyncio.timeout(timeout):
                _, answer = await loop.create_connection(_Answer, host, port, **tls)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"could not connect to {host}:{port} in time") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        return answer

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
