"""``make demo``: the whole zoo pipeline once, on real data, in minutes.

Train a FixNorm model on Fashion-MNIST with its recipe, evaluate it, publish it with its model card to a local Hub
mirror (a directory, with its own copy of the registry, so the package's zoo.json is untouched), load it back with
``fixnorm_zoo.load`` (sha256-checked), classify test images with the model's own eval transform and draw them in a
PNG grid, and print the accuracy next to the weight-decay twin's recorded number.
"""

from __future__ import annotations

import csv
import importlib.resources
import shutil
import time
from pathlib import Path

from fixnorm_zoo.engine.rundir import RunDir
from fixnorm_zoo.errors import OutputError

DEMO_RECIPE = "fashion_mnist/demo_fixnorm"
TWIN_RECIPE = "fashion_mnist/demo_wd"
DEMO_NAME = "fmnist_demo"
DEMO_REPO = "fixnorm-zoo/fmnist_demo"
MARKER = ".fixnorm_demo"
RECORDED = Path(str(importlib.resources.files("fixnorm_zoo").joinpath("demo_recorded.csv")))
"""The weight-decay twin's measured row, shipped with the package (written by `eval/record.py run --only demo_wd`)."""


def _recorded_twin() -> dict | None:
    """The weight-decay twin's measured row (``demo_recorded.csv`` in the package, written by ``eval/record.py run --only demo_wd``)."""
    if not RECORDED.is_file():
        return None
    with open(RECORDED) as f:
        rows = [r for r in csv.DictReader(f) if r["model"] == "fmnist_demo_wd"]
    return (
        rows[-1] if rows else None
    )  # appended by each re-run of the record: the newest is the current recipe's


def _prediction_grid(model, transform, path: Path, *, data_dir: str | None, n: int = 24) -> float:
    """Classify ``n`` test images (evenly spaced through the test set) and draw them; returns their accuracy."""
    import torch
    from PIL import Image

    from fixnorm_zoo.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
    from fixnorm_zoo.plots import figures

    images, labels = load_fashion_mnist(split="test", data_dir=data_dir)
    idx = torch.linspace(0, len(images) - 1, n).long()
    pil = [Image.fromarray(images[i, 0].numpy(), mode="L") for i in idx]
    with torch.no_grad():
        probs = model(torch.stack([transform(p) for p in pil])).softmax(dim=1)
    conf, pred = probs.max(dim=1)
    plt = figures()
    cols = 8
    fig, axes = plt.subplots(n // cols, cols, figsize=(cols * 1.55, n // cols * 1.85))
    for ax, img, i, p, c in zip(axes.flat, pil, idx, pred, conf, strict=True):
        ok = int(p) == int(labels[i])
        ax.imshow(img, cmap="gray")
        ax.set_title(
            f"{FASHION_MNIST_CLASSES[int(p)]}\n{100 * float(c):.0f}%"
            + ("" if ok else f" (is {FASHION_MNIST_CLASSES[int(labels[i])]})"),
            fontsize=7,
            color="green" if ok else "red",
        )
        ax.axis("off")
    fig.suptitle(
        "fixnorm_zoo.load('fmnist_demo') on Fashion-MNIST test images (green: right, red: wrong)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return float((pred == labels[idx]).float().mean()) * 100


def run_demo(*, output_dir: Path, data_dir: str | None = None, overrides: dict | None = None) -> dict:
    """Train, evaluate, publish to ``output_dir/hub``, load back, draw predictions; print what was written.
    ``overrides`` change the demo recipe (the tests shrink it)."""
    from fixnorm_zoo.engine.train import train
    from fixnorm_zoo.recipe import load_recipe
    from fixnorm_zoo.zoo.evaluate import evaluate
    from fixnorm_zoo.zoo.publish import publish
    from fixnorm_zoo.zoo.registry import REGISTRY_FILE

    start = time.perf_counter()
    output_dir = Path(output_dir)
    run_dir, mirror, registry = (
        output_dir / "fmnist_demo_fixnorm",
        output_dir / "hub",
        output_dir / "zoo.json",
    )
    marker = output_dir / MARKER
    if output_dir.exists() and any(output_dir.iterdir()) and not marker.is_file():
        raise OutputError(
            f"--output {output_dir}: the folder exists and was not made by an earlier demo; the demo writes only "
            "into a new or empty folder, or one it made before. Name another folder."
        )
    for p in (run_dir, mirror):  # an earlier demo's own outputs (the marker says this folder is the demo's)
        shutil.rmtree(p, ignore_errors=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by fixnorm-zoo demo; its next run replaces this folder's demo outputs\n")
    shutil.copyfile(REGISTRY_FILE, registry)

    print(f"[1/5] train {DEMO_RECIPE} -> {run_dir}")
    recipe = load_recipe(
        DEMO_RECIPE, overrides={**({"data_dir": data_dir} if data_dir else {}), **(overrides or {})}
    )
    summary = train(recipe, output_dir=run_dir)
    data = f"fashion_mnist:{data_dir}" if data_dir else "fashion_mnist"
    print("[2/5] evaluate with the model's own eval transform")
    row = evaluate(str(run_dir), data=data, results_csv=output_dir / "results.csv")
    print(f"      top-1 {row['top1']:.2f}%  top-5 {row['top5']:.2f}%  ({row['model']}, {row['img_size']} px)")
    print(f"[3/5] publish (re-check, model card, safetensors) to the local Hub mirror {mirror}")
    published = publish(
        run_dir, repo_id=DEMO_REPO, name=DEMO_NAME, mirror=mirror, registry=registry, data=data, replace=True
    )
    print(
        f"      {DEMO_REPO}: sha256 {published['sha256'][:16]}..., registry entry '{DEMO_NAME}' in {registry}"
    )

    print("[4/5] load it back: fixnorm_zoo.load('fmnist_demo') (registry + mirror, sha256 checked)")
    from fixnorm_zoo.zoo.pretrained import get_transforms, load

    model = load(DEMO_NAME, registry=registry, mirror=mirror)
    transform = get_transforms(DEMO_NAME, registry=registry)
    grid = output_dir / "predictions.png"
    print(f"[5/5] classify test images -> {grid}")
    grid_acc = _prediction_grid(model, transform, grid, data_dir=data_dir)

    total = time.perf_counter() - start
    twin = _recorded_twin()
    print()
    print(f"Fashion-MNIST test top-1, {recipe.model} {recipe.model_args}, {recipe.epochs} epochs:")
    print(
        f"  FixNorm (this run, re-measured at publish)      {published['top1']:6.2f}%   "
        f"({summary['train_time_s']:.0f} s training)"
    )
    if twin:
        print(
            f"  weight-decay twin (recorded, demo_recorded.csv) {float(twin['top1']):6.2f}%   "
            f"(fixnorm-zoo train {TWIN_RECIPE})"
        )
    print(f"  prediction grid: {grid_acc:.0f}% of its 24 test images right")
    print(f"Total wall time: {total:.0f} s")
    print("Wrote:")
    run = RunDir(run_dir)
    for p in [
        run.summary_file,
        run.curves_file,
        run.weights_file(),
        output_dir / "results.csv",
        *sorted((mirror / DEMO_REPO).iterdir()),
        registry,
        grid,
    ]:
        print(f"  {p}")
    print("Repeat with: fixnorm-zoo demo   (in a checkout of the repository: make demo)")
    return {"summary": summary, "eval": row, "published": published, "grid_accuracy": grid_acc}
