"""The figures drawn from the rows: the families, time to accuracy, reference epochs, FixNorm vs its twin."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the package, from a checkout

from fixnorm_zoo.engine.rundir import RunDir  # noqa: E402
from fixnorm_zoo.plots import METHOD_LABELS as METHOD_LABEL  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record_rows import ROOT, TARGETS, history_of  # noqa: E402
from record_tables import BASELINE_GROUPS, BUDGET_TARGETS, baseline_groups  # noqa: E402


def draw_figures(rows: list[dict[str, str]]) -> list[Path]:
    """docs/fmnist_results.png (the families, top-1 per epoch), docs/fmnist_time_to_accuracy[_eN].png,
    docs/fmnist_reference_epochs.png and docs/fixnorm_vs_wd.png (the README's first figure: the ResNet-18 pair's
    seed-0 runs, from the logs their release folders carry)."""
    from fixnorm_zoo.plots import plot_comparison, plot_families, plot_time_to_accuracy
    from fixnorm_zoo.recipe import load_recipe

    written = []
    pair = {
        m: ROOT / "zoo_mirror" / "fixnorm-zoo" / f"fmnist_resnet18{s}"
        for m, s in (("fixnorm", ""), ("wd", "_wd"))
    }
    if all((folder / "log.jsonl").is_file() for folder in pair.values()):
        labels = {}
        for method, folder in pair.items():
            r = load_recipe(str(folder / "train_hparams.yaml"))
            label = (
                f"FixNorm (fc_norm {r.fc_norm:g}, lr {r.lr:g})"
                if method == "fixnorm"
                else f"weight decay {r.weight_decay:g} (lr {r.lr:g})"
            )
            labels[label] = folder
        path = ROOT / "docs" / "fixnorm_vs_wd.png"
        plot_comparison(
            {label: RunDir(folder).read_history() for label, folder in labels.items()},
            path,
            title="Fashion-MNIST ResNet-18 (half width, output_stride 8), 10 epochs, seed 0: FixNorm vs weight decay",
        )
        written.append(path)
    fast: dict[str, list[list[dict]]] = defaultdict(list)
    seeds: dict[str, int] = defaultdict(int)
    for r in sorted(
        (r for r in rows if r["group"] == "fast" and r["log"]), key=lambda r: (int(r["epochs"]), r["method"])
    ):
        label = f"{METHOD_LABEL.get(r['method'], r['method'])}, {r['epochs']} epochs"
        fast[label].append(history_of(r))
        seeds[label] += 1
    if fast:
        path = ROOT / "docs" / "fmnist_time_to_accuracy.png"
        plot_time_to_accuracy(
            {
                f"{label} ({seeds[label]} seed{'s' if seeds[label] > 1 else ''})": h
                for label, h in fast.items()
            },
            path,
            targets=TARGETS,
            budgets=(10, 30),
            ylim=(88, 95.5),
            title="Fashion-MNIST resnet9s: test top-1 vs training-loop minutes (colour: run; line style: seed)",
        )
        written.append(path)
    groups = baseline_groups(rows)
    if groups:
        curves = {
            f"{METHOD_LABEL.get(m, m)}, {BASELINE_GROUPS[g]} ({len(rs)} seeds)": rs
            for (m, g), rs in groups.items()
        }
        path = ROOT / "docs" / "fmnist_reference_epochs.png"
        plot_time_to_accuracy(
            {label: [history_of(r) for r in rs] for label, rs in curves.items()},
            path,
            targets=(94, 95),
            budgets=tuple(sorted({b for _, b in BUDGET_TARGETS})),
            ylim=(88, 95.5),
            unit_s={label: [float(r["ref_epoch_s"]) for r in rs] for label, rs in curves.items()},
            xlabel="training cost (reference epochs: seconds / the yardstick's epoch seconds)",
            title="Fashion-MNIST resnet9s: test top-1 vs reference epochs (colour: run; line style: seed)",
        )
        written.append(path)
    families: dict[str, dict[str, list[dict[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["group"] == "families" and r["log"]:
            families[Path(r["recipe"]).name.rsplit("_", 1)[0]][r["method"]].append(r)
    path = ROOT / "docs" / "fmnist_results.png"
    plot_families(
        {
            family: {
                m: [(r["seed"], history_of(r)) for r in sorted(rs, key=lambda r: int(r["seed"]))]
                for m, rs in sorted(methods.items())
            }
            for family, methods in families.items()
        },
        path,
        title="Fashion-MNIST: FixNorm vs weight decay (colour: method; line style: seed)",
    )
    written.append(path)
    return written
