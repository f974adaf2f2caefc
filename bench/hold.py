"""What the blast-radius hold costs a run: judging the plan (lists' sizes, samples) and its
fingerprint, beside building the plan itself, for 100,000 contacts on two lists.

Three cases, each the median of --repeat rounds (default 5):

* a rerun where 1% changed (the common run: within the thresholds, nothing saved);
* a plan that would remove 60% of a list (held: verdict and fingerprint computed);
* an undo's plan built from 100,000 change rows (domain/undo.py).

Figures are CPU-bound and in this process (no database, no HTTP): the plan's own cost (making
its input and diffing it with the sync state) is the reference, and each figure is printed
beside it as a ratio.

    python bench/hold.py [--repeat 5] [--contacts 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from segsync.domain.hold import HoldRule, judge, plan_fingerprint
from segsync.domain.plan import Desired, RemovalPolicy, SyncPlan, build_plan
from segsync.domain.sync_state import SyncStateView
from segsync.domain.undo import Change, build_undo_plan


def timed(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    n = args.contacts
    emails = [f"p{i:07d}@example.com" for i in range(n)]
    segments_of = {e: frozenset({"1", "2"} if i % 3 == 0 else {"1"}) for i, e in enumerate(emails)}
    state = SyncStateView(
        hashes=dict.fromkeys(emails, "h"),
        memberships={(s, e) for e in emails for s in segments_of[e]},
        list_ids={"1": "L1", "2": "L2"},
    )

    def plan(keep: float, changed: float) -> SyncPlan:
        cut, touched = int(n * keep), int(n * changed)
        wanted = [
            Desired(e, "h2" if i < touched else "h", {}, {}, segments_of[e])
            for i, e in enumerate(emails[:cut])
        ]
        return build_plan(wanted, state, segments=["1", "2"], removal=RemovalPolicy.MIRROR)

    rule = HoldRule()
    load = os.getloadavg()[0]
    print(f"hold bench: {n:,} contacts on 2 lists, median of {args.repeat}, load {load:.1f}")
    for label, keep, changed in (("1% changed", 1.0, 0.01), ("60% leave", 0.4, 0.0)):
        built = plan(keep, changed)
        base = timed(lambda k=keep, c=changed: plan(k, c), args.repeat)
        verdict = judge(built, state, rule)
        judging = timed(lambda p=built: judge(p, state, rule), args.repeat)
        printing = timed(lambda p=built: plan_fingerprint(p), args.repeat)
        print(
            f"  {label:<11} plan {base * 1000:7.1f} ms | judge {judging * 1000:6.1f} ms "
            f"({judging / base:.2f}x the plan) | fingerprint {printing * 1000:6.1f} ms "
            f"({printing / base:.2f}x) | held: {verdict.held}"
        )
    changes = [Change("added", e, "1", {"fields": {}}, None) for e in emails]
    undo = timed(
        lambda: build_undo_plan(changes, state, segments=["1", "2"], current={}), args.repeat
    )
    base = timed(lambda: plan(1.0, 0.01), args.repeat)
    print(
        f"  undo plan of {n:,} change rows: {undo * 1000:.1f} ms ({undo / base:.2f}x a run's plan)"
    )


if __name__ == "__main__":
    main()
