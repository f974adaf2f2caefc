"""Every citation resolves inside the repository: requirement IDs and documents.

Code, tests and docs cite behaviours by ID — ``(X7)``, ``(C1–C8, R5, R6)``, ``# R2``, ``the S4
lifecycle`` — and documents by path (``docs/design.md``) or name (``autopilot-client.md``). A
reader must find each of them here: every ID is defined in docs/requirements.md, every document
is a file the repository ships, and nothing points at papers outside the repository.

Where IDs are looked for (so that test data and timestamps are not mistaken for them):

* **Prose** — Python comments and docstrings (any string that stands alone as a statement),
  Markdown outside code blocks and code spans, and the whole text of templates, scripts and
  stylesheets. There a word shaped like a letter and a number without a leading zero (``X7``,
  ``C1–C8``) is a citation when its letter is one of the groups of docs/requirements.md.
* **Other strings in Python code** (messages, test data) — only a parenthesised list made of
  nothing but IDs (``"(X13)"``, ``"(E1, R3)"``) counts, whatever its letter.

Not citations: ``T00:00``, ``C01`` (leading zero), ``P1@x.org`` (part of an address), ``#C1C1C1``
(part of a word), and in prose an ID-shaped word that the Python code of the same directory uses
as a bare string value (``"C12"`` as a customer id in tests/segments) — test data named in its
comments. A range ``C1–C8`` is expanded and every member must be defined.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What is scanned, relative to the repository root.
SCANNED = ("src", "tests", "docs", "bench", "scripts", "README.md")
TEXT_SUFFIXES = frozenset({".py", ".md", ".html", ".js", ".css", ".mako"})
#: This file names forbidden papers and plants undefined IDs on purpose.
SELF = Path(__file__).resolve()

#: Documents other engineers are writing at the same time as these docs link to them.
#: The lead removes each entry once its file is merged; then a dead link fails again.
_ID = r"([A-Z])([1-9]\d?)(?:\s?[–-]\s?\1?([1-9]\d?))?"
#: An ID or a range in prose: not glued to a word, an address, a path, a time or a colour.
LOOSE_ID = re.compile(r"(?<![\w@./:#-])" + _ID + r"(?![\w@]|[:.]\w|[–-]\w)")
#: A parenthesised list of nothing but IDs and ranges: "(X13)", "(C1–C8, R5, R6)".
STRONG_LIST = re.compile(
    r"\(\s*[A-Z][1-9]\d?(?:\s?[–-]\s?[A-Z]?[1-9]\d?)?"
    r"(?:\s*[,;]\s*[A-Z][1-9]\d?(?:\s?[–-]\s?[A-Z]?[1-9]\d?)?)*\s*\)"
)
STRONG_ID = re.compile(r"([A-Z])([1-9]\d?)(?:\s?[–-]\s?\1?([1-9]\d?))?")
DATA_NAME = re.compile(r"[A-Z][1-9]\d?")

DEFINITION = re.compile(r"^- \*\*([A-Z])([1-9]\d?)\*\*", re.MULTILINE)
DOCUMENT = re.compile(r"[\w./-]*[\w-]\.md(?![\w-])")
#: The project's starting papers live outside the repository; nothing may point at them.
FORBIDDEN = re.compile(r"\.\./shared\b|/work/shared\b|\b(?:SPEC|DESIGN|STYLE)\.md\b|\bSPEC\b")


@dataclass(frozen=True)
class Finding:
    """One citation that does not resolve: where, and what."""

    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


# ---------------------------------------------------------------- where the text is


def _files(root: Path) -> Iterator[Path]:
    for name in SCANNED:
        base = root / name
        paths = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in paths:
            if (
                path.is_file()
                and path.suffix in TEXT_SUFFIXES
                and "__pycache__" not in path.parts
                and path.resolve() != SELF
            ):
                yield path


@dataclass(frozen=True)
class Fragment:
    """A piece of a file's text: prose (comments, docstrings, Markdown) or a code string."""

    line: int
    text: str
    prose: bool


def _python_fragments(text: str) -> Iterator[Fragment]:
    tree = ast.parse(text)
    standalone: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            standalone.add(id(node.value))
            yield Fragment(node.lineno, node.value.value, prose=True)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in standalone
        ):
            yield Fragment(node.lineno, node.value, prose=False)
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            yield Fragment(token.start[0], token.string, prose=True)


_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)


def _markdown_fragments(text: str) -> Iterator[Fragment]:
    def blank(match: re.Match[str]) -> str:  # keep the line numbers
        return re.sub(r"[^\n]", " ", match.group(0))

    prose = _CODE_SPAN.sub(blank, _FENCE.sub(blank, text))
    for number, line in enumerate(prose.splitlines(), start=1):
        yield Fragment(number, line, prose=True)


def _fragments(path: Path, text: str) -> Iterator[Fragment]:
    if path.suffix == ".py":
        yield from _python_fragments(text)
    elif path.suffix == ".md":
        yield from _markdown_fragments(text)
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            yield Fragment(number, line, prose=True)


def _data_names(root: Path) -> dict[Path, set[str]]:
    """Per directory: ID-shaped words its Python code uses as bare string values (test data)."""
    names: dict[Path, set[str]] = {}
    for path in _files(root):
        if path.suffix == ".py":
            found = names.setdefault(path.parent, set())
            for fragment in _python_fragments(path.read_text()):
                if not fragment.prose and DATA_NAME.fullmatch(fragment.text):
                    found.add(fragment.text)
    return names


# ---------------------------------------------------------------- what is cited


def _expand(letter: str, first: str, last: str | None) -> list[str]:
    low, high = int(first), int(last) if last else int(first)
    if high < low:  # "X9–X3" cites both ends, and they are what must exist
        return [f"{letter}{low}", f"{letter}{high}"]
    return [f"{letter}{n}" for n in range(low, high + 1)]


def cited_ids(fragment: Fragment, groups: set[str]) -> list[tuple[str, bool]]:
    """The IDs a fragment cites, each with whether it stood in a parenthesised ID list."""
    found: list[tuple[str, bool]] = []
    strong_spans: list[tuple[int, int]] = []
    for listed in STRONG_LIST.finditer(fragment.text):
        strong_spans.append(listed.span())
        for match in STRONG_ID.finditer(listed.group(0)):
            found.extend((i, True) for i in _expand(*match.groups()))
    if fragment.prose:
        for match in LOOSE_ID.finditer(fragment.text):
            inside = any(start <= match.start() < end for start, end in strong_spans)
            if not inside and match.group(1) in groups:
                found.extend((i, False) for i in _expand(*match.groups()))
    return found


def defined_ids(root: Path) -> set[str]:
    """The IDs docs/requirements.md defines: its lines ``- **X7** ...``."""
    text = (root / "docs" / "requirements.md").read_text()
    return {letter + number for letter, number in DEFINITION.findall(text)}


def undefined_ids(root: Path) -> list[Finding]:
    defined = defined_ids(root)
    groups = {i[0] for i in defined}
    data = _data_names(root)
    findings: list[Finding] = []
    for path in _files(root):
        rel = str(path.relative_to(root))
        for fragment in _fragments(path, path.read_text()):
            for cited, listed in cited_ids(fragment, groups):
                if cited in defined:
                    continue
                if not listed and cited in data.get(path.parent, set()):
                    continue  # a test-data name in the comments of the code that uses it
                findings.append(Finding(rel, fragment.line, f"{cited} is not defined"))
    return findings


def _is_url(text: str, match: re.Match[str]) -> bool:
    """Whether the match is part of a web address (a page elsewhere, not ours to ship)."""
    word_start = max(text.rfind(c, 0, match.start()) for c in " \t\n(<[\"'") + 1
    return "://" in text[word_start : match.end()]


def _resolve(root: Path, path: Path, cited: str) -> Path | None:
    """The cited document (relative to the citing file, the root, or docs/ for a bare name),
    or None when the repository does not ship it."""
    candidates = [path.parent / cited, root / cited]
    if "/" not in cited:
        candidates.append(root / "docs" / cited)
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_relative_to(root.resolve()) and resolved.is_file():
            return resolved
    return None


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def missing_documents(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in _files(root):
        text = path.read_text()
        rel = str(path.relative_to(root))
        for match in DOCUMENT.finditer(text):
            if _is_url(text, match):
                continue
            found = _resolve(root, path, match.group(0))
            if found is None:
                findings.append(
                    Finding(
                        rel,
                        _line(text, match.start()),
                        f"{match.group(0)} is not in the repository",
                    )
                )
    return findings


#: A section cited by its title (`docs/design.md "Secrets"`) or by a Markdown anchor (`#runs`).
SECTION_BY_TITLE = re.compile(r'([\w./-]*[\w-]\.md),?\s+"([^"]+)"')
SECTION_BY_ANCHOR = re.compile(r"([\w./-]*[\w-]\.md)#([\w-]+)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


def _slug(title: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", title.replace("`", "").lower()).replace(" ", "-")


def missing_sections(root: Path) -> list[Finding]:
    """Sections cited in a shipped document that has no such heading."""
    findings: list[Finding] = []
    for path in _files(root):
        text = path.read_text()
        rel = str(path.relative_to(root))
        cited = [(m, " ".join(m.group(2).split()), False) for m in SECTION_BY_TITLE.finditer(text)]
        cited += [(m, m.group(2), True) for m in SECTION_BY_ANCHOR.finditer(text)]
        for match, section, is_anchor in cited:
            if _is_url(text, match):
                continue
            document = _resolve(root, path, match.group(1))
            if document is None:
                continue  # a missing document is missing_documents' finding
            titles = [t.replace("`", "") for t in _HEADING.findall(document.read_text())]
            known = {_slug(t) for t in titles} if is_anchor else {t.lower() for t in titles}
            if section.lower() not in known:
                findings.append(
                    Finding(rel, _line(text, match.start()), f"{match.group(0)}: no such section")
                )
    return findings


def outside_papers(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in _files(root):
        text = path.read_text()
        for match in FORBIDDEN.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            findings.append(
                Finding(str(path.relative_to(root)), line, f"points outside: {match.group(0)}")
            )
    return findings


# ---------------------------------------------------------------- the repository


@pytest.mark.parametrize(
    ("check", "advice"),
    [
        (undefined_ids, "define these in docs/requirements.md or fix the ID"),
        (missing_documents, "cite a document the repository ships"),
        (missing_sections, "cite a heading the document has"),
        (outside_papers, "say it in docs/ instead of pointing outside the repository"),
    ],
    ids=[
        "every cited requirement is defined",
        "every cited document is shipped",
        "every cited section exists",
        "nothing points outside the repository",
    ],
)
def test_the_repository(check: Callable[[Path], list[Finding]], advice: str) -> None:
    findings = check(ROOT)
    assert not findings, f"{advice}:\n" + "\n".join(str(f) for f in findings)


def test_each_requirement_group_is_numbered_from_one_without_gaps() -> None:
    by_group: dict[str, list[int]] = {}
    for cited in defined_ids(ROOT):
        by_group.setdefault(cited[0], []).append(int(cited[1:]))
    assert set(by_group) >= set("RCEXSTPI")
    for letter, numbers in by_group.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), letter


# ---------------------------------------------------------------- the checker itself


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A tiny repository: requirements X1–X3 and R1, and files that cite well and badly."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "docs" / "requirements.md").write_text(
        "## X — Runs\n- **X1** one\n- **X2** two\n- **X3** three\n## R\n- **R1** roles\n"
    )
    (tmp_path / "README.md").write_text("See [the runs](docs/requirements.md).\n")
    return tmp_path


def _ids(findings: list[Finding]) -> list[str]:
    return sorted(f.what.split()[0] for f in findings)


def test_checker_accepts_what_is_defined_and_ignores_what_is_not_a_citation(
    planted: Path,
) -> None:
    (planted / "src" / "good.py").write_text(
        '"""Runs (X1–X3, R1): see X2 and the X3 rules; # R1."""\n'
        "\n"
        "AT = '2024-06-01T06:00:00Z'  # T06:00, C01 and O13 are data, as is #C1C1C1\n"
        "WHO = 'P1@example.org'\n"
        "CUSTOMERS = ['C12', 'E1', 'A1']\n"
        "MESSAGE = 'never re-subscribes (X2)'\n"
        "# C12's order is after NOW; E1 runs on Sim; A1 waits; 3f9a; 0xC8\n"
    )
    (planted / "docs" / "x.md").write_text(
        "Cites (X1) and R1.\n\n```\nC9 Z9 in a code block\n```\n\nand `E5` in a code span.\n"
    )
    assert undefined_ids(planted) == []


def test_checker_catches_a_planted_undefined_id(planted: Path) -> None:
    source = [
        '"""Crash-safe runs (X7)."""',  # a docstring
        "MESSAGE = 'refused (Z9)'  # see X2–X5",  # a message, a range in a comment
        "NAMES = ['X8', 'X9']  # X8 is test data here, but (X9) is a citation",
    ]
    (planted / "src" / "bad.py").write_text("\n".join(source) + "\n")
    (planted / "docs" / "bad.md").write_text("Runs follow R2 and C1–C2.\n")
    findings = undefined_ids(planted)
    # Z9: any letter counts in a parenthesised list; C1, C2: C is not a group here, so in
    # plain prose "C1–C2" is not read as a citation.
    assert _ids(findings) == ["R2", "X4", "X5", "X7", "X9", "Z9"]
    assert "src/bad.py:1: X7 is not defined" in [str(f) for f in findings]


def test_checker_catches_a_planted_missing_document(planted: Path) -> None:
    (planted / "docs" / "page.md").write_text(
        "See [segments](segments.md), docs/requirements.md and [a page](https://x.org/y/README.md).\n"
    )
    (planted / "src" / "mod.py").write_text('"""As docs/nowhere.md says."""\n')
    found = sorted(str(f) for f in missing_documents(planted))
    assert found == [
        "docs/page.md:1: segments.md is not in the repository",
        "src/mod.py:1: docs/nowhere.md is not in the repository",
    ]


def test_checker_catches_pointers_at_outside_papers(planted: Path) -> None:
    paper = "SPEC" + ".md"
    (planted / "src" / "old.py").write_text(
        f'"""See {paper}, DESIGN.md and STYLE.md."""\n# ../shared/autopilot-api.md; SPEC X7\n'
    )
    (planted / "docs" / "fine.md").write_text("docs/design.md and docs/autopilot-api.md\n")
    found = [f.what for f in outside_papers(planted)]
    assert found == [
        f"points outside: {paper}",
        "points outside: DESIGN.md",
        "points outside: STYLE.md",
        "points outside: ../shared",
        "points outside: SPEC",
    ]


def test_checker_catches_a_planted_missing_section(planted: Path) -> None:
    (planted / "docs" / "design.md").write_text("# Design\n\n## Layers and `import` rules\n")
    (planted / "src" / "mod.py").write_text(
        '"""See docs/design.md "Layers and import rules" and docs/design.md "Secrets"."""\n'
    )
    (planted / "docs" / "page.md").write_text(
        "[ok](design.md#layers-and-import-rules), [dead](design.md#the-tree)\n"
    )
    found = sorted(str(f) for f in missing_sections(planted))
    assert found == [
        "docs/page.md:1: design.md#the-tree: no such section",
        'src/mod.py:1: docs/design.md "Secrets": no such section',
    ]
