"""A worker's reading processes (:mod:`.apart`): a fork server.

A worker has threads once it runs (its heartbeat), so it may not fork a reading process for
each first run: another thread could hold a lock at that moment, taken in the child for good.
Before it starts any, it forks a server instead (:func:`fork_server`): a process that keeps one
thread for good — it never imports DuckDB, which starts one — and waits on a Unix socket. For
each first run, the worker hands it the two pipe ends the reading will use (the job's, and the
one it writes its batches to); the server forks a reading process with them, hands back the
process's number and a pidfd of it, and once the process has ended, reaps it and hands back its
wait status. The pidfd lets the worker kill the reading process (a run that stops) without any
risk of killing another process that took its number after it ended. The server dies with the
worker (the parent-death signal), and each reading process with the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import struct
from typing import NoReturn

from segsync.services.context import ServiceContext
from segsync.services.sync.apart import ANSWER_WITHIN, Reader, pipes
from segsync.services.sync.reading_process import child, die_with
from segsync.storage.db import Database

log = logging.getLogger(__name__)

_NUMBER = struct.Struct("!i")  # a process number, or a wait status


class Server(Reader):
    """The worker's side of its reading server: one first run at a time."""

    def __init__(self, db: Database, pid: int, sock: socket.socket) -> None:
        super().__init__(db)
        self._server, self._sock = pid, sock
        self._pidfd = -1
        self._status: int | None = None  # the reading process's, once it ended
        self.broken = False

    def _hand(self, data: bytes) -> str | None:
        try:
            jobs_r, jobs_w, out_r, out_w = pipes()
        except OSError as err:
            return str(err)
        self._out = out_r  # closed by _done()
        try:
            try:
                socket.send_fds(self._sock, [b"j"], [jobs_r, out_w])
            finally:
                os.close(jobs_r)
                os.close(out_w)
            self._sock.settimeout(ANSWER_WITHIN)
            try:
                number, given, _, _ = socket.recv_fds(self._sock, _NUMBER.size, 1)
            finally:
                self._sock.settimeout(None)
            if len(number) != _NUMBER.size or len(given) != 1:
                for fd in given:
                    os.close(fd)
                raise OSError("the reading server ended")
            (self.pid,), self._pidfd = _NUMBER.unpack(number), given[0]
            with os.fdopen(jobs_w, "wb") as jobs:
                jobs_w = -1  # closed with the file
                jobs.write(data)
        except OSError as err:  # the server or the process gone, or no answer in time
            if jobs_w >= 0:
                os.close(jobs_w)
            if not self.pid:  # what the server sends next would not be this run's: done with it
                self._give_up()
            return str(err) or type(err).__name__
        return None

    def _give_up(self) -> None:
        """Kill the server: the worker's later first runs read on their thread."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._server, signal.SIGKILL)
        self.broken = True

    def stop(self) -> None:
        with self._lock:
            if self._pidfd >= 0 and self._status is None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def _reap(self) -> int:
        with self._lock:
            if self._status is None:
                try:
                    answer = self._sock.recv(_NUMBER.size)
                except OSError:
                    answer = b""
                # The server gone (killed with the worker's end): said as a SIGKILL.
                self._status = _NUMBER.unpack(answer)[0] if len(answer) == 4 else signal.SIGKILL
            return self._status

    def _done(self) -> None:
        super()._done()
        with self._lock:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd, self._status, self.pid = -1, None, 0
            self.claimed = self.broken  # free for the worker's next first run, unless broken

    def dismiss(self) -> None:
        """The worker ends: kill the server (a reading process still going dies with it) and
        reap it."""
        self.stop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._server, signal.SIGKILL)
        os.waitpid(self._server, 0)
        self._sock.close()
        self._done()


def fork_server(ctx: ServiceContext) -> Server | None:
    """The server, forked now (this process has one thread: see :mod:`.apart`); None where the
    system refuses: the worker's first runs read on their thread."""
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError as err:
        log.warning("no reading server (%s): first runs read on their thread", err)
        return None
    try:
        parent = os.getpid()
        pid = os.fork()
    except OSError as err:
        ours.close()
        theirs.close()
        log.warning("no reading server (%s): first runs read on their thread", err)
        return None
    if pid == 0:
        ours.close()
        _serve(theirs, parent)
    theirs.close()
    return Server(ctx.db, pid, ours)


def _serve(sock: socket.socket, parent: int) -> NoReturn:
    """The server: for each pair of pipe ends the worker hands over, fork a reading process,
    hand back its number and pidfd, reap it and hand back its status; leave when the worker
    closes the socket. One thread throughout."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        die_with(parent)
        me = os.getpid()
        while True:
            message, fds, _, _ = socket.recv_fds(sock, 1, 2)
            if not message or len(fds) != 2:
                break
            jobs, out = fds
            pid = os.fork()
            if pid == 0:
                sock.close()
                child(jobs, out, me)
            os.close(jobs)
            os.close(out)
            pidfd = os.pidfd_open(pid)
            try:
                socket.send_fds(sock, [_NUMBER.pack(pid)], [pidfd])
            finally:
                os.close(pidfd)
            _, status = os.waitpid(pid, 0)
            sock.send(_NUMBER.pack(status))
        code = 0
    except BaseException:  # the worker finds the socket ended; its runs read on their thread
        log.debug("the reading server ended", exc_info=True)
    finally:
        os._exit(code)
