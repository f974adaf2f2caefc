"""Service modules imported on first use, so that ``segsync --help`` (and every ``--help``)
starts without the database, profile-engine, web and HTTP stacks. See docs/design.md
("Start-up").

Each command module names the families it calls the usual way for the type checker and a
:func:`lazy_module` stand-in at run time::

    if TYPE_CHECKING:
        from segsync.services import runs as run_service
    else:
        run_service = lazy_module("segsync.services.runs")

The first attribute read (``run_service.list_runs``) imports the real module; nothing else
changes. ``tests/cli/test_startup.py`` checks that no help screen imports the heavy packages.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule(ModuleType):
    """Stands in for the module of the same name until an attribute is read."""

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)


def lazy_module(name: str) -> ModuleType:
    """A stand-in for the module ``name`` that imports it on first attribute access."""
    return _LazyModule(name)
