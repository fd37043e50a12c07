#!/usr/bin/env bash
# The Fashion-MNIST zoo runs (issue 6): each recipe x seed, trained with the recipe's (tuned) settings, scored on
# the 10,000-image test set and appended to eval/fmnist_results.csv (timm's results columns + method, seed, epochs,
# train_time_s). Resumable: a finished run is skipped, a killed one continues from its last checkpoint.
#   eval/fmnist_full_runs.sh [RECIPE:SEED ...]     (default: the list below)
set -euo pipefail
cd "$(dirname "$0")/.."
out=eval/fmnist_results.csv
jobs=("$@")
if [ ${#jobs[@]} -eq 0 ]; then
  jobs=(resnet18_fixnorm:0 resnet18_wd:0 resnet18_fixnorm:1 resnet18_wd:1 resnet18_fixnorm:2 resnet18_wd:2
        mobilenetv2_050_fixnorm:0 mobilenetv2_050_wd:0 tinynet_e_fixnorm:0 tinynet_e_wd:0)
fi
[ -f "$out" ] || echo "model,img_size,top1,top1_err,top5,top5_err,param_count,crop_pct,interpolation,recipe,method,seed,epochs,train_time_s,run_dir" > "$out"
for job in "${jobs[@]}"; do
  recipe=${job%%:*}; seed=${job##*:}
  dir=runs/fmnist/${recipe}_s$seed
  if [ -f "$dir/summary.json" ]; then
    grep -q ",$dir\$" "$out" && continue
  else
    resume=(); [ -d "$dir/checkpoints" ] && resume=(--resume)
    .venv/bin/fixnorm-zoo train "fashion_mnist/$recipe" --set seed="$seed" --output "$dir" --no-progress "${resume[@]}"
  fi
  row=$(.venv/bin/fixnorm-zoo eval "$dir" --data fashion_mnist | tail -2 | head -1)
  extra=$(.venv/bin/python -c "import json,sys; s=json.load(open(sys.argv[1]+'/summary.json')); print(f\"fashion_mnist/{sys.argv[2]},{s['method']},{sys.argv[3]},{s['epochs']},{s['train_time_s']}\")" "$dir" "$recipe" "$seed")
  echo "$row,$extra,$dir" >> "$out"
done
