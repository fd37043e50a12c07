"""Bring every published repo folder of the release (zoo_mirror/ORG/NAME) up to what `fixnorm-zoo publish` writes
today, without retraining or touching the weights: the files that trace the number and a card from the current
template.

Why: repos published before those files existed carry only weights, config and card, and their cards predate the
template (no eval setting in the metadata, no input format, no validate.py line, no seed spread, the twin under its
recipe's name). Each folder is checked first (its weights' sha256 is the registry's); then, only where missing:

- `train_hparams.yaml`: the recipe as run, from the card's own "as run" block (the run folder is not kept);
- `log.jsonl`: the run's per-epoch log kept in eval/logs/ (the results row of this number names it; its last
  epoch's top-1 must equal the registry's);
- `results.csv` and `provenance.json`: a fresh re-evaluation of the published weights through `fixnorm_zoo.zoo.evaluate`,
  which must reproduce the registry's top-1 (the gate publish applies); the training's own provenance predates the
  record and says so.

Then the figures are drawn again from the logs the folders carry (`curves.png`; `fixnorm_vs_wd.png` from the pair's
two logs) and the card (README.md) is rendered again from those files and the registry entry (its zoo name, its twin
by name, its seed spread). Run tools/model_cards.py afterwards to copy the cards into model_cards/. `--check`
compares the text files only: a figure's bytes depend on the matplotlib version that drew it.

    .venv/bin/python tools/refresh_release.py [--release zoo_mirror] [--check]   # --check: exit 1 if anything would change
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "eval" / "results.csv"
GATE = 0.1  # top-1 points a re-evaluation may differ from the registry's (publish's default tolerance)


def _hparams_from_card(info, card: str) -> str:
    block = re.search(r"as run \(.*?\n\n```yaml\n(.*?)```", card, re.S)
    if block is None:
        raise SystemExit(
            f"error: {info.name}: its card has no 'as run' recipe block to take train_hparams.yaml from"
        )
    return block.group(1)


def _results_row(info, seed: int) -> dict[str, str]:
    """The results row that recorded this entry's number: its recipe's training run at the card's seed."""
    with open(RESULTS, newline="") as f:
        rows = [
            r
            for r in csv.DictReader(f)
            if (r["kind"], r["recipe"], r["seed"], r["status"]) == ("train", info.recipe, str(seed), "ok")
            and r["log"]
            and float(r["top1"]) == info.top1
        ]
    if len(rows) != 1:
        raise SystemExit(
            f"error: {info.name}: {len(rows)} results rows match its recipe, seed {seed} and top-1"
        )
    return rows[0]


def _twin_row(twin) -> dict[str, str] | None:
    """The card's row of the twin, under its zoo name, with its published numbers."""
    if twin is None:
        return None
    return {
        "name": f"{twin.name} ({twin.method})",
        "top1": f"{twin.top1:.2f}",
        "top5": f"{twin.top5:.2f}",
        "note": "the twin's published result, same recipe and budget",
    }


def _redraw(info, folder: Path, twin, release: Path) -> list[str]:
    """Draw the folder's figures again from the logs it carries (the run's curves; FixNorm against the twin, FixNorm
    first so both cards of a pair use the same colours); return the names whose bytes changed."""
    import tempfile

    from fixnorm_zoo.engine.rundir import RunDir
    from fixnorm_zoo.plots import method_pair, plot_comparison, plot_curves
    from fixnorm_zoo.utils.atomic import atomic_write_bytes
    from fixnorm_zoo.zoo.hub import mirror_repo_dir

    changed = []
    with tempfile.TemporaryDirectory() as tmp:
        drawn = Path(tmp)
        plot_curves(RunDir(folder).read_history(), drawn / "curves.png", title=f"{info.name} ({info.method})")
        if twin is not None:
            pair = {
                info.method: RunDir(folder).read_history(),
                twin.method: RunDir(mirror_repo_dir(release, twin.hub.repo_id)).read_history(),
            }
            plot_comparison(
                method_pair(pair),
                drawn / "fixnorm_vs_wd.png",
                title=f"{info.name}: FixNorm vs weight decay",
            )
        for figure in sorted(drawn.iterdir()):
            target = folder / figure.name
            if not target.is_file() or target.read_bytes() != figure.read_bytes():
                atomic_write_bytes(target, figure.read_bytes(), mode=0o644)
                changed.append(figure.name)
    return changed


def _measure(info, release: Path, row: dict[str, str]) -> tuple[dict, dict]:
    """Re-evaluate the published weights (publish's gate) and say where the measurement and the training ran."""
    from fixnorm_zoo.engine.metrics import RESULTS_COLUMNS
    from fixnorm_zoo.utils.provenance import provenance
    from fixnorm_zoo.zoo.evaluate import evaluate

    measured = evaluate(info.name, data=info.dataset, mirror=release)
    if abs(measured["top1"] - info.top1) > GATE:
        raise SystemExit(
            f"error: {info.name}: re-evaluated top-1 {measured['top1']:.2f} is not the registry's {info.top1:.2f}"
        )
    record = {
        "training": None,
        "training_threads": int(row["threads"]),
        "train_time_s": round(float(row["train_min"]) * 60, 1),
        "num_processes": 1,
        "evaluation": provenance(),
        "note": (
            f"The training run (`{row['id']}` in the fixnorm_zoo repository's eval/results.csv) predates the provenance "
            "record: its code revision, library versions and hardware were not kept; `evaluation` is where these "
            "weights were measured again for this folder."
        ),
    }
    return {c: measured[c] for c in RESULTS_COLUMNS}, record


def refresh(info, *, release: Path, registry, check: bool) -> list[str]:
    """Bring one published folder up to date; return the names of the files written (or, with ``check``, that would
    be)."""
    from fixnorm_zoo.recipe import load_recipe
    from fixnorm_zoo.utils.atomic import atomic_write_text
    from fixnorm_zoo.zoo.cards import render_repo_card
    from fixnorm_zoo.zoo.hub import WEIGHTS_FILE, mirror_repo_dir, sha256_file
    from fixnorm_zoo.zoo.publish import write_measurement_files

    folder = mirror_repo_dir(release, info.hub.repo_id)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file() or sha256_file(weights) != info.hub.sha256:
        raise SystemExit(
            f"error: {info.name}: {weights} is missing or not the registry's sha256: publish it again"
        )
    missing = [
        n
        for n in ("train_hparams.yaml", "log.jsonl", "results.csv", "provenance.json")
        if not (folder / n).is_file()
    ]
    if check and missing:
        return [*missing, "README.md"]
    if missing:
        hparams = _hparams_from_card(info, (folder / "README.md").read_text())
        if "train_hparams.yaml" in missing:
            atomic_write_text(folder / "train_hparams.yaml", hparams, mode=0o644)
        recipe = load_recipe(str(folder / "train_hparams.yaml"))
        if (recipe.model, recipe.method, recipe.model_args) != (
            info.architecture,
            info.method,
            info.model_args,
        ):
            raise SystemExit(
                f"error: {info.name}: {folder / 'train_hparams.yaml'} is not this entry's recipe"
            )
        row = _results_row(info, recipe.seed)
        if "log.jsonl" in missing:
            log = (ROOT / row["log"]).read_text()
            last = json.loads(log.strip().splitlines()[-1])
            if abs(last["top1"] - info.top1) > 1e-6:
                raise SystemExit(
                    f"error: {info.name}: {row['log']} ends at top-1 {last['top1']}, not {info.top1}"
                )
            atomic_write_text(folder / "log.jsonl", log, mode=0o644)
        if "results.csv" in missing or "provenance.json" in missing:
            measured, record = _measure(info, release, row)
            write_measurement_files(folder, measured=measured, record=record)
    twin = registry.twin_of(info.name)
    twin = (
        twin if twin is not None and twin.status == "published" else None
    )  # a twin with numbers and a folder
    figures = (
        [] if check else _redraw(info, folder, twin, release)
    )  # figures: only when writing (see the doc)
    card = render_repo_card(
        folder,
        name=info.name,
        repo_id=info.hub.repo_id,
        recipe_ref=info.recipe,
        eval_split=info.eval_split or "test",
        eval_data=info.dataset,
        gmacs=info.gmacs,
        paper_top1=info.paper_top1,
        twin=_twin_row(twin),
        license=info.license,
        notes=info.notes,
    )
    if (folder / "README.md").read_text() == card:
        return [*missing, *figures]
    if not check:
        atomic_write_text(folder / "README.md", card)
    return [*missing, *figures, "README.md"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--release", default=str(ROOT / "zoo_mirror"), help="the release folder (default zoo_mirror)"
    )
    ap.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if any folder is not up to date"
    )
    args = ap.parse_args()
    from fixnorm_zoo.zoo.registry import REGISTRY_FILE, Registry

    registry = Registry(REGISTRY_FILE)
    stale = {}
    for info in registry.models():
        if info.status == "published":
            changed = refresh(info, release=Path(args.release), registry=registry, check=args.check)
            if changed:
                stale[info.name] = changed
                if not args.check:
                    print(f"{info.name}: wrote {', '.join(changed)}")
    if args.check and stale:
        print(f"release folders out of date: {stale}: run tools/refresh_release.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
