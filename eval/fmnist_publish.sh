#!/usr/bin/env bash
# Publish the Fashion-MNIST zoo (issue 6): for each family, the seed-0 run of the FixNorm recipe (declared before
# the runs, not the best seed) and its weight-decay twin (tagged as the baseline) go through `fixnorm-zoo publish`
# (re-evaluation gate, timm format, model card) into zoo_mirror/, the Hub-layout folder committed with the
# repository; fixnorm_zoo/zoo.json gets the measured numbers, sizes and sha256. fixnorm_zoo.load() reads zoo_mirror/
# for entries that pin no Hub revision.
#   eval/fmnist_publish.sh [FAMILY ...]        (default: resnet18 mobilenetv2_050 tinynet_e)
set -euo pipefail
cd "$(dirname "$0")/.."
families=("$@"); [ ${#families[@]} -eq 0 ] && families=(resnet18 mobilenetv2_050 tinynet_e)
for f in "${families[@]}"; do
  fix=runs/fmnist/${f}_fixnorm_s0; wd=runs/fmnist/${f}_wd_s0
  .venv/bin/fixnorm-zoo publish "$wd" --repo-id "fixnorm-zoo/fmnist_${f}_wd" --name "fmnist_${f}_wd" \
    --twin "$fix" --mirror zoo_mirror
  .venv/bin/fixnorm-zoo publish "$fix" --repo-id "fixnorm-zoo/fmnist_$f" --name "fmnist_$f" \
    --twin "$wd" --mirror zoo_mirror
done
