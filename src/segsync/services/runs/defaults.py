"""Defaults the edges show in their help texts (``segsync worker --help``, ``segsync schedule
show --help``), in a module that imports nothing, so a help screen never loads the run stack."""

from __future__ import annotations

POLL_SECONDS = 2.0
"""How long an idle worker waits before looking at the queue again."""
DEFAULT_NEXT = 5
"""How many next due times of the system schedule are listed."""
