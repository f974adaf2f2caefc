"""Refresh the screenshots of docs/web.md: run the browser tests (they save every screenshot
under test-artifacts/screenshots/) and copy the main ones into docs/screenshots/.

    python scripts/screenshots.py        # or: make screenshots

Needs Debian's chromium at /usr/bin/chromium (`make browser` installs it when run as root).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.harness import CHROMIUM, copy_screenshots  # noqa: E402

DOCS = ROOT / "docs" / "screenshots"
MAIN = [
    "connection-add",
    "connections",
    "export-add",
    "export-details",
    "run-progress",
    "run-done",
    "exports",
    "exports-contributor",
    "segments",
    "admin-system",
]


def main() -> int:
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: run `make browser` as root first", file=sys.stderr)
        return 2
    env = {**os.environ, "SEGSYNC_TEST_REQUIRE_ALL": "1"}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/browser"], cwd=ROOT, env=env, check=False
    )
    if tests.returncode != 0:
        print("the browser tests failed; docs/screenshots left as they were", file=sys.stderr)
        return tests.returncode
    copied = copy_screenshots(MAIN, DOCS)
    for path in copied:
        print(f"updated {path.relative_to(ROOT)}")
    missing = sorted(set(MAIN) - {p.stem for p in copied})
    if missing:
        print(f"no screenshot saved for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
