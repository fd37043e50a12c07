#!/usr/bin/env bash
# Tune one Fashion-MNIST recipe's two knobs (FixNorm: fc_norm, lr; weight-decay twin: weight_decay, lr) with the
# same budget and proxy for every recipe (issue 6), and keep the trial log, table, plot and best.yaml in eval/tuner/.
# Resumable: re-running continues the trial log in runs/tune/RECIPE without repeating a finished trial, and a
# finished search (its best.yaml in eval/tuner/) is skipped: the recipe then holds its result, so the same command
# would start a different search.
#   eval/fmnist_tune.sh RECIPE [TRIALS [PROXY_EPOCHS [PROXY_SUBSET]]]   e.g. eval/fmnist_tune.sh mobilenetv2_050_fixnorm 6
# (defaults: 1 proxy epoch on 20k images; PROXY_SUBSET 0 means all 50k non-held-out training images)
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=$1; trials=${2:-8}; epochs=${3:-1}; subset=${4:-20000}
subset_args=(); [ "$subset" != 0 ] && subset_args=(--proxy-subset "$subset")
out=runs/tune/$recipe
if [ -f "eval/tuner/${recipe}_best.yaml" ]; then echo "tuned already: eval/tuner/${recipe}_best.yaml"; exit 0; fi
.venv/bin/fixnorm-zoo tune "fashion_mnist/$recipe" --trials "$trials" --proxy-epochs "$epochs" "${subset_args[@]}" \
  --output "$out" --no-progress
for f in trials.jsonl trials.csv trials.png best.yaml; do cp "$out/$f" "eval/tuner/${recipe}_$f"; done
