"""segsync: export segments of unified customer profiles to Autopilot."""

from __future__ import annotations

import sys

__version__ = "0.1.0"

# httpx imports its own command-line tool (``httpx._main``: click, rich and pygments) whenever
# those happen to be installed, some 0.04 s of every run's start; segsync never uses it. A
# ``None`` in ``sys.modules`` makes that import fail, and httpx then goes on without its tool
# (docs/design.md, "Start-up"). Where httpx was imported first, this changes nothing.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
