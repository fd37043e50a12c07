#!/usr/bin/env bash
# Proxy vs full run over the tuner's reference grid (issue 5's premise): the full 10-epoch recipe at chosen points
# of the 6x6 (fc_norm, lr) grid of bench/tuner_grid.sh (same model: the stride-32 ResNet the grid was recorded
# with, seed 0), scored on the 10,000-image test set, appended to eval/tuner/grid_full_runs.csv next to each point's
# proxy score (eval/tuner/grid_resnet18_fixnorm_trials.jsonl); bench/tuner.py prints their rank correlation.
# About 6-7 min a point on 2 idle cores. Resumable: a finished point is skipped, a killed one resumes.
#   eval/fmnist_grid_full_runs.sh fc_norm=4,lr=0.1 fc_norm=32,lr=0.8 ...
set -euo pipefail
cd "$(dirname "$0")/.."
out=eval/tuner/grid_full_runs.csv
[ -f "$out" ] || echo "point,proxy_top1,top1,top5,train_time_s,run_dir,command" > "$out"
for point in "$@"; do
  dir=runs/grid_full/${point//[=,]/_}
  sets=(--set model_args.output_stride=32 --set seed=0)
  IFS=, read -ra kvs <<< "$point"; for kv in "${kvs[@]}"; do sets+=(--set "$kv"); done
  cmd="fixnorm-zoo train fashion_mnist/resnet18_fixnorm ${sets[*]}"
  if [ ! -f "$dir/summary.json" ]; then
    resume=(); [ -d "$dir/checkpoints" ] && resume=(--resume)
    echo "$cmd"
    .venv/bin/fixnorm-zoo train fashion_mnist/resnet18_fixnorm "${sets[@]}" --output "$dir" --no-progress "${resume[@]}"
  fi
  grep -q ",$dir," "$out" && continue
  .venv/bin/python - "$point" "$dir" "$cmd" >> "$out" <<'PY'
import json, sys
from fixnorm_zoo.tuning import param_key
point, run, cmd = sys.argv[1:]
params = {k: float(v) for k, v in (kv.split("=") for kv in point.split(","))}
trials = [json.loads(x) for x in open("eval/tuner/grid_resnet18_fixnorm_trials.jsonl").read().splitlines()[1:]]
proxy = next(t["score"] for t in trials if t["trial"] == param_key(params))
s = json.load(open(f"{run}/summary.json"))
print(f"\"{param_key(params)}\",{proxy},{s['top1']},{s['top5']},{s['train_time_s']},{run},\"{cmd}\"")
PY
done
