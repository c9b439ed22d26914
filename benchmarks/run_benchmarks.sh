#!/usr/bin/env bash
# Reproduce the figures of docs/benchmarks.md: speed at 100k / 300k / 1M generated messages, quality
# on the shared UCI SMS data and on a generated corpus, then the plots and tables.
#
#   benchmarks/run_benchmarks.sh            # everything (about 40-50 min on a 2-core machine)
#   SIZES="100000" benchmarks/run_benchmarks.sh
#
# Results go to benchmarks/results/*.json (committed with the docs they back). For a clean memory
# figure, run on a Postgres server of its own: PATAS_HOME=.patas/bench-home gives the embedded one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PATAS=(.venv/bin/python -m patas.cli.main)
OUT=benchmarks/results
mkdir -p "$OUT"
SIZES=${SIZES:-"100000 300000 1000000"}
UCI=${UCI:-../shared/datasets/uci_sms_spam.jsonl}
ENGINE=${ENGINE:-dagster}        # quality: dagster (`patas run`) or staged (the same steps, no Dagster)
TIMEOUT=${TIMEOUT:-120}          # speed: cancel a stage-2/drafting statement after this many seconds

for n in $SIZES; do
  "${PATAS[@]}" bench speed --rows "$n" --seed 42 --statement-timeout "$TIMEOUT" --out "$OUT/speed_${n}.json"
done
# Stage 1 alone (models only): the generated corpus, and the same with every text made unique.
.venv/bin/python benchmarks/bench_stage1.py --rows 100000 1000000 --out "$OUT/stage1_gated.json"
.venv/bin/python benchmarks/bench_stage1.py --rows 1000000 --unique-texts --out "$OUT/stage1_gated_unique_texts.json"
if [[ -f "$UCI" ]]; then
  "${PATAS[@]}" bench quality --engine "$ENGINE" --data "$UCI" --split hash --out "$OUT/quality_uci_${ENGINE}.json"
else
  echo "skipping the UCI quality benchmark: $UCI is absent" >&2
fi
speed_args=()
for n in $SIZES; do speed_args+=(--speed "$OUT/speed_${n}.json"); done
quality_args=()
[[ -f "$OUT/quality_uci_${ENGINE}.json" ]] && quality_args=(--quality "$OUT/quality_uci_${ENGINE}.json")
"${PATAS[@]}" bench plots "${speed_args[@]}" "${quality_args[@]}" --out-dir docs
