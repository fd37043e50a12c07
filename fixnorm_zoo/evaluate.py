"""Top-1/top-5 accuracy, counting every evaluation image exactly once across processes, and rows in timm's results
CSV columns."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from accelerate import Accelerator
    from torch import nn

TTA_MODES = ("none", "flip")
RESULTS_COLUMNS = (
    "model",
    "img_size",
    "top1",
    "top1_err",
    "top5",
    "top5_err",
    "param_count",
    "crop_pct",
    "interpolation",
)


@torch.no_grad()
def accuracy_counts(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    accelerator: Accelerator | None = None,
    disjoint_shards: bool = True,
    channels_last: bool = False,
    tta: str = "none",
) -> dict[str, float]:
    """Top-1/top-5 over ``batches`` in percent, plus the image count.

    Args:
        model: evaluated in eval mode (restored afterwards).
        batches: ``(images, labels)``; with several processes, each process's share.
        accelerator: sums counts over processes when given.
        disjoint_shards: the shares are disjoint and cover the set (our in-memory loader): counts are summed. False
            for an accelerate-prepared DataLoader, whose padding duplicates ``gather_for_metrics`` drops.
        channels_last: feed images in channels-last memory format.
        tta: ``"none"`` (single view, as timm's validate.py and the zoo's headline numbers) or ``"flip"`` (the
            mean of the logits of each image and its horizontal mirror).
    """
    if tta not in TTA_MODES:
        raise ValueError(f"tta={tta!r}: choose one of {TTA_MODES}")
    was_training = model.training
    model.eval()
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    counts = torch.zeros(3, dtype=torch.float64, device=device)  # top1, top5, n
    try:
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits = model(x)
            if tta == "flip":
                logits = (logits + model(x.flip(-1))) / 2
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices
            hit = top.eq(y[:, None])
            hit1, hitk = hit[:, 0], hit.any(dim=1)
            if accelerator is not None and not disjoint_shards:
                hit1, hitk = accelerator.gather_for_metrics((hit1, hitk))
            counts += torch.stack(
                [hit1.sum(), hitk.sum(), torch.tensor(hit1.numel(), device=device)]
            ).double()
    finally:
        model.train(was_training)
    if accelerator is not None and disjoint_shards:
        counts = accelerator.reduce(counts, reduction="sum")
    top1, top5, n = counts.tolist()
    if n == 0:
        raise ValueError("evaluation saw no images")
    return {"top1": 100.0 * top1 / n, "top5": 100.0 * top5 / n, "n": int(n)}


def results_row(
    *, model_name: str, metrics: dict[str, float], param_count: int, eval_cfg: dict[str, Any]
) -> dict:
    """One row in timm's ``results-imagenet.csv`` columns (param_count in millions, as timm writes it)."""
    return {
        "model": model_name,
        "img_size": int(eval_cfg["input_size"][-1]),
        "top1": round(metrics["top1"], 3),
        "top1_err": round(100.0 - metrics["top1"], 3),
        "top5": round(metrics["top5"], 3),
        "top5_err": round(100.0 - metrics["top5"], 3),
        "param_count": round(param_count / 1e6, 3),
        "crop_pct": eval_cfg["crop_pct"],
        "interpolation": eval_cfg["interpolation"],
    }


def load_run(run_dir: str | Path) -> tuple[nn.Module, dict[str, Any], str]:
    """A run directory's model with its final (EMA where used) weights, strict key match; returns
    ``(model, eval config, run name)``."""
    from safetensors.torch import load_file

    from fixnorm_zoo.models import create_model, eval_config
    from fixnorm_zoo.recipe import load_recipe

    run_dir = Path(run_dir)
    recipe = load_recipe(str(run_dir / "recipe.yaml"))
    weights = run_dir / "weights_ema.safetensors"
    if not weights.is_file():
        weights = run_dir / "weights.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{run_dir} has no weights.safetensors: has its training finished?")
    model = create_model(recipe)
    model.load_state_dict(load_file(str(weights)), strict=True)
    return model, eval_config(recipe), recipe.name


def load_source(source: str, *, mirror: str | Path | None = None) -> tuple[nn.Module, dict[str, Any], str]:
    """What ``fixnorm-zoo eval`` evaluates: a zoo name or ``hf-hub:`` id of a zoo repo (through the registry:
    pinned, sha256-checked), any other ``hf-hub:ORG/NAME`` (timm), or a run directory. A zoo name wins over a
    folder of the same name in the working directory; ``./NAME`` names the folder."""
    import timm
    from timm.data import resolve_data_config

    from fixnorm_zoo.errors import UnknownModelError
    from fixnorm_zoo.loading import load, pretrained_cfg_of, resolve_info

    is_path = source.startswith((".", "/")) or source.endswith("/")
    if not is_path:
        try:
            info = resolve_info(source)
        except UnknownModelError:
            if not source.startswith("hf-hub:") and not Path(source).is_dir():
                raise
        else:
            model = load(info.name, mirror=mirror)
            return model, {**pretrained_cfg_of(info), "num_classes": info.num_classes}, info.name
    if source.startswith("hf-hub:"):
        import fixnorm_zoo.architectures  # noqa: F401  (a zoo repo of a small-input model)

        model = timm.create_model(source, pretrained=True)
        cfg = resolve_data_config({}, model=model)
        cfg["num_classes"] = model.num_classes
        return model, cfg, source.removeprefix("hf-hub:")
    return load_run(Path(source))


def _batches_for(data: str, cfg: dict[str, Any], *, batch_size: int, workers: int, accelerator: Accelerator):
    """Evaluation batches with the model's own eval transform; returns (batches, disjoint_shards, num_classes)."""
    from fixnorm_zoo.errors import DataError

    if data == "fashion_mnist" or data.startswith("fashion_mnist:"):
        from fixnorm_zoo.data import InMemoryLoader, load_fashion_mnist

        data_dir = data.partition(":")[2] or None
        if tuple(cfg["input_size"]) != (1, 28, 28):
            raise DataError(
                f"Fashion-MNIST images are 1x28x28 grayscale; the model expects {tuple(cfg['input_size'])}"
            )
        x, y = load_fashion_mnist(split="test", data_dir=data_dir)
        loader = InMemoryLoader(x, y, batch_size=batch_size, mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
                                train=False, rank=accelerator.process_index, world_size=accelerator.num_processes)  # fmt: skip
        return loader, True, 10
    import torch.utils.data
    from timm.data import create_transform
    from torchvision.datasets import ImageFolder

    root = Path(data)
    folder = root / "val" if (root / "val").is_dir() else root
    if not folder.is_dir():
        raise DataError(f"evaluation data {data!r} is neither 'fashion_mnist' nor an image folder")
    transform = create_transform(input_size=tuple(cfg["input_size"]), is_training=False, crop_pct=cfg["crop_pct"],
                                 crop_mode=cfg.get("crop_mode", "center"), interpolation=cfg["interpolation"],
                                 mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))  # fmt: skip
    from fixnorm_zoo.imagenet import open_image

    mode = "L" if cfg["input_size"][0] == 1 else "RGB"
    dataset = ImageFolder(str(folder), transform=transform, loader=lambda p: open_image(p, mode))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    return accelerator.prepare(loader), False, len(dataset.classes)


def evaluate(
    source: str,
    *,
    data: str,
    batch_size: int = 256,
    workers: int = 4,
    results_csv: str | Path | None = None,
    tta: str = "none",
    mirror: str | Path | None = None,
) -> dict[str, Any]:
    """Top-1/top-5 of a zoo model, a run directory or an ``hf-hub:ORG/NAME`` model with the model's own eval transform.

    Args:
        source: a zoo name (``fixnorm_zoo.list_models()``), a run directory (``recipe.yaml`` + weights) or
            ``hf-hub:ORG/NAME``.
        data: ``fashion_mnist`` (``fashion_mnist:/dir`` for another IDX folder), or an ImageFolder root (its
            ``val/`` is used when present).
        batch_size: per-process batch size.
        workers: DataLoader workers for image folders.
        results_csv: append the row (timm's results columns) to this CSV (single-view evaluations only).
        tta: ``"flip"`` averages each image's logits with its mirror's (reported as ``tta`` in the row).
        mirror: a folder in the Hub's layout to read a zoo model's weights from (default: ``$FIXNORM_ZOO_HUB``).

    Raises:
        DataError: the data is missing, or its classes or channels do not match the model.
    """
    from accelerate import Accelerator

    from fixnorm_zoo.errors import DataError, FixNormZooError

    if tta not in TTA_MODES:
        raise FixNormZooError(f"tta={tta!r}: choose one of {TTA_MODES}")
    if tta != "none" and results_csv is not None:
        raise FixNormZooError(
            "a results CSV holds single-view rows (timm's columns, as validate.py measures them): drop the TTA "
            "option or the results CSV"
        )
    if isinstance(batch_size, bool) or batch_size < 1:
        raise FixNormZooError(f"--batch-size {batch_size}: give a positive number of images per batch")
    if results_csv is not None:
        _check_results_csv(Path(results_csv))
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model, cfg, name = load_source(source, mirror=mirror)
    batches, disjoint, num_classes = _batches_for(data, cfg, batch_size=batch_size, workers=workers,
                                                  accelerator=accelerator)  # fmt: skip
    if num_classes != cfg["num_classes"]:
        raise DataError(f"{data} has {num_classes} classes but {name} predicts {cfg['num_classes']}")
    model = model.to(accelerator.device)
    metrics = accuracy_counts(model, batches, accelerator=accelerator, disjoint_shards=disjoint, tta=tta)
    row = results_row(model_name=name, metrics=metrics, param_count=sum(p.numel() for p in model.parameters()),
                      eval_cfg=cfg)  # fmt: skip
    if results_csv is not None and accelerator.is_main_process:
        _append_results_row(Path(results_csv), row)
    return {**row, "n": metrics["n"], "tta": tta}


def _check_results_csv(path: Path) -> None:
    """Before any evaluation work: the results CSV must be a file (or creatable) with timm's columns."""
    from fixnorm_zoo.errors import FixNormZooError

    if path.is_dir():
        raise FixNormZooError(f"--results-csv {path} is a directory: name a CSV file")
    if not path.parent.is_dir():
        raise FixNormZooError(
            f"--results-csv {path}: its folder {path.parent} does not exist; create it first"
        )
    if path.is_file() and path.stat().st_size:
        with open(path, newline="") as f:
            header = f.readline().strip().split(",")
        if tuple(header) != RESULTS_COLUMNS:
            raise FixNormZooError(
                f"--results-csv {path} has the columns {header}, not timm's {list(RESULTS_COLUMNS)}: name another file"
            )


def _append_results_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row under a lock, rewriting the file atomically (two evaluations never interleave)."""
    import csv
    import io

    from fixnorm_zoo.atomic import atomic_write_text, file_lock

    with file_lock(path):
        _check_results_csv(path)
        old = path.read_text() if path.is_file() else ""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=RESULTS_COLUMNS, lineterminator="\n")
        if not old:
            writer.writeheader()
        writer.writerow(row)
        atomic_write_text(path, old + out.getvalue())
