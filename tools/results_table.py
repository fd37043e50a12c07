"""The README's Fashion-MNIST results, from eval/fmnist_results.csv (written by eval/fmnist_full_runs.sh): test top-1
mean +- std over seeds per recipe, the run time, and a plot of test top-1 per epoch (FixNorm vs weight decay, one
line per seed) drawn from the runs' per-epoch logs (eval/fmnist_logs/).

    .venv/bin/python tools/results_table.py [--plot docs/fmnist_results.png]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = {"resnet18": ("ResNet18", 94.9), "mobilenetv2_050": ("MobileNet", 95.0), "tinynet_e": (None, None)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default=str(ROOT / "eval/fmnist_results.csv"))
    ap.add_argument("--plot", default=str(ROOT / "docs/fmnist_results.png"))
    ap.add_argument("--zoo", action="store_true", help="print the zoo table from the registry instead")
    args = ap.parse_args()
    if args.zoo:
        return _zoo_table()
    rows = list(csv.DictReader(open(args.csv)))  # noqa: SIM115 - read once
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        family = Path(r["recipe"]).name.rsplit("_", 1)[0]
        groups[(family, r["method"])].append(r)
    print(
        "| family (run name) | method | seeds | test top-1 % (mean ± std) | per seed | minutes per run | public table |"
    )
    print("|---|---|---|---|---|---|---|")
    for (family, method), rs in sorted(groups.items()):
        top1 = [float(r["top1"]) for r in rs]
        sd = f"{statistics.stdev(top1):.2f}" if len(top1) > 1 else "n/a"
        minutes = statistics.mean(float(r["train_time_s"]) for r in rs) / 60
        label, public = PUBLIC.get(family, (None, None))
        ref = f"{label} {public}" if public else ""
        print(
            f"| {family} (`{rs[0]['model']}`) | {method} | {len(rs)} | {statistics.mean(top1):.2f} ± {sd} | "
            f"{', '.join(f'{t:.2f}' for t in top1)} | {minutes:.1f} | {ref} |"
        )
    _plot(groups, Path(args.plot))
    print(f"\nplot: {args.plot}")
    return 0


def _zoo_table() -> int:
    from fixnorm_zoo.registry import list_models, model_info

    print(
        "| name | timm architecture | data | method | params | GMACs | paper top-1 | measured top-1 / top-5 | status |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in list_models():
        m = model_info(name)
        arch = f"`{m.architecture}`" + (f" {m.model_args}" if m.model_args else "")
        size = "x".join(str(v) for v in m.eval_setting["input_size"][1:])
        measured = f"{m.top1:.2f} / {m.top5:.2f} ({m.eval_split})" if m.top1 is not None else "-"
        print(
            f"| `{m.name}` | {arch} @ {size} | {m.dataset} | {m.method} | {m.params_m:.2f}M | {m.gmacs:.3g} | "
            f"{m.paper_top1 or '-'} | {measured} | {m.status} |"
        )
    return 0


def _plot(groups, path: Path) -> None:
    from fixnorm_zoo.plots import pyplot

    plt = pyplot()
    families = sorted({f for f, _ in groups})
    fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 3.6), squeeze=False)
    colors = {"fixnorm": "tab:blue", "wd": "tab:orange"}
    for ax, family in zip(axes[0], families, strict=True):
        for method in ("fixnorm", "wd"):
            for i, r in enumerate(groups.get((family, method), [])):
                # the per-epoch logs eval/fmnist_full_runs.sh copied next to the CSV (runs/ is not committed)
                name = Path(r["run_dir"]).name
                log = [
                    json.loads(x)
                    for x in (ROOT / "eval/fmnist_logs" / f"{name}.jsonl").read_text().splitlines()
                ]
                ax.plot([h["epoch"] for h in log], [h["top1"] for h in log], color=colors[method], alpha=0.8,
                        label=("FixNorm" if method == "fixnorm" else "weight decay") if i == 0 else None)  # fmt: skip
        ax.set(title=family, xlabel="epoch", ylabel="test top-1 (%)")
        ax.set_ylim(bottom=60)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Fashion-MNIST: FixNorm vs weight decay (one line per seed)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
