"""Ibis's SQL compilers, each imported when first asked for.

Ibis's package ``ibis.backends.sql.compilers`` imports the compiler of every database it
knows (twenty of them, with sqlglot's dialects for each) as soon as any backend is loaded:
0.10–0.13 s of every command that opens the profile engine (a run, a segment preview, the
web server and the workers at start), when a profile engine needs one compiler — DuckDB's,
PostgreSQL's or Spark's.

:func:`load_lazily` puts the package in ``sys.modules`` without running its ``__init__``: its
submodules import as usual (``ibis.backends.sql.compilers.duckdb``), and a name the package
would have made is made when asked — ``sc.duckdb`` imports that submodule, ``DuckDBCompiler``
the submodule of that compiler. Any other name (``__all__`` above all) runs the package's own
``__init__`` first, so nothing is ever missing: at worst everything is imported, as before.
tests/profiles/test_compilers.py holds every name of Ibis's ``__all__`` to the object the
package's own imports give.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from typing import Any

PACKAGE = "ibis.backends.sql.compilers"
_SUFFIX = "Compiler"


def load_lazily() -> None:
    """Register Ibis's compilers package so that each compiler loads when first asked for. Does
    nothing where the package is loaded already (or cannot be found)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)
    ran = False  # whether Ibis's own package has been run
    running = threading.RLock()  # one thread runs Ibis's package; the others wait for it

    def attribute(name: str) -> Any:
        if name == "__all__":  # every compiler: the package as Ibis writes it
            return whole(name)
        if name.startswith("__"):  # probes such as __wrapped__: nothing to import for them
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")
        module = name[: -len(_SUFFIX)].lower() if name.endswith(_SUFFIX) else name
        try:
            found = importlib.import_module(f"{PACKAGE}.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"{PACKAGE}.{module}":
                raise  # a submodule that is there failed to import something of its own
            return whole(name)
        return getattr(found, name) if module != name else found

    def whole(name: str) -> Any:
        nonlocal ran
        with running:
            if not ran:
                ran = True  # first: the package's own imports may ask again
                spec.loader.exec_module(package)  # type: ignore[union-attr]
        if name in vars(package):
            return vars(package)[name]
        raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")

    setattr(package, "__getattr__", attribute)  # noqa: B010 - PEP 562: looked up in its namespace
    sys.modules[PACKAGE] = package
