"""Full runs at chosen points of a Fashion-MNIST recipe, each next to its proxy score (issue 5's premise: does the
tuner's 1-epoch proxy rank points as full runs do?). One loop for both result files:

- ``eval/tuner/full_runs.csv``: points of a zoo recipe (proxy score from that recipe's own trial log, blank where
  the tuner never tried the point, e.g. a point with ``invariant_norm`` or ``epochs`` set):
      .venv/bin/python eval/fmnist_proxy_check.py resnet18_wd weight_decay=0.001,lr=0.1
- ``eval/tuner/grid_full_runs.csv``: points of the tuner's reference grid, with the grid's model and seed:
      .venv/bin/python eval/fmnist_proxy_check.py resnet18_fixnorm --grid fc_norm=4,lr=0.1 fc_norm=32,lr=0.8

A point is ``KNOB=V[,KNOB=V...]``: any recipe fields, passed to ``fixnorm-zoo train`` as ``--set``s. Each run is the
command in its row's ``command`` column, scored on the 10,000-image test set. Resumable: a point whose row exists is
skipped, a killed run resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixnorm_zoo.tuning import param_key  # noqa: E402

COLUMNS = ("recipe", "point", "proxy_top1", "top1", "top5", "train_time_s", "run_dir", "command")
GRID = {
    # bench/tuner_grid.sh recorded the grid with the stride-32 ResNet (before the small-input variant), seed 0
    "sets": ["model_args.output_stride=32", "seed=0"],
    "trials": "eval/tuner/grid_resnet18_fixnorm_trials.jsonl",
    "out": "eval/tuner/grid_full_runs.csv",
    "runs": "runs/grid_full",
}


def parse_point(point: str) -> dict[str, str]:
    """``"fc_norm=4,lr=0.1"`` -> ``{"fc_norm": "4", "lr": "0.1"}``; values stay strings for ``--set``."""
    pairs = [kv.partition("=") for kv in point.split(",")]
    bad = [k for k, sep, v in pairs if not sep or not k or not v]
    if bad:
        raise SystemExit(f"point {point!r}: expected KNOB=V[,KNOB=V...], e.g. fc_norm=4,lr=0.1")
    return {k: v for k, _, v in pairs}


def proxy_score(trials: Path, point: dict[str, str]) -> float | None:
    """The proxy top-1 the tuner recorded for exactly this point, if it tried it."""
    if not trials.is_file():
        return None
    key = param_key({k: float(v) for k, v in point.items()})
    records = [json.loads(x) for x in trials.read_text().splitlines()[1:] if x.strip()]
    return next((r["score"] for r in records if r["trial"] == key and r["status"] == "ok"), None)


def run_point(*, recipe: str, point: str, base_sets: list[str], trials: Path, runs: Path, out: Path) -> None:
    params = parse_point(point)
    run_dir = runs / f"{recipe}_{point.replace('=', '_').replace(',', '_')}"
    sets = [*base_sets, *(f"{k}={v}" for k, v in params.items())]
    command = ["fixnorm-zoo", "train", f"fashion_mnist/{recipe}", *(a for s in sets for a in ("--set", s))]
    if out.is_file():
        with open(out) as f:
            if any(r["run_dir"] == str(run_dir) for r in csv.DictReader(f)):
                print(f"{point}: row exists in {out}, skipped")
                return
    if not (run_dir / "summary.json").is_file():
        resume = ["--resume"] if (run_dir / "checkpoints").is_dir() else []
        print(shlex.join(command), flush=True)
        subprocess.run([sys.executable, "-m", "fixnorm_zoo.cli", *command[1:], "--output", str(run_dir),
                        "--no-progress", *resume], check=True)  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    proxy = proxy_score(trials, params)
    row = {"recipe": recipe, "point": param_key({k: float(v) for k, v in params.items()}),
           "proxy_top1": "" if proxy is None else proxy, "top1": summary["top1"], "top5": summary["top5"],
           "train_time_s": summary["train_time_s"], "run_dir": str(run_dir), "command": shlex.join(command)}  # fmt: skip
    new = not out.is_file()
    with open(out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(f"{point}: top-1 {summary['top1']:.2f} (proxy {row['proxy_top1'] or '-'}) -> {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", help="a recipe under recipes/fashion_mnist, e.g. resnet18_fixnorm")
    ap.add_argument("points", nargs="+", metavar="KNOB=V[,KNOB=V...]")
    ap.add_argument(
        "--grid", action="store_true", help="points of the reference grid: its model, seed and files"
    )
    args = ap.parse_args()
    for point in args.points:  # all of them before the first run: a typo fails now, not hours later
        parse_point(point)
    os.chdir(ROOT)  # run dirs and result files are relative to the repository, as their rows record them
    if args.grid:
        base_sets, trials, out, runs = GRID["sets"], GRID["trials"], GRID["out"], GRID["runs"]
    else:
        base_sets, trials = [], f"eval/tuner/{args.recipe}_trials.jsonl"
        out, runs = "eval/tuner/full_runs.csv", "runs/proxy_check"
    for point in args.points:
        run_point(recipe=args.recipe, point=point, base_sets=base_sets, trials=Path(trials), runs=Path(runs),
                  out=Path(out))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
