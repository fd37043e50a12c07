#!/usr/bin/env bash
# The Fashion-MNIST zoo runs (issue 6): each RECIPE:SEED trained with the recipe's (tuned) settings, scored on the
# 10,000-image test set; the knobs come from the tuner's eval/tuner/RECIPE_best.yaml when there is one (the recipe
# files hold the same values: tests/test_recipe.py checks it), passed as --set so the run's recipe.yaml shows them; and appended to eval/fmnist_results.csv (timm's results columns + recipe, method, seed,
# epochs, train_time_s, run_dir); its per-epoch log is copied to eval/fmnist_logs/. Resumable: a finished run is
# skipped, a killed one continues from its last checkpoint.
#   eval/fmnist_full_runs.sh RECIPE:SEED ...      e.g. eval/fmnist_full_runs.sh resnet18_fixnorm:0 resnet18_wd:0
set -euo pipefail
cd "$(dirname "$0")/.."
out=eval/fmnist_results.csv
mkdir -p eval/fmnist_logs
[ -f "$out" ] || echo "model,img_size,top1,top1_err,top5,top5_err,param_count,crop_pct,interpolation,recipe,method,seed,epochs,train_time_s,run_dir" > "$out"
for job in "$@"; do
  recipe=${job%%:*}; seed=${job##*:}
  dir=runs/fmnist/${recipe}_s$seed
  if [ -f "$dir/summary.json" ]; then
    grep -q ",$dir\$" "$out" && continue
  else
    resume=(); [ -d "$dir/checkpoints" ] && resume=(--resume)
    tuned=()
    best=eval/tuner/${recipe}_best.yaml
    [ -f "$best" ] && while read -r k v; do tuned+=(--set "${k%:}=$v"); done < <(grep -v '^#' "$best")
    echo "train $recipe seed $seed ${tuned[*]}"
    .venv/bin/fixnorm-zoo train "fashion_mnist/$recipe" --set seed="$seed" "${tuned[@]}" --output "$dir" \
      --no-progress "${resume[@]}"
  fi
  row=$(.venv/bin/fixnorm-zoo eval "$dir" --data fashion_mnist | tail -2 | head -1)
  extra=$(.venv/bin/python -c "import json,sys; s=json.load(open(sys.argv[1]+'/summary.json')); print(f\"fashion_mnist/{sys.argv[2]},{s['method']},{sys.argv[3]},{s['epochs']},{s['train_time_s']}\")" "$dir" "$recipe" "$seed")
  cp "$dir/log.jsonl" "eval/fmnist_logs/${recipe}_s$seed.jsonl"
  echo "$row,$extra,$dir" >> "$out"
done
