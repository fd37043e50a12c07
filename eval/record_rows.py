"""The experiment record's table (eval/results.csv): its paths and columns, reading and appending rows, and the
times to a target accuracy read from a run's per-epoch log. Shared by the runner, the tables and the figures."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixnorm_zoo.utils.atomic import append_csv_rows  # noqa: E402

MANIFEST = ROOT / "eval" / "manifest.yaml"
RESULTS = ROOT / "eval" / "results.csv"
LOGS = ROOT / "eval" / "logs"
TUNER = ROOT / "eval" / "tuner"
README = ROOT / "README.md"
PAGES = (README, *sorted((ROOT / "docs").glob("*.md")))
"""The pages whose ``record:`` blocks are generated: the README and the docs pages it links."""
TARGETS = (93, 94, 95)
COLUMNS = (
    "id",
    "group",
    "kind",
    "recipe",
    "method",
    "seed",
    "set",
    "split",
    "epochs",
    "threads",
    "train_min",
    "top1",
    "top5",
    "top1_flip",
    *(f"min_to_{t}" for t in TARGETS),
    "proxy_top1",
    "status",
    "command",
    "run_dir",
    "log",
    # the budget unit that survives a change of machine: training seconds / the yardstick's reference-epoch
    # seconds, measured in the same `record.py run` invocation, alone, before the runs
    "train_s",
    "ref_epoch_s",
    "ref_epochs",
    *(f"ref_epochs_to_{t}" for t in TARGETS),
    "cpu",
    "code_revision",
)
YARDSTICK = Path(
    os.environ.get("FIXNORM_YARDSTICK", ROOT.parent / "shared" / "yardstick" / "reference_epoch.py")
)
YARDSTICK_LOG = ROOT / "eval" / "yardstick.csv"
YARDSTICK_COLUMNS = ("measured_at", "cpu", "threads", "ref_epoch_s", "output")
CLI = [sys.executable, "-m", "fixnorm_zoo.cli"]
PUBLIC = {"resnet18": ("ResNet18", 94.9), "mobilenetv2_050": ("MobileNet", 95.0)}


# -- the table ----------------------------------------------------------------------------------------------------


def read_rows(path: Path = RESULTS) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def append_rows(new: list[dict[str, Any]], path: Path = RESULTS) -> None:
    """Append rows under a lock, rewriting the file atomically (a kill never leaves half a row)."""
    append_csv_rows(path, new, columns=COLUMNS)


def minutes_to(history: list[dict[str, Any]], target: float) -> float | None:
    """Training-loop minutes at the end of the first epoch whose test top-1 reached ``target``, else None."""
    total = 0.0
    for h in history:
        total += h["epoch_train_s"]
        if h["top1"] >= target:
            return total / 60
    return None


def seconds_to(history: list[dict[str, Any]], target: float) -> float | None:
    """Training-loop seconds at the end of the first epoch whose test top-1 reached ``target``, else None."""
    minutes = minutes_to(history, target)
    return None if minutes is None else minutes * 60


def epochs_to(history: list[dict[str, Any]], target: float) -> int | None:
    """The first epoch whose test top-1 reached ``target``, else None: the machine-independent twin of
    :func:`minutes_to` (the same computation ran at 811 to 1136 img/s on this machine on different days)."""
    return next((h["epoch"] for h in history if h["top1"] >= target), None)


def history_of(row: dict[str, str]) -> list[dict[str, Any]]:
    """A row's per-epoch log (eval/logs/ID.jsonl)."""
    return [json.loads(x) for x in (ROOT / row["log"]).read_text().splitlines() if x.strip()]
