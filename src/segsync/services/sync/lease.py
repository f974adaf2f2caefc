"""Leases: which process holds a running run. A run in Processing is held by a *lease owner*
(``host:pid:uuid``) until ``lease_expires_at``; the engine extends the lease at every commit
and on a timer. When a lease lapses — it expired, or it names a process of this host that no
longer exists — another process may take the run over and resume it from its checkpoint."""

from __future__ import annotations

import os
import socket
import uuid

LEASE_SECONDS = 60.0
"""How long a run's lease lasts without a heartbeat; a run whose lease expired may be resumed."""

_ACTIVE_OWNERS: set[str] = set()
"""Lease owners running in this process (so a same-process check knows who is alive)."""


def new_lease_owner() -> str:
    """``host:pid:uuid`` naming this process and this attempt."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` names a process on this host that no longer runs (or this process,
    when it is not running that attempt any more). Owners on other hosts are not judged here:
    their lease expiry decides."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in _ACTIVE_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False


def mark_active(owner: str, active: bool) -> None:
    """Note that this process runs (or no longer runs) the attempt held by ``owner``."""
    (_ACTIVE_OWNERS.add if active else _ACTIVE_OWNERS.discard)(owner)
