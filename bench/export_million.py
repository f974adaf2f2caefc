"""The run engine's memory at 1,000,000 profiles (issue 11's target 3: peak RSS ≤ 300 MB).

``bench/export.py --profiles 1000000 --scenarios full,rerun``: the first run of an export of
1,000,000 sample profiles in two segments at 1,000 r/s, then a rerun with nothing changed, each
its own ``segsync exports run`` process; prints each run's peak RSS against 300 MB beside its
engine time and requests (its times are set beside the 100k targets scaled by ten, as a
reference: the issue sets only the memory target at that size). About two minutes
here on a quiet machine, under four on a slow one.

    python bench/export_million.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import export  # the bench beside this one

if __name__ == "__main__":
    export.main(["--profiles", "1000000", "--scenarios", "full,rerun"])
