"""The import rules of docs/design.md, checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "segsync"

# Which of our own top-level modules each layer may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "settings": {"errors"},
    "domain": {"errors"},
    "destinations": {"domain", "errors"},
    "storage": {"domain", "errors"},
    "profiles": {"domain", "errors"},
    "segments": {"domain", "profiles", "errors"},
    "services": {
        "domain",
        "storage",
        "profiles",
        "segments",
        "destinations",
        "errors",
        "settings",
    },
    # The CLI also serves two apps: the simulator (`segsync simulator`, a standalone tool) and
    # the web app (`segsync serve`); it calls no route, only `create_app`.
    "cli": {"services", "settings", "errors", "simulator", "web"},
    "web": {"services", "settings", "errors"},
    "simulator": set(),
    # The destination conformance kit, for the destinations' tests (never imported by segsync).
    "testing": {"destinations", "domain", "errors"},
}


def _layer_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imported_layers(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "segsync" and len(parts) > 1:
                found.add(parts[1])
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if _layer_of(p) not in {"__init__", "__main__"})


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_module_imports_only_what_its_layer_may(path: Path) -> None:
    layer = _layer_of(path)
    assert layer in ALLOWED, (
        f"{layer} is not a layer of docs/design.md; add it to ALLOWED with its rules"
    )
    imported = _imported_layers(ast.parse(path.read_text(), filename=str(path))) - {layer}
    forbidden = imported - ALLOWED[layer]
    assert not forbidden, f"{path.relative_to(SRC)} imports {sorted(forbidden)}"


def test_no_relative_imports_and_no_utils_modules() -> None:
    for path in SRC.rglob("*.py"):
        assert path.stem not in {"utils", "helpers", "misc"}, f"{path}: no grab-bag modules"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}: use absolute imports"


def test_the_checker_sees_a_forbidden_import() -> None:
    tree = ast.parse("from segsync.storage import models\nimport segsync.web.app\n")
    assert _imported_layers(tree) == {"storage", "web"}


MAX_MODULE_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(SRC)): n
        for path in SRC.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules (lines): {long}"


def test_inside_services_modules_import_modules_not_family_packages() -> None:
    families = {p.name for p in (SRC / "services").iterdir() if (p / "__init__.py").exists()}
    for path in (SRC / "services").rglob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "segsync.services":
                named = {alias.name for alias in node.names} & families
                assert not named, f"{path.relative_to(SRC)} imports the family {named}"
            if isinstance(node, ast.ImportFrom) and node.module in {
                f"segsync.services.{family}" for family in families
            }:
                for alias in node.names:
                    module = SRC / "services" / node.module.split(".")[-1] / f"{alias.name}.py"
                    assert module.exists(), (
                        f"{path.relative_to(SRC)} imports {alias.name} from the family "
                        f"{node.module}; import it from its module"
                    )
