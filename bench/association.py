"""Association benchmark: promptrack's associator vs the Grounded-SAM-2 continuous-id rule.

Runs both methods on simulated scenes (``bench/assocsim``: ground truth that moves, crosses,
occludes, leaves and re-enters; a noisy detector; a SAM 2-like mask tracker that drifts, loses
and re-finds objects) and scores them with HOTA, IDF1, ID switches and fragmentations.

    python bench/association.py                 # table
    python bench/association.py --json          # {"<scenario>": {"promptrack": {...}, "gsam2_rule": {...}}}
    python bench/association.py --scenarios crossing reentry --seeds 0 --controls

Example:
    >>> res = compare("control_easy")
    >>> sorted(res)
    ['gsam2_rule', 'promptrack', 'promptrack_no_appearance']
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from assocsim.runners import run_gsam2_rule, run_promptrack, score  # noqa: E402
from assocsim.scenarios import build, names  # noqa: E402

KEYS = ("idf1", "hota", "id_switches", "fragmentations", "mota", "deta", "assa")


def _row(case, out) -> dict:
    m = score(case, out)
    row = {k: (round(float(m[k]), 4) if isinstance(m[k], float) else int(m[k])) for k in KEYS}
    row["detector_calls"] = out.detector_calls
    return row


def compare(name: str, seed: int = 0) -> dict[str, dict]:
    """Scores of promptrack (with and without appearance) and of the GSAM2 rule on one scenario."""
    case = build(name, seed)
    return {
        "promptrack": _row(case, run_promptrack(case, seed, appearance=True)),
        "promptrack_no_appearance": _row(case, run_promptrack(case, seed, appearance=False)),
        "gsam2_rule": _row(case, run_gsam2_rule(case, seed)),
    }


def meets_target(res: dict) -> bool:
    """IDF1 at least 15 points above the rule and at most half its ID switches."""
    ours, rule = res["promptrack"], res["gsam2_rule"]
    return ours["idf1"] >= rule["idf1"] + 0.15 and ours["id_switches"] <= rule["id_switches"] / 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--scenarios", nargs="*", help="names (default: all scripted + random)")
    ap.add_argument("--seeds", type=int, default=5, help="random scenes random_0 .. random_<n-1>")
    ap.add_argument("--seed", type=int, default=0, help="noise seed of the scripted scenarios")
    ap.add_argument("--controls", action="store_true", help="add control scenes (not in the target)")
    args = ap.parse_args(argv)
    todo = args.scenarios or names(args.seeds, args.controls)
    start = time.perf_counter()
    results = {n: compare(n, args.seed) for n in todo}
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"{'scenario':16} {'method':26} {'IDF1':>6} {'HOTA':>6} {'IDSW':>5} {'Frag':>5} {'MOTA':>6} {'det':>4}")
    for n, res in results.items():
        for method, m in res.items():
            print(f"{n:16} {method:26} {m['idf1']:6.3f} {m['hota']:6.3f} {m['id_switches']:5d} "
                  f"{m['fragmentations']:5d} {m['mota']:6.3f} {m['detector_calls']:4d}")
        print(f"{'':16} {'target met' if meets_target(res) else 'TARGET MISSED'}")
    print(f"{len(todo)} scenarios in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
