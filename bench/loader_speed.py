"""Input-pipeline images/s of the ImageNet recipes' training loader, per format, against timm's own loader on the
same files, in one run.

Files: ``--images`` generated JPEGs (ImageNet-like sizes, 4 classes) written three ways — an ImageFolder, webdataset
shards laid out as timm/imagenet-1k-wds, and parquet shards as the Hub's imagenet-1k. Ours: the engine's loader for
``imagenet/efficientnet_b0_fixnorm`` (RandomResizedCrop 224, flip, RandAugment, random erasing: timm's train
transform) over each format (``hf:webdataset:DIR``, ``hf:parquet:DIR`` map-style). Peer: ``timm.data.create_loader``
with the same transform settings over the ImageFolder (timm's ``ImageDataset``). Each is read for one pass with
``--workers`` workers (and with 0, to give a per-core figure), the two sides alternated, medians of ``--repeats``.

    .venv/bin/python bench/loader_speed.py [--images 256] [--workers 2] [--repeats 3]

Workers per GPU follow from the GPU's training step rate: at S img/s per GPU, a pipeline of P img/s per worker
needs ceil(S / P) workers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLASSES = ("n01440764", "n01443537", "n01484850", "n01491361")


def make_files(root: Path, n: int) -> dict[str, Path]:
    """n JPEGs in an ImageFolder, then the same bytes as webdataset and parquet shards (2 per split)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    samples = {"train": [], "val": []}
    for split, count in (("train", n), ("val", max(8, n // 8))):
        for i in range(count):
            c = i % len(CLASSES)
            folder = root / "folder" / split / CLASSES[c]
            folder.mkdir(parents=True, exist_ok=True)
            h, w = rng.integers(300, 500, size=2)
            path = folder / f"{i:05d}.JPEG"
            Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(path, quality=90)
            samples[split].append((path, c))
    from fixnorm_zoo.data.imagenet import write_shards

    for split, name in (("train", "train"), ("val", "validation")):
        write_shards(samples[split], root, split=name, class_names=list(CLASSES))
    return {"folder": root / "folder", "webdataset": root / "webdataset", "parquet": root / "parquet"}


def ours(data_dir: str, workers: int):
    from fixnorm_zoo.data.imagenet import build_image_loaders
    from fixnorm_zoo.recipe import load_recipe

    recipe = load_recipe(
        "imagenet/efficientnet_b0_fixnorm",
        overrides={"data_dir": data_dir, "num_classes": 4, "batch_size": 32, "workers": workers, "amp": "no"},
    )
    train, _, _ = build_image_loaders(recipe, per_process_batch=32)
    return train, recipe


def timm_loader(folder: Path, recipe, workers: int):
    import timm.data

    dataset = timm.data.create_dataset("", root=str(folder / "train"), split="train", is_training=True)
    return timm.data.create_loader(
        dataset,
        input_size=tuple(recipe.input_size),
        batch_size=32,
        is_training=True,
        use_prefetcher=False,
        no_aug=False,
        re_prob=recipe.reprob,
        hflip=recipe.hflip,
        auto_augment=recipe.auto_augment,
        interpolation=recipe.interpolation,
        mean=tuple(recipe.mean),
        std=tuple(recipe.std),
        num_workers=workers,
        crop_pct=recipe.crop_pct,
        persistent_workers=False,
    )


def images_per_s(loader) -> float:
    t0, n = time.perf_counter(), 0
    for x, _ in loader:
        n += x.shape[0]
    return n / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # the loaders' work is per-image Python and PIL: count it per worker
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp), args.images)
        print(f"{args.images} train JPEGs (300-500 px), efficientnet_b0 train transform at 224, batch 32")
        print("format       workers  ours img/s  timm img/s  ours/timm  ours img/s per worker")
        for workers in (0, args.workers):
            train, recipe = ours(str(files["folder"]), workers)
            peer = timm_loader(files["folder"], recipe, workers)
            loaders = {
                "folder": train,
                "webdataset": ours(f"hf:webdataset:{files['webdataset']}", workers)[0],
                "parquet": ours(f"hf:parquet:{files['parquet']}", workers)[0],
            }
            for name, loader in loaders.items():
                a, b = [], []
                for _ in range(args.repeats):
                    a.append(images_per_s(loader))
                    b.append(images_per_s(peer))
                ma, mb = statistics.median(a), statistics.median(b)
                per = ma / max(1, workers)
                print(f"{name:<12} {workers:>7}  {ma:>10.1f}  {mb:>10.1f}  {ma / mb:>9.3f}  {per:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
