"""Images/s of the training engine (``fixnorm_zoo.engine.train``) against a bare PyTorch loop doing the same forward,
backward and FixNorm step on the same model, batch and data, measured in one run; likewise eval.

    .venv/bin/python bench/train_throughput.py [--cases resnet9s_fixnorm resnet9s_wd effnet]

resnet9s_fixnorm / resnet9s_wd: the headline Fashion-MNIST recipe and its weight-decay twin (resnet9s w16,
channels_last, batch 256) on 12,800 real Fashion-MNIST images, side by side in one run.
effnet: efficientnet_b0 at 224 px, batch 32, on a generated ImageFolder of random JPEGs (timm train transform,
DataLoader with 2 workers) — "synthetic data" with the real decode/augment path.
The engine's img/s is its own per-epoch figure (training loop only, from log.jsonl); the bare loop is timed over
the same number of steps. After one warm-up of each, engine and bare runs alternate ``--repeats`` times and the
medians are compared. Goal: ratio >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from fixnorm_zoo.data.loaders import build_loaders
from fixnorm_zoo.engine.metrics import accuracy_counts
from fixnorm_zoo.engine.train import train
from fixnorm_zoo.models.build import model_from_recipe
from fixnorm_zoo.optim.factory import build_optimizer
from fixnorm_zoo.recipe import load_recipe


def _bare_loop(recipe, loader, steps: int) -> float:
    """The same work as the engine, nothing else: forward, loss, backward, FixNorm step, zero_grad."""
    torch.manual_seed(recipe.seed)
    model = model_from_recipe(recipe).train()
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    opt = build_optimizer(recipe, model)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    images, t0 = 0, time.perf_counter()
    for done, (x, y) in enumerate(loader, start=1):
        loss = criterion(model(x.contiguous(memory_format=memory_format)), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        images += x.shape[0]
        if done == steps:
            break
    return images / (time.perf_counter() - t0)


def _make_imagefolder(root: Path, *, classes: int, per_class: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            d = root / split / f"class{c:03d}"
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (256, 320, 3), dtype=np.uint8)).save(d / f"{i}.JPEG")


def _engine_once(recipe, run: Path) -> tuple[float, int]:
    train(recipe, output_dir=run, progress=False)
    row = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    return row["img_per_s"], row["updates"]


def _bare_once(recipe, steps: int) -> float:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    train_loader, _, _ = build_loaders(recipe, acc, recipe.batch_size)
    return _bare_loop(recipe, train_loader, steps)


FMNIST_CASES = ("resnet9s_fixnorm", "resnet9s_wd")


def bench_case(case: str, workdir: Path, repeats: int) -> dict[str, float]:
    if case in FMNIST_CASES:
        recipe = load_recipe(f"fashion_mnist/{case}", overrides={"epochs": 1, "train_subset": 12_800})
    else:
        _make_imagefolder(workdir / "data", classes=4, per_class=48)
        recipe = load_recipe(
            "imagenet/efficientnet_b0_fixnorm",
            overrides={
                "data_dir": str(workdir / "data"),
                "num_classes": 4,
                "batch_size": 32,
                "epochs": 1,
                "workers": 2,
                "amp": "no",
                "model_ema": False,
                "channels_last": False,
            },
        )
    # alternated engine / bare runs after one warm-up of each (page cache, allocator, thread pools), medians
    _engine_once(recipe, workdir / f"warm_{case}")
    engine_runs, bare_runs, steps = [], [], 0
    _bare_once(recipe, 5)
    for i in range(repeats):
        ips, steps = _engine_once(recipe, workdir / f"run_{case}_{i}")
        engine_runs.append(ips)
        bare_runs.append(_bare_once(recipe, steps))
    engine, bare = statistics.median(engine_runs), statistics.median(bare_runs)

    # eval: the package's accuracy_counts against a bare no_grad loop over the same batches, alternated
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    _, test_loader, disjoint = build_loaders(recipe, acc, recipe.batch_size)
    model = model_from_recipe(recipe).eval()
    batches = list(test_loader)
    n = sum(len(y) for _, y in batches)
    pkg_runs, bare_eval_runs = [], []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        accuracy_counts(model, batches, accelerator=acc, disjoint_shards=disjoint)
        pkg_runs.append(n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        with torch.no_grad():
            for x, _ in batches:
                model(x).argmax(1)
        bare_eval_runs.append(n / (time.perf_counter() - t0))
    pkg_eval, bare_eval = statistics.median(pkg_runs[1:]), statistics.median(bare_eval_runs[1:])
    return {
        "engine": engine,
        "bare": bare,
        "ratio": engine / bare,
        "eval_pkg": pkg_eval,
        "eval_bare": bare_eval,
        "eval_ratio": pkg_eval / bare_eval,
        "steps": steps,
        "engine_runs": engine_runs,
        "bare_runs": bare_runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cases = [*FMNIST_CASES, "effnet"]
    parser.add_argument("--cases", nargs="+", default=cases, choices=cases)
    parser.add_argument("--repeats", type=int, default=3, help="alternated engine/bare pairs after a warm-up")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"{'case':<18}{'steps':>6}{'engine img/s':>14}{'bare img/s':>12}{'ratio':>8}"
        f"{'eval img/s':>12}{'bare eval':>11}{'ratio':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            r = bench_case(case, Path(tmp), args.repeats)
            print(
                f"{case:<18}{r['steps']:>6}{r['engine']:>14.1f}{r['bare']:>12.1f}{r['ratio']:>8.3f}"
                f"{r['eval_pkg']:>12.1f}{r['eval_bare']:>11.1f}{r['eval_ratio']:>8.3f}",
                flush=True,
            )
            print(
                f"                  engine runs {[round(v, 1) for v in r['engine_runs']]}, bare runs "
                f"{[round(v, 1) for v in r['bare_runs']]}"
            )


if __name__ == "__main__":
    main()
