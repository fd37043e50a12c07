"""Fashion-MNIST time-to-accuracy: run the manifest's trainings, one row each, and draw the table and figure.

    .venv/bin/python eval/fmnist_fast.py                 # run every manifest entry without a row yet
    .venv/bin/python eval/fmnist_fast.py --only ID ...   # just these
    .venv/bin/python eval/fmnist_fast.py --table         # the README's table and docs/fmnist_time_to_accuracy.png

Each run: ``fixnorm-zoo train RECIPE --set seed=S`` alone on the manifest's thread count (resumed from its last
checkpoint if it was killed), then ``fixnorm-zoo eval`` on the 10,000 test images single-view (the headline, as
timm's validate.py) and with ``--tta flip``. The row keeps the command, the minutes of the training loop (summed
per-epoch wall time, eval excluded), and for each target accuracy the minutes at the first epoch that reached it.
The per-epoch log is copied to ``eval/fmnist_fast_logs/ID.jsonl``. A finished row is never re-run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "eval" / "fmnist_fast.yaml"
RESULTS = ROOT / "eval" / "fmnist_fast.csv"
LOGS = ROOT / "eval" / "fmnist_fast_logs"
FIGURE = ROOT / "docs" / "fmnist_time_to_accuracy.png"
TARGETS = (93.0, 94.0, 95.0)
COLUMNS = ("id", "recipe", "method", "seed", "epochs", "threads", "train_min", "top1", "top5", "top1_flip",
           *(f"min_to_{t:g}" for t in TARGETS), "command", "run_dir")  # fmt: skip
CLI = [sys.executable, "-m", "fixnorm_zoo.cli"]


def _rows() -> list[dict[str, str]]:
    if not RESULTS.is_file():
        return []
    with open(RESULTS, newline="") as f:
        return list(csv.DictReader(f))


def _append(row: dict) -> None:
    from fixnorm_zoo.atomic import atomic_write_text, file_lock

    with file_lock(RESULTS):
        rows = _rows() + [row]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(RESULTS, out.getvalue())


def minutes_to(history: list[dict], target: float) -> float | None:
    """Training-loop minutes at the end of the first epoch whose test top-1 reached ``target``, else None."""
    total = 0.0
    for h in history:
        total += h["epoch_train_s"]
        if h["top1"] >= target:
            return total / 60
    return None


def _eval_top1(run_dir: Path, *, tta: str) -> tuple[float, float]:
    r = subprocess.run([*CLI, "eval", str(run_dir), "--data", "fashion_mnist", "--tta", tta], cwd=ROOT,
                       capture_output=True, text=True, check=True)  # fmt: skip
    values = dict(zip(r.stdout.splitlines()[0].split(","), r.stdout.splitlines()[1].split(","), strict=True))
    return float(values["top1"]), float(values["top5"])


def run_one(entry: dict, *, threads: int) -> dict:
    run_dir = Path("runs") / "fast" / entry["id"]
    sets = [f"seed={entry['seed']}"] + [f"{k}={v}" for k, v in (entry.get("set") or {}).items()]
    args = ["train", entry["recipe"], *(a for s in sets for a in ("--set", s)), "--output", str(run_dir)]
    command = f"OMP_NUM_THREADS={threads} fixnorm-zoo " + " ".join(args)
    if not (ROOT / run_dir / "summary.json").is_file():
        resume = ["--resume"] if (ROOT / run_dir / "checkpoints" / "latest").is_file() else []
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        print(f"$ {command}", flush=True)
        subprocess.run([*CLI, *args, "--no-progress", *resume], cwd=ROOT, env=env, check=True)
    summary = json.loads((ROOT / run_dir / "summary.json").read_text())
    history = [json.loads(line) for line in (ROOT / run_dir / "log.jsonl").read_text().splitlines()]
    LOGS.mkdir(exist_ok=True)
    shutil.copyfile(ROOT / run_dir / "log.jsonl", LOGS / f"{entry['id']}.jsonl")
    top1, top5 = _eval_top1(run_dir, tta="none")
    top1_flip, _ = _eval_top1(run_dir, tta="flip")
    row = {"id": entry["id"], "recipe": entry["recipe"], "method": summary["method"], "seed": entry["seed"],
           "epochs": summary["epochs"], "threads": threads, "train_min": round(summary["train_time_s"] / 60, 2),
           "top1": top1, "top5": top5, "top1_flip": top1_flip, "command": command, "run_dir": str(run_dir)}  # fmt: skip
    for t in TARGETS:
        m = minutes_to(history, t)
        row[f"min_to_{t:g}"] = "" if m is None else round(m, 2)
    return row


def table() -> str:
    """Markdown: per method, mean ± std over seeds of top-1 (single view and flip) and minutes to each target."""
    rows = _rows()
    by_method: dict[str, list[dict]] = {}
    for r in rows:
        by_method.setdefault(r["method"], []).append(r)

    def stat(values: list[float]) -> str:
        if not values:
            return "-"
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} ± {sd:.2f}"

    head = ["method", "seeds", "test top-1 %", "flip TTA top-1 %", "train minutes",
            *(f"minutes to {t:g}%" for t in TARGETS)]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, rs in sorted(by_method.items()):
        cells = [method, str(len(rs)), stat([float(r["top1"]) for r in rs]),
                 stat([float(r["top1_flip"]) for r in rs]), stat([float(r["train_min"]) for r in rs])]  # fmt: skip
        for t in TARGETS:
            reached = [float(r[f"min_to_{t:g}"]) for r in rs if r[f"min_to_{t:g}"]]
            cells.append(
                f"{stat(reached)} ({len(reached)}/{len(rs)} seeds)"
                if reached
                else f"not reached (0/{len(rs)})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure() -> None:
    from fixnorm_zoo.plots import plot_time_to_accuracy

    histories: dict[str, list[list[dict]]] = {}
    for r in _rows():
        log = LOGS / f"{r['id']}.jsonl"
        label = {"fixnorm": "FixNorm", "wd": "weight decay"}.get(r["method"], r["method"])
        histories.setdefault(label, []).append([json.loads(x) for x in log.read_text().splitlines()])
    plot_time_to_accuracy(histories, FIGURE, targets=TARGETS[:2], ylim=(88, 95.5),
                          title="Fashion-MNIST resnet9s: test top-1 vs training time (3 seeds each)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these manifest ids")
    ap.add_argument("--table", action="store_true", help="print the table and draw the figure; run nothing")
    args = ap.parse_args()
    if args.table:
        print(table())
        figure()
        print(f"wrote {FIGURE.relative_to(ROOT)}")
        return
    manifest = yaml.safe_load(MANIFEST.read_text())
    done = {r["id"] for r in _rows()}
    for entry in manifest["runs"]:
        if entry["id"] in done or (args.only and entry["id"] not in args.only):
            continue
        row = run_one(entry, threads=int(entry.get("threads", manifest.get("threads", 2))))
        _append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
