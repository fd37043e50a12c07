#!/usr/bin/env bash
# The dense reference grid for bench/tuner.py: every (fc_norm, lr) point of a 6x6 log lattice for the FixNorm
# ResNet recipe, each a proxy run (1 epoch on the first 20,000 training images, scored on the last 10,000 training
# images held out; never the test set). Then the weight-decay twin tuned by the same tuner with a 10-trial budget
# over the same LR lattice (fair comparison, issue 6). Resumable: re-run to continue; finished trials are kept.
# About 45 s a trial on 2 otherwise idle CPU cores. Copies the logs and plots into eval/tuner/.
set -euo pipefail
cd "$(dirname "$0")/.."
LR=0.025,0.05,0.1,0.2,0.4,0.8
# The recorded grid (eval/tuner/grid_*) is for the stride-32 ResNet the recipe had then: pin it, so this reproduces
# it (the recipe is now the output_stride 8 variant).
common=(--proxy-epochs 1 --proxy-subset 20000 --holdout 10000 --no-progress --set model_args.output_stride=32)
.venv/bin/fixnorm-zoo tune fashion_mnist/resnet18_fixnorm "${common[@]}" --strategy grid --trials 36 \
  --grid fc_norm=1,2,4,8,16,32 --grid lr=$LR --output runs/tuner_grid/resnet18_fixnorm
.venv/bin/fixnorm-zoo tune fashion_mnist/resnet18_wd "${common[@]}" --strategy fixnorm --trials 10 \
  --set weight_decay=0.0005 --set lr=0.1 \
  --grid weight_decay=0.000125,0.00025,0.0005,0.001,0.002,0.004 --grid lr=$LR --output runs/tuner_grid/resnet18_wd
mkdir -p eval/tuner
for m in fixnorm wd; do
  for f in trials.jsonl trials.csv trials.png best.yaml; do
    cp "runs/tuner_grid/resnet18_$m/$f" "eval/tuner/grid_resnet18_${m}_$f"
  done
done
