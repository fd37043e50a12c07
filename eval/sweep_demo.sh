#!/usr/bin/env bash
# The hand sweep that chose the demo recipe's FixNorm knobs (lr, fc_norm), on a proxy: the demo recipe
# (2 epochs) on the first 20,000 training images, scored on the full 10,000-image test set.
# Writes eval/fmnist_demo_sweep.csv. About 90 s a run on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=eval/fmnist_demo_sweep.csv
echo "method,lr,fc_norm,weight_decay,train_subset,epochs,top1,top5,train_time_s" > "$out"
row() { .venv/bin/python -c "import json,sys; s=json.load(open(sys.argv[1]+'/summary.json')); print(','.join(sys.argv[2:]) + f\",{s['top1']},{s['top5']},{s['train_time_s']}\")" "$@"; }
for cfg in "0.05 4" "0.05 8" "0.1 4" "0.1 8" "0.2 16" "0.4 8" "0.4 16" "1.0 16"; do
  set -- $cfg
  dir=runs/sweep_demo/lr$1_fc$2; rm -rf "$dir"
  .venv/bin/fixnorm-zoo train fashion_mnist/demo_fixnorm --set lr=$1 --set fc_norm=$2 --set train_subset=20000 --output "$dir" --no-progress
  row "$dir" fixnorm "$1" "$2" 0 20000 2 >> "$out"
done
dir=runs/sweep_demo/wd; rm -rf "$dir"
.venv/bin/fixnorm-zoo train fashion_mnist/demo_wd --set train_subset=20000 --output "$dir" --no-progress
row "$dir" wd 0.1 "" 5e-4 20000 2 >> "$out"
