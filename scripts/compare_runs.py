"""Per-sample comparison of two stored eval runs at one eps: on the test images both runs
evaluated, how many each leaves robust (classified correctly and broken by none of the run's
attacks, checks' probes included), how many only one of them does, and how many both do (the
worst case over the two runs' attacks).

Run: python scripts/compare_runs.py --db results/zoo.sqlite RUN_A RUN_B [--eps 0.1] [--db-b OTHER.sqlite]
(--db-b: RUN_B is in another store)
"""

from __future__ import annotations

import argparse
import sqlite3

QUERY = """
with rows as (
  select 'a' as side, sample_idx, eps, label, clean_pred, success from main.samples where run_id = ?
  union all
  select 'b' as side, sample_idx, eps, label, clean_pred, success from other.samples where run_id = ?
), per_sample as (
  select side, sample_idx, min(clean_pred = label) and not max(coalesce(success, 0)) as robust
  from rows where abs(eps - ?) < 1e-9 group by side, sample_idx
), a as (select sample_idx, robust from per_sample where side = 'a'),
   b as (select sample_idx, robust from per_sample where side = 'b')
select count(*), coalesce(sum(a.robust), 0), coalesce(sum(b.robust), 0),
       coalesce(sum(a.robust and not b.robust), 0), coalesce(sum(b.robust and not a.robust), 0)
from a join b using (sample_idx)
"""


def compare(db: str, run_a: str, run_b: str, eps: float, db_b: str | None = None) -> dict[str, int]:
    """Counts over the samples both runs evaluated at `eps` (read-only); run_b is read from `db_b` when given."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        con.execute("attach database ? as other", (f"file:{db_b or db}?mode=ro",))
        shared, robust_a, robust_b, only_a, only_b = con.execute(QUERY, (run_a, run_b, eps)).fetchone()
    return {"shared": shared, "robust_a": robust_a, "robust_b": robust_b, "only_a": only_a, "only_b": only_b, "both": robust_a - only_a}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--db", default="results/zoo.sqlite")
    parser.add_argument("--db-b", default=None, help="the store RUN_B is in (default: --db)")
    parser.add_argument("--eps", type=float, default=0.1)
    args = parser.parse_args()
    c = compare(args.db, args.run_a, args.run_b, args.eps, args.db_b)
    print(f"{c['shared']} samples in both runs at eps {args.eps:g}: {args.run_a} leaves {c['robust_a']} robust, "
          f"{args.run_b} leaves {c['robust_b']}; only {args.run_a}: {c['only_a']}, only {args.run_b}: {c['only_b']}; both: {c['both']}")


if __name__ == "__main__":
    main()
