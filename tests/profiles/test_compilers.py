"""Ibis's SQL compilers imported as asked (segsync/profiles/compilers.py). Each test runs a fresh
interpreter: which modules it imported is what is tested, never how long it took."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from segsync.profiles.compilers import PACKAGE


def _run(code: str) -> object:
    """Run ``code`` in a fresh Python; it prints one JSON value as its last line."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _ibis_all() -> list[str]:
    """The names Ibis's compilers package exports, read from its source (not run)."""
    spec = importlib.util.find_spec("ibis")
    assert spec is not None
    assert spec.origin is not None
    source = Path(spec.origin).parent / "backends" / "sql" / "compilers" / "__init__.py"
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__":
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"no __all__ in {source}")


LOADED = f"""
import json, sys
prefix = {PACKAGE!r} + "."
def loaded():
    return sorted(n[len(prefix):] for n in sys.modules if n.startswith(prefix))
"""


def test_a_duckdb_profile_engine_loads_one_compiler_and_compiles() -> None:
    code = (
        LOADED
        + """
from segsync.profiles.engine import ProfileEngine
engine = ProfileEngine.connect("duckdb://")
engine.backend.raw_sql("CREATE TABLE t (a INTEGER)")
expr = engine.table("t").filter(lambda t: t.a > 1)
sql = engine.backend.compile(expr)
print(json.dumps([loaded(), "WHERE" in sql, engine.backend.execute(expr.count())]))
"""
    )
    loaded, compiled, count = _run(code)  # type: ignore[misc]
    assert compiled
    assert count == 0
    assert "duckdb" in loaded
    assert not {"athena", "bigquery", "postgres", "snowflake", "trino"} & set(loaded)


def test_every_name_ibis_exports_is_the_object_its_own_imports_give() -> None:
    names = _ibis_all()
    assert "DuckDBCompiler" in names
    assert len(names) >= 10
    code = (
        LOADED
        + f"""
import importlib
from segsync.profiles import compilers
compilers.load_lazily()
import ibis.backends.sql.compilers as sc
names = {names!r}
same = {{}}
for name in names:
    module = importlib.import_module(sc.__name__ + "." + name[: -len("Compiler")].lower())
    same[name] = getattr(sc, name) is getattr(module, name)
before_all = loaded()
exported = sc.__all__  # any other name runs Ibis's own package: everything, as before
print(json.dumps([same, before_all, exported, len(loaded())]))
"""
    )
    same, before_all, exported, after = _run(code)  # type: ignore[misc]
    assert same == dict.fromkeys(names, True)
    assert exported == names
    assert after >= len(before_all) >= len(names)


def test_dialects_by_name_and_unknown_ones_as_ibis_answers_them() -> None:
    code = (
        LOADED
        + """
import ibis
from segsync.profiles import compilers
compilers.load_lazily()
t = ibis.table({"a": "int64"}, name="t")
postgres = ibis.to_sql(t.filter(t.a > 1), dialect="postgres")
with_pg = loaded()
try:
    ibis.to_sql(t, dialect="nosuchdatabase")
    unknown = "compiled"
except ValueError as err:
    unknown = str(err)
print(json.dumps(["WHERE" in postgres, with_pg, unknown]))
"""
    )
    compiled, with_pg, unknown = _run(code)  # type: ignore[misc]
    assert compiled
    assert "postgres" in with_pg
    assert "athena" not in with_pg
    assert unknown == "Unknown dialect nosuchdatabase"
