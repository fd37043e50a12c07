#!/usr/bin/env bash
# Proxy vs full run (issue 5's premise): full 10-epoch runs at points the tuner tried on its 1-epoch proxy, scored on
# the test set, appended to eval/tuner/full_runs.csv (knobs, proxy top-1 from the trial log, full-run top-1) for
# bench/tuner.py. Resumable.  eval/fmnist_proxy_check.sh RECIPE KNOB=V[,KNOB=V] ...
#   e.g. eval/fmnist_proxy_check.sh resnet18_wd weight_decay=0.001,lr=0.1
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=$1; shift
out=eval/tuner/full_runs.csv
[ -f "$out" ] || echo "recipe,point,proxy_top1,top1,top5,train_time_s,run_dir" > "$out"
for point in "$@"; do
  dir=runs/proxy_check/${recipe}_${point//[=,]/_}
  sets=(); IFS=, read -ra kvs <<< "$point"; for kv in "${kvs[@]}"; do sets+=(--set "$kv"); done
  if [ ! -f "$dir/summary.json" ]; then
    resume=(); [ -d "$dir/checkpoints" ] && resume=(--resume)
    .venv/bin/fixnorm-zoo train "fashion_mnist/$recipe" "${sets[@]}" --output "$dir" --no-progress "${resume[@]}"
  fi
  grep -q ",$dir\$" "$out" && continue
  .venv/bin/python - "$recipe" "$point" "$dir" >> "$out" <<'PY'
import json, sys
from fixnorm_zoo.tuning import param_key
recipe, point, run = sys.argv[1:]
params = {k: float(v) for k, v in (kv.split("=") for kv in point.split(","))}
trials = [json.loads(x) for x in open(f"eval/tuner/{recipe}_trials.jsonl").read().splitlines()[1:]]
proxy = next((t["score"] for t in trials if t["trial"] == param_key(params)), "")
s = json.load(open(f"{run}/summary.json"))
print(f"{recipe},\"{param_key(params)}\",{proxy},{s['top1']},{s['top5']},{s['train_time_s']},{run}")
PY
done
