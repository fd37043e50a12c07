"""``fixnorm-zoo eval``: a zoo model, run directory or ``hf-hub:`` model on Fashion-MNIST or an image folder, with
the model's own eval transform (the counting itself is ``metrics.accuracy_counts``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fixnorm_zoo.engine.metrics import (
    TTA_MODES,
    accuracy_counts,
    append_results_row,
    check_results_csv,
    results_row,
)
from fixnorm_zoo.engine.rundir import RunDir
from fixnorm_zoo.errors import DataError, ResultsNotSaved, UsageError

if TYPE_CHECKING:
    from accelerate import Accelerator
    from torch import nn


def load_run(run_dir: str | Path) -> tuple[nn.Module, dict[str, Any], str]:
    """A run directory's model with its final (EMA where used) weights, strict key match; returns
    ``(model, eval config, run name)``."""
    from safetensors.torch import load_file

    from fixnorm_zoo.data.transforms import eval_config
    from fixnorm_zoo.models.build import model_from_recipe
    from fixnorm_zoo.recipe import load_recipe

    run_dir = Path(run_dir)
    run = RunDir(run_dir)
    recipe = load_recipe(str(run.recipe_file))
    weights = run.final_weights()
    if weights is None:
        raise FileNotFoundError(f"{run_dir} has no weights.safetensors: has its training finished?")
    model = model_from_recipe(recipe)
    from safetensors import SafetensorError

    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except (
        SafetensorError,
        RuntimeError,
    ) as e:  # a damaged file, or tensors that are not this recipe's model's
        first = " ".join(str(e).split())[:300]
        raise DataError(
            f"{weights} cannot be loaded into the model of {run.recipe_file} ({type(e).__name__}: {first}): the "
            "file is damaged or from another run; train the run again or restore its weights"
        ) from None
    return model, eval_config(recipe), recipe.name


def load_source(source: str, *, mirror: str | Path | None = None) -> tuple[nn.Module, dict[str, Any], str]:
    """What ``fixnorm-zoo eval`` evaluates: a zoo name or ``hf-hub:`` id of a zoo repo (through the registry:
    pinned, sha256-checked), any other ``hf-hub:ORG/NAME`` (timm), or a run directory. A zoo name wins over a
    folder of the same name in the working directory; ``./NAME`` names the folder."""
    import timm
    from timm.data import resolve_data_config

    from fixnorm_zoo.errors import UnknownModelError
    from fixnorm_zoo.zoo.pretrained import load, pretrained_cfg_of, resolve_info

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
        import fixnorm_zoo.models.resnet9s  # noqa: F401  (a zoo repo of a small-input model)
        from fixnorm_zoo.zoo.hub import check_repo_id

        check_repo_id(
            source.removeprefix("hf-hub:").split("@")[0]
        )  # a malformed id: one line, not timm's traceback
        model = timm.create_model(source, pretrained=True)
        cfg = resolve_data_config({}, model=model)
        cfg["num_classes"] = model.num_classes
        return model, cfg, source.removeprefix("hf-hub:")
    return load_run(Path(source))


def _batches_for(data: str, cfg: dict[str, Any], *, batch_size: int, workers: int, accelerator: Accelerator):
    """Evaluation batches with the model's own eval transform; returns (batches, disjoint_shards, num_classes)."""

    if data == "fashion_mnist" or data.startswith("fashion_mnist:"):
        from fixnorm_zoo.data.fashion_mnist import InMemoryLoader, fit_to_model, load_fashion_mnist

        data_dir = data.partition(":")[2] or None
        x, y = load_fashion_mnist(split="test", data_dir=data_dir)
        x = fit_to_model(
            x,
            input_size=cfg["input_size"],
            crop_pct=float(cfg["crop_pct"]),
            interpolation=cfg["interpolation"],
        )
        loader = InMemoryLoader(
            x,
            y,
            batch_size=batch_size,
            mean=tuple(cfg["mean"]),
            std=tuple(cfg["std"]),
            train=False,
            rank=accelerator.process_index,
            world_size=accelerator.num_processes,
        )
        return loader, True, 10
    import torch.utils.data
    from torchvision.datasets import ImageFolder

    from fixnorm_zoo.data.transforms import eval_transform

    root = Path(data)
    folder = root / "val" if (root / "val").is_dir() else root
    if not folder.is_dir():
        raise DataError(f"evaluation data {data!r} is neither 'fashion_mnist' nor an image folder")
    transform = eval_transform(cfg)
    from fixnorm_zoo.data.imagenet import open_image

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
    accelerator=None,
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
        accelerator: an ``accelerate.Accelerator`` to evaluate with (as :func:`fixnorm_zoo.engine.train.train` takes one);
            default: a new one (CPU processes all-reduce over gloo).

    Raises:
        DataError: the data is missing, or its classes or channels do not match the model.
        UsageError: an unknown ``tta``, TTA with a results CSV, a batch size or worker count out of range.
        OutputError: ``results_csv`` is a folder, sits in a missing folder or has other columns.
    """
    from accelerate import Accelerator

    from fixnorm_zoo.errors import DataError

    if tta not in TTA_MODES:
        raise UsageError(f"tta={tta!r}: choose one of {TTA_MODES}")
    if tta != "none" and results_csv is not None:
        raise UsageError(
            "a results CSV holds single-view rows (timm's columns, as validate.py measures them): drop the TTA "
            "option or the results CSV"
        )
    if isinstance(batch_size, bool) or batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: give a positive number of images per batch")
    if isinstance(workers, bool) or workers < 0:
        raise UsageError(f"--workers {workers}: give 0 (load in this process) or a positive number")
    if results_csv is not None:
        check_results_csv(Path(results_csv))
    if accelerator is None:
        accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model, cfg, name = load_source(source, mirror=mirror)
    batches, disjoint, num_classes = _batches_for(
        data, cfg, batch_size=batch_size, workers=workers, accelerator=accelerator
    )
    if num_classes != cfg["num_classes"]:
        raise DataError(f"{data} has {num_classes} classes but {name} predicts {cfg['num_classes']}")
    model = model.to(accelerator.device)
    metrics = accuracy_counts(model, batches, accelerator=accelerator, disjoint_shards=disjoint, tta=tta)
    row = results_row(
        model_name=name, metrics=metrics, param_count=sum(p.numel() for p in model.parameters()), eval_cfg=cfg
    )
    if results_csv is not None and accelerator.is_main_process:
        try:
            append_results_row(Path(results_csv), row)
        except OSError as e:  # the measurement is done: say it, then what went wrong with the file
            raise ResultsNotSaved(
                f"measured top-1 {row['top1']} top-5 {row['top5']} ({name}, {metrics['n']} images), but the row "
                f"could not be written to {results_csv} ({e.strerror or e}): free space or pick a writable file, "
                "then evaluate again"
            ) from None
    return {**row, "n": metrics["n"], "tta": tta}
