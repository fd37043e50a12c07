"""Top-1/top-5 accuracy, counting every evaluation image exactly once across processes, and rows in timm's results
CSV columns (checked, then appended under a lock)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fixnorm_zoo.errors import DataError, OutputError, UsageError
from fixnorm_zoo.utils.atomic import (
    append_csv_rows,
    check_writable_target,
    fault_point,
)

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
        raise UsageError(f"tta={tta!r}: choose one of {TTA_MODES}")
    was_training = model.training
    model.eval()
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    counts = torch.zeros(3, dtype=torch.float64, device=device)  # top1, top5, n
    try:
        for x, y in batches:
            fault_point("eval:batch")  # where the fault tests interrupt an evaluation
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
        raise DataError("evaluation saw no images: the evaluation set is empty")
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


def check_results_csv(path: Path) -> None:
    """Before any evaluation work: the results CSV must be a regular file (or creatable) with timm's columns; a
    symlink, device or FIFO is refused, never replaced."""
    if path.is_dir():
        raise OutputError(f"--results-csv {path} is a directory: name a CSV file")
    try:
        check_writable_target(path)
    except FileExistsError as e:
        raise OutputError(f"--results-csv: {e}") from None
    if not path.parent.is_dir():
        raise OutputError(f"--results-csv {path}: its folder {path.parent} does not exist; create it first")
    if path.is_file() and path.stat().st_size:
        with open(path, newline="") as f:
            header = f.readline().strip().split(",")
        if tuple(header) != RESULTS_COLUMNS:
            raise OutputError(
                f"--results-csv {path} has the columns {header}, not timm's {list(RESULTS_COLUMNS)}: name another file"
            )


def append_results_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row under a lock, rewriting the file atomically (two evaluations never interleave)."""
    append_csv_rows(path, [row], columns=RESULTS_COLUMNS, check=check_results_csv)
