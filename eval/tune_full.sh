#!/usr/bin/env bash
# Issue 20's tuning protocol, both methods alike: a 3x3 grid of full-length (10-epoch) runs per method, scored on
# the 10,000 held-out training images. The two searches are interleaved (3 trials of one, 3 of the other, ...) so a
# session that stops early leaves both with the same budget; each `tune` call continues its trial log, so re-running
# this script never repeats a finished trial. eval/record.py run --only full_resnet9s_fixnorm full_resnet9s_wd then
# turns the logs into rows (replaying them, no trial runs twice).
set -euo pipefail
cd "$(dirname "$0")/.."
# FROZEN_CODE: run the trials from a frozen copy of the package (edits to the tree mid-search must not change them)
[ -n "${FROZEN_CODE:-}" ] && export PYTHONPATH="$FROZEN_CODE"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
FZ=".venv/bin/python -P -m fixnorm_zoo.cli"  # -P: the cwd is not put first on sys.path, so PYTHONPATH wins
for n in 3 6 9; do
  $FZ tune fashion_mnist/resnet9s_fixnorm --strategy grid --trials $n --proxy-epochs 10 \
    --grid fc_norm=2,4,8 --grid lr=0.1,0.2,0.4 --output runs/tune/full_resnet9s_fixnorm --no-progress
  $FZ tune fashion_mnist/resnet9s_wd --strategy grid --trials $n --proxy-epochs 10 \
    --grid weight_decay=0.0005,0.001,0.002 --grid lr=0.1,0.2,0.4 --output runs/tune/full_resnet9s_wd --no-progress
done
