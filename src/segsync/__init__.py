"""segsync: export segments of unified customer profiles to Autopilot."""

from __future__ import annotations

__version__ = "0.1.0"
