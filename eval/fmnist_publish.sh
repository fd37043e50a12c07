#!/usr/bin/env bash
# Publish a Fashion-MNIST family: the seed-0 run of the FixNorm recipe (declared before the runs, not the best seed)
# and its weight-decay twin (tagged as the baseline) go through `fixnorm-zoo publish` (re-evaluation gate, timm
# format, model card) into zoo_mirror/, the release folder in the Hub's layout (`fixnorm-zoo push zoo_mirror`
# uploads it and pins the commits); fixnorm_zoo/zoo.json gets the measured numbers, sizes and sha256.
#   eval/fmnist_publish.sh [FAMILY ...]        (default: resnet9s, the full-run-tuned pair in runs/baseline/)
# Older families (resnet18 mobilenetv2_050 tinynet_e) came from runs/fmnist/ (eval/fmnist_zoo_jobs.sh); a re-publish
# of an entry that has weights needs REPLACE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
families=("$@"); [ ${#families[@]} -eq 0 ] && families=(resnet9s)
replace=(); [ "${REPLACE:-0}" = 1 ] && replace=(--replace)
for f in "${families[@]}"; do
  base=runs/fmnist; [ "$f" = resnet9s ] && base=runs/baseline  # the pair tuned on full runs (issue 20)
  fix=$base/${f}_fixnorm_s0; wd=$base/${f}_wd_s0
  .venv/bin/fixnorm-zoo publish "$wd" --repo-id "fixnorm-zoo/fmnist_${f}_wd" --name "${f}.wd_fmnist" \
    --twin "$fix" --mirror zoo_mirror --registry fixnorm_zoo/zoo.json "${replace[@]}"
  .venv/bin/fixnorm-zoo publish "$fix" --repo-id "fixnorm-zoo/fmnist_$f" --name "${f}.fixnorm_fmnist" \
    --twin "$wd" --mirror zoo_mirror --registry fixnorm_zoo/zoo.json "${replace[@]}"
done
