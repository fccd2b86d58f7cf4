#!/usr/bin/env bash
# Every step-cost and compile measurement of docs/BENCHMARKS.md "rfsweep 0.2 on a second host", in one go, on an idle
# machine (run from the repository root; results land in docs/results/bench_0.2_session2/).
set -euo pipefail  # a failed step stops here rather than leaving an empty JSON file behind
cd "$(dirname "$0")/.."
OUT=docs/results/bench_0.2_session2
D=/usr/share/datasets/fashion-mnist
mkdir -p "$OUT"
log() { echo "$(date -u +%H:%M:%S) $*" >> "$OUT/timeline.txt"; }
log start; uptime >> $OUT/timeline.txt
for t in 1 2; do
  for r in a b; do
    log "training_step_cost threads $t run $r"
    .venv/bin/python benchmarks/training_step_cost.py --data-dir $D --threads $t --json > $OUT/training_step_cost_threads${t}_$r.json
  done
  for rule in rf_two_phase rf_parallel; do
    log "rf_extra_parts $rule threads $t"
    .venv/bin/python benchmarks/rf_extra_parts.py --rule $rule --threads $t --json >> $OUT/rf_extra_parts_threads$t.jsonl
  done
done
for t in 1 2; do
  log "bench threads $t"
  .venv/bin/rfsweep bench --json --threads $t --skip-scaling --data-dir $D > $OUT/bench_threads$t.json 2> $OUT/bench_threads$t.log
done
for t in 1 2; do
  log "compiled_step threads $t"
  .venv/bin/python benchmarks/compiled_step.py --threads $t --json > $OUT/compiled_step_threads$t.json 2> $OUT/compiled_step_threads$t.log
done
log end; uptime >> $OUT/timeline.txt
