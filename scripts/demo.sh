#!/usr/bin/env bash
# `make demo`: compare an undefended CNN, the same CNN with KAP and an adversarially trained CNN on Fashion-MNIST
# (docs/suites/demo.yaml), then show the leaderboards and where the report and the curve are.
# Every run goes into a fresh database, so the demo always shows its own runs. Its figures are written
# to results/demo/demo-results.md by scripts/demo_results.py; with DEMO_PUBLISH=1 the database is also
# stored as docs/runs/demo.sqlite.gz and the figures written into docs/demo-results.md and README.md
# (tests/test_demo_results.py checks those against that database).
set -euo pipefail
ADVBENCH=${1:-advbench}
PYTHON=$(dirname "$ADVBENCH")/python
[ -x "$PYTHON" ] || PYTHON=python3
OUT=results/demo
DB=$OUT/demo.sqlite
rm -rf "$OUT"
mkdir -p "$OUT"
"$ADVBENCH" run docs/suites/demo.yaml --db "$DB"
RUNS=()
for run in $("$ADVBENCH" runs --db "$DB" --format names); do RUNS+=(--run "$run"); done
"$ADVBENCH" curve "${RUNS[@]}" --db "$DB" --out "$OUT/curve" >/dev/null
"$ADVBENCH" report kap-cnn3 --db "$DB" --out "$OUT/kap-cnn3.html" --examples 4
"$PYTHON" scripts/demo_results.py --db "$DB" --out "$OUT/demo-results.md" >/dev/null
if [ "${DEMO_PUBLISH:-0}" = 1 ]; then
  gzip -9 -n -c "$DB" > docs/runs/demo.sqlite.gz
  "$PYTHON" scripts/demo_results.py --db "$DB" --out docs/demo-results.md --readme README.md
fi
echo
"$ADVBENCH" leaderboard --db "$DB"
echo
echo "HTML report of kap-cnn3:       $OUT/kap-cnn3.html"
echo "accuracy vs eps (all models):  $OUT/curve.png (data: $OUT/curve.csv)"
echo "the figures, as a page:        $OUT/demo-results.md"
echo "every per-sample result:       $DB (advbench runs --db $DB; advbench show RUN_ID --db $DB)"
