"""``make demo``: train the same Fashion-MNIST recipe twice, once with FixNorm and once with its weight-decay twin,
at the same budget, and print both test accuracies, the wall time and the command that repeats it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

DEMO_RECIPES = ("fashion_mnist/demo_fixnorm", "fashion_mnist/demo_wd")


def run_demo(*, output_dir: Path, data_dir: str | None = None) -> dict[str, dict]:
    """Run both demo recipes into ``output_dir/<recipe name>`` (replacing earlier demo runs) and print a table."""
    from fixnorm_zoo.recipe import load_recipe
    from fixnorm_zoo.train import train

    start = time.perf_counter()
    results: dict[str, dict] = {}
    for name in DEMO_RECIPES:
        recipe = load_recipe(name, overrides={"data_dir": data_dir} if data_dir else None)
        run_dir = output_dir / recipe.name
        shutil.rmtree(run_dir, ignore_errors=True)
        t0 = time.perf_counter()
        summary = train(recipe, output_dir=run_dir)
        summary["wall_s"] = time.perf_counter() - t0
        summary["run_dir"] = str(run_dir)
        results[recipe.method] = summary
    total = time.perf_counter() - start
    from fixnorm_zoo.plots import plot_comparison

    figure = output_dir / "fixnorm_vs_wd.png"
    plot_comparison({"FixNorm": Path(results["fixnorm"]["run_dir"]), "weight decay": Path(results["wd"]["run_dir"])},
                    figure, title="Fashion-MNIST, demo recipe: FixNorm vs weight decay")  # fmt: skip

    print()
    print(f"Fashion-MNIST test accuracy, {results['fixnorm']['model']} "
          f"({results['fixnorm']['epochs']} epochs each, same recipe and budget):")  # fmt: skip
    print(f"  {'method':<28}{'top-1 %':>9}{'top-5 %':>9}{'wall s':>9}  run directory")
    labels = {"fixnorm": "FixNorm (no weight decay)", "wd": "SGD + weight decay 5e-4"}
    for method, s in results.items():
        print(f"  {labels[method]:<28}{s['top1']:>9.2f}{s['top5']:>9.2f}{s['wall_s']:>9.0f}  {s['run_dir']}")
    print(f"Total wall time: {total:.0f} s")
    print(
        f"Wrote: {figure}, "
        + ", ".join(f"{s['run_dir']}/{{log.jsonl,curves.png,weights.safetensors}}" for s in results.values())
    )
    print("Repeat with: make demo   (or: .venv/bin/fixnorm-zoo demo)")
    print("Each run alone: " + "; ".join(f"fixnorm-zoo train {n}" for n in DEMO_RECIPES))
    return results
