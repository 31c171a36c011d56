"""Per-sample comparison of two stored eval runs at one eps: on the test images both runs
evaluated, how many each leaves robust (classified correctly and broken by none of the run's
attacks, checks' probes included) and how many only one of them does.

Run: python scripts/compare_runs.py --db results/zoo.sqlite RUN_A RUN_B [--eps 0.1]
"""

from __future__ import annotations

import argparse
import sqlite3

QUERY = """
with per_sample as (
  select run_id, sample_idx, min(clean_pred = label) and not max(coalesce(success, 0)) as robust
  from samples where run_id in (?, ?) and abs(eps - ?) < 1e-9 group by run_id, sample_idx
), a as (select sample_idx, robust from per_sample where run_id = ?),
   b as (select sample_idx, robust from per_sample where run_id = ?)
select count(*), coalesce(sum(a.robust), 0), coalesce(sum(b.robust), 0),
       coalesce(sum(a.robust and not b.robust), 0), coalesce(sum(b.robust and not a.robust), 0)
from a join b using (sample_idx)
"""


def compare(db: str, run_a: str, run_b: str, eps: float) -> dict[str, int]:
    """Counts over the samples both runs evaluated at `eps` (read-only)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        shared, robust_a, robust_b, only_a, only_b = con.execute(QUERY, (run_a, run_b, eps, run_a, run_b)).fetchone()
    return {"shared": shared, "robust_a": robust_a, "robust_b": robust_b, "only_a": only_a, "only_b": only_b}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--db", default="results/zoo.sqlite")
    parser.add_argument("--eps", type=float, default=0.1)
    args = parser.parse_args()
    c = compare(args.db, args.run_a, args.run_b, args.eps)
    print(f"{c['shared']} samples in both runs at eps {args.eps:g}: {args.run_a} leaves {c['robust_a']} robust, "
          f"{args.run_b} leaves {c['robust_b']}; only {args.run_a}: {c['only_a']}, only {args.run_b}: {c['only_b']}")


if __name__ == "__main__":
    main()
