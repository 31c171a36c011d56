#!/usr/bin/env bash
# `make demo`: compare an undefended CNN, the same CNN with KAP and an adversarially trained CNN on Fashion-MNIST
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
"$ADVBENCH" report kap-cnn3 --db "$DB" --out "$OUT/kap-cnn3.html" --examples 4
echo
"$ADVBENCH" leaderboard --db "$DB"
echo
echo "HTML report of kap-cnn3:       $OUT/kap-cnn3.html"
echo "accuracy vs eps (all models):  $OUT/curve.png (data: $OUT/curve.csv)"
echo "every per-sample result:       $DB (advbench runs --db $DB; advbench show RUN_ID --db $DB)"
