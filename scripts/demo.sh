#!/usr/bin/env bash
# `make demo`: compare an undefended, a KAP and an adversarially trained model on Fashion-MNIST
# (docs/suites/demo.yaml), then show the leaderboards and where the report and the curve are.
# Every run goes into a fresh database, so the demo always shows its own runs.
set -euo pipefail
ADVBENCH=${1:-advbench}
OUT=results/demo
DB=$OUT/demo.sqlite
rm -rf "$OUT"
mkdir -p "$OUT"
"$ADVBENCH" run docs/suites/demo.yaml --db "$DB"
RUNS=()
for run in $("$ADVBENCH" runs --db "$DB" --format names); do RUNS+=(--run "$run"); done
"$ADVBENCH" curve "${RUNS[@]}" --db "$DB" --out "$OUT/curve" >/dev/null
"$ADVBENCH" report kap-rn18 --db "$DB" --out "$OUT/kap-rn18.html" --examples 4
echo
"$ADVBENCH" leaderboard --db "$DB"
echo
echo "HTML report of kap-rn18:       $OUT/kap-rn18.html"
echo "accuracy vs eps (all models):  $OUT/curve.png (data: $OUT/curve.csv)"
echo "every per-sample result:       $DB (advbench runs --db $DB; advbench show RUN_ID --db $DB)"
