#!/usr/bin/env bash
# Everything behind the README's Fashion-MNIST results, in two slots of one thread each: the FixNorm slot and the
# weight-decay slot run the same jobs in the same order, so each FixNorm run and its twin train side by side under
# the same load (fair wall times), and the depthwise models use the 2 cores better than one 2-thread job (measured:
# 1.4x). Resumable at every level: re-run it after an interruption.
#   eval/fmnist_zoo_jobs.sh            (logs in logs/zoo_fixnorm.log, logs/zoo_wd.log)
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p logs
slot() {
  local m=$1
  export OMP_NUM_THREADS=1
  eval/fmnist_tune.sh "resnet18_$m" 8 &&
  { [ -f "runs/demo_record/demo_$m/summary.json" ] ||  # the 2-epoch demo recipes, recorded for `make demo`
    .venv/bin/fixnorm-zoo train "fashion_mnist/demo_$m" --output "runs/demo_record/demo_$m" --no-progress; } &&
  { [ -f "eval/fmnist_demo_$m.csv" ] ||
    .venv/bin/fixnorm-zoo eval "runs/demo_record/demo_$m" --data fashion_mnist --results-csv "eval/fmnist_demo_$m.csv"; } &&
  eval/fmnist_full_runs.sh "resnet18_$m:0" &&
  eval/fmnist_tune.sh "mobilenetv2_050_$m" 6 &&
  eval/fmnist_tune.sh "tinynet_e_$m" 6 &&
  eval/fmnist_full_runs.sh "resnet18_$m:1" "mobilenetv2_050_$m:0" "tinynet_e_$m:0" "resnet18_$m:2" \
    "mobilenetv2_050_$m:1" "tinynet_e_$m:1" "mobilenetv2_050_$m:2" "tinynet_e_$m:2"
}
slot fixnorm > logs/zoo_fixnorm.log 2>&1 &
slot wd > logs/zoo_wd.log 2>&1 &
wait
