"""The API key a simulator accepts unless told otherwise (in a module of its own, so that
``segsync simulator --help`` names it without loading the simulator)."""

from __future__ import annotations

DEFAULT_API_KEY = "simulator-key"
