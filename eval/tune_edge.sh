#!/usr/bin/env bash
# Issue 20 / 23: both full-run grids extended past the edge their winners sat on (FixNorm's fc_norm 2 / lr 0.1 at
# the smallest fc_norm and lr; weight decay's 5e-4 / 0.4 at the smallest decay and largest lr). Each search continues
# its 3x3 log (eval/tuner/full_resnet9s_*_trials.jsonl, replayed: no finished trial runs again; `--set` restores the
# start point the log was written from), one new trial of each method in turn, 3 new trials per method:
#   FixNorm  fc_norm {1, 2} x lr {0.05, 0.1}         (new: 1/0.05, 1/0.1, 2/0.05)
#   wd       weight_decay {2.5e-4, 5e-4} x lr {0.4, 0.8}   (new: 2.5e-4/0.4, 2.5e-4/0.8, 5e-4/0.8)
# Equal budgets: 12 full runs (120 epochs) per method. Then eval/record.py run --only full_resnet9s_fixnorm
# full_resnet9s_wd turns the logs into rows.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${FROZEN_CODE:-}" ] && export PYTHONPATH="$FROZEN_CODE"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
FZ=".venv/bin/python -P -m fixnorm_zoo.cli"
for method in fixnorm wd; do
  out=runs/tune/full_resnet9s_$method
  if [ ! -f $out/trials.jsonl ]; then mkdir -p $out && cp eval/tuner/full_resnet9s_${method}_trials.jsonl $out/trials.jsonl; fi
done
for n in 1 2 3 4; do
  $FZ tune fashion_mnist/resnet9s_fixnorm --set fc_norm=1 --set lr=0.2 --strategy grid --trials $n --full-runs \
    --grid fc_norm=1,2 --grid lr=0.05,0.1 --output runs/tune/full_resnet9s_fixnorm --no-progress
  $FZ tune fashion_mnist/resnet9s_wd --set weight_decay=0.008 --set lr=0.2 --strategy grid --trials $n --full-runs \
    --grid weight_decay=0.00025,0.0005 --grid lr=0.4,0.8 --output runs/tune/full_resnet9s_wd --no-progress
done
