#!/usr/bin/env bash
# The dense reference grids for bench/tuner.py: every (fc_norm, lr) point of a 6x6 log lattice for a FixNorm
# recipe, each a proxy run (1 epoch on the first 20,000 training images, scored on the last 10,000 training images
# held out; never the test set). Two surfaces, so the tuner is not judged on one: the ResNet (then the weight-decay
# twin tuned by the same tuner with a 10-trial budget over the same LR lattice: a fair comparison, issue 6), and
# MobileNetV2-0.5 (depthwise, stride 32, no dilation: a different shape of model). Resumable: re-run to continue;
# finished trials are kept. About 45 s a trial on 2 otherwise idle CPU cores. Copies the logs and plots into
# eval/tuner/ (grid_MODEL_METHOD_*).
#   bench/tuner_grid.sh [resnet18] [mobilenetv2_050]      (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--proxy-epochs 1 --proxy-subset 20000 --holdout 10000 --no-progress)
keep() {  # keep MODEL METHOD: copy a finished search into eval/tuner/
  mkdir -p eval/tuner
  for f in trials.jsonl trials.csv trials.png best.yaml; do cp "runs/tuner_grid/$1_$2/$f" "eval/tuner/grid_$1_$2_$f"; done
}
resnet18() {
  local lr=0.025,0.05,0.1,0.2,0.4,0.8
  # The recorded grid is for the stride-32 ResNet the recipe had then: pinned, so this reproduces it (the recipe is
  # now the output_stride 8 variant).
  local pin=(--set model_args.output_stride=32)
  .venv/bin/fixnorm-zoo tune fashion_mnist/resnet18_fixnorm "${common[@]}" "${pin[@]}" --strategy grid --trials 36 \
    --grid fc_norm=1,2,4,8,16,32 --grid lr=$lr --output runs/tuner_grid/resnet18_fixnorm
  .venv/bin/fixnorm-zoo tune fashion_mnist/resnet18_wd "${common[@]}" "${pin[@]}" --strategy fixnorm --trials 10 \
    --set weight_decay=0.0005 --set lr=0.1 \
    --grid weight_decay=0.000125,0.00025,0.0005,0.001,0.002,0.004 --grid lr=$lr --output runs/tuner_grid/resnet18_wd
  keep resnet18 fixnorm
  keep resnet18 wd
}
mobilenetv2_050() {  # centred on the recipe's tuned values (fc_norm 4, lr 0.05)
  .venv/bin/fixnorm-zoo tune fashion_mnist/mobilenetv2_050_fixnorm "${common[@]}" --strategy grid --trials 36 \
    --grid fc_norm=1,2,4,8,16,32 --grid lr=0.0125,0.025,0.05,0.1,0.2,0.4 \
    --output runs/tuner_grid/mobilenetv2_050_fixnorm
  keep mobilenetv2_050 fixnorm
}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(resnet18 mobilenetv2_050)
for model in "${models[@]}"; do
  case $model in
    resnet18 | mobilenetv2_050) $model ;;
    *) echo "bench/tuner_grid.sh: unknown grid $model (choose: resnet18 mobilenetv2_050)" >&2; exit 2 ;;
  esac
done
