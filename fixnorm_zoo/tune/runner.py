"""The few-trial FixNorm tuner: peak LR and ``fc_norm`` searched one after the other on short proxy runs.

Why this works: with FixNorm the invariant weights' effective LR is set by the LR alone and the classifier's logit
scale by ``fc_norm`` alone, and the two interact weakly, so the search (``search.search_fixnorm``) walks one knob
at a time. The weight-decay twin gets the same search over (``weight_decay``, ``lr``) so that comparisons are fair.

Every trial is a normal run of the training engine (so trials also run under ``torchrun``/``accelerate launch``)
scored on a held-out part of the training set, never on the test set. Trials are appended to ``trials.jsonl`` as
they finish; re-running the same command replays the log (the searches are deterministic given it) and continues
without repeating a finished trial. A diverged or failed trial is recorded and scores as the worst.

The strategies themselves live in ``search.py``, pure: ``bench/tuner.py`` runs the very same code against a
recorded dense grid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from fixnorm_zoo.errors import CorruptFile, OutputError, RecipeError, TrainingDiverged
from fixnorm_zoo.tune.strategies import Params, Space, lattice, param_key, run_search

KNOBS = {"fixnorm": ("fc_norm", "lr"), "wd": ("weight_decay", "lr")}
"""The knobs each method tunes, in search order (the regularizer first, then the LR)."""
TRIALS_FILE = "trials.jsonl"
DEFAULT_CENTRES = {"fc_norm": 8.0, "weight_decay": 5e-4}


def default_space(recipe, *, span: int = 4) -> Space:
    """A log lattice (factor 2, ``span`` steps either side) around the recipe's own values."""
    space = {}
    for knob in KNOBS[recipe.method]:
        centre = getattr(recipe, knob) or DEFAULT_CENTRES[knob]
        space[knob] = lattice(centre, span=span)
    return space


# ---------------------------------------------------------------------------------------------- trials


def proxy_overrides(recipe, *, proxy_epochs: float, proxy_subset: int | None, holdout: int) -> dict[str, Any]:
    """The fields that turn a recipe into its proxy: fewer epochs (warmup scaled alike), optionally fewer images,
    and a held-out split of the training set as the score (Fashion-MNIST)."""
    if not math.isfinite(proxy_epochs) or proxy_epochs <= 0:
        raise RecipeError(f"proxy_epochs={proxy_epochs!r}: must be a finite number > 0")
    if proxy_subset is not None and proxy_subset <= 0:
        raise RecipeError(f"proxy_subset={proxy_subset!r}: must be a positive number of images, or None")
    epochs = max(1, round(proxy_epochs))
    overrides: dict[str, Any] = {
        "epochs": epochs,
        "warmup_epochs": recipe.warmup_epochs * epochs / recipe.epochs,
        "keep_last": 1,
    }
    if recipe.dataset == "fashion_mnist":
        overrides["holdout"] = holdout
    if proxy_subset:
        overrides["train_subset"] = proxy_subset
    return overrides


class TrialLog:
    """``trials.jsonl``: one JSON line per finished trial (appended and fsynced), plus a first ``meta`` line that
    pins what the trials mean (recipe, method, proxy) so a log is never continued with different settings."""

    def __init__(self, path: Path, meta: dict[str, Any], *, writer: bool = True) -> None:
        self.path = path
        self.writer = writer  # under torchrun/accelerate every rank runs the search; the main process writes
        self.records: dict[str, dict[str, Any]] = {}
        if path.exists():
            lines = []
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CorruptFile(
                        f"{path} line {number} is not a JSON record ({e.msg}): restore the log, or delete that line "
                        "to run its trial again"
                    ) from None
                if not isinstance(record, dict) or (
                    lines and not {"trial", "params", "status"} <= set(record)
                ):
                    raise CorruptFile(
                        f"{path} line {number} is not a trial record: restore the log, or delete that line to run its "
                        "trial again"
                    )
                lines.append(record)
            written = lines[0].get("meta") if lines else None
            if isinstance(written, dict) and "recipe_sha256" not in written:  # a log from before the hash pin
                meta = {k: v for k, v in meta.items() if k != "recipe_sha256"}
            if lines and written != meta:
                raise OutputError(
                    f"{path} was written for other settings ({lines[0].get('meta')}); use another --output"
                )
            self.records = {r["trial"]: r for r in lines[1:]}
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"meta": meta})  # main process only

    def _append(self, record: dict[str, Any]) -> None:
        if not self.writer:
            return
        from fixnorm_zoo.utils.atomic import atomic_write_text, file_lock

        with file_lock(self.path):  # the whole log rewritten atomically: a kill never leaves half a line
            old = self.path.read_text() if self.path.exists() else ""
            atomic_write_text(self.path, old + json.dumps(record) + "\n")

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["trial"]] = record
        self._append(record)


def _score(record: dict[str, Any]) -> float:
    return record["score"] if record.get("status") == "ok" else -math.inf


def _run_trial(
    recipe, params: Params, proxy: dict[str, Any], run_dir: Path, *, accelerator, progress: bool
) -> dict[str, Any]:
    """One proxy run of the engine on the tuner's shared accelerator; a failure is recorded, not raised."""
    from fixnorm_zoo.engine.rundir import RunDir
    from fixnorm_zoo.engine.train import train
    from fixnorm_zoo.recipe import load_recipe

    record: dict[str, Any] = {"trial": param_key(params), "params": params}
    t0 = time.perf_counter()
    try:
        trial_recipe = load_recipe(recipe.to_dict(), overrides={**proxy, **params})
        # a trial killed half-way continues from its last complete checkpoint, or starts over without one
        resume = RunDir(run_dir).latest_checkpoint() is not None
        if not resume and run_dir.exists() and accelerator.is_main_process:
            shutil.rmtree(run_dir, ignore_errors=True)
        accelerator.wait_for_everyone()
        summary = train(
            trial_recipe, output_dir=run_dir, accelerator=accelerator, resume=resume, progress=progress
        )
        record.update(status="ok", score=summary["top1"], top5=summary["top5"])
    except TrainingDiverged as e:
        record.update(status="diverged", score=None, error=str(e).splitlines()[0])
    except RecipeError as e:
        record.update(status="failed", score=None, error=str(e))
    finally:
        accelerator.free_memory()  # drop the trial's model and optimizer from the shared accelerator
    record["time_s"] = round(time.perf_counter() - t0, 1)
    return record


def tune(
    recipe,
    *,
    trials: int,
    output_dir: str | Path,
    strategy: str = "fixnorm",
    proxy_epochs: float = 1,
    proxy_subset: int | None = None,
    holdout: int = 10000,
    space: Space | None = None,
    seed: int = 0,
    progress: bool = True,
    recipe_ref: str | None = None,
    extra_sets: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """Search ``recipe``'s knobs with at most ``trials`` proxy runs; return the best point and where things went.

    ``extra_sets``: the ``--set KEY=VALUE`` overrides the recipe was loaded with, repeated in ``best.yaml``'s train
    command so that it trains what was tuned.

    Writes into ``output_dir``: ``trials.jsonl`` (every trial, as it finishes), ``trials.csv`` (the table),
    ``best.yaml`` (the winning overrides), ``trials.png`` (the searched points, colour = score), and one run
    directory per trial under ``runs/``.
    """
    from fixnorm_zoo.recipe import Recipe

    if not isinstance(recipe, Recipe):
        raise TypeError("recipe must be a loaded Recipe (fixnorm_zoo.recipe.load_recipe)")
    if trials < 1:
        raise RecipeError(f"trials={trials!r}: must be >= 1")
    knobs = KNOBS[recipe.method]
    space = space or default_space(recipe)
    unknown = set(space) - set(knobs)
    if unknown:
        raise RecipeError(
            f"search space knobs {sorted(unknown)}: method {recipe.method!r} tunes {list(knobs)}"
        )
    space = {k: sorted(space.get(k) or default_space(recipe)[k]) for k in knobs}
    proxy = proxy_overrides(recipe, proxy_epochs=proxy_epochs, proxy_subset=proxy_subset, holdout=holdout)
    out = Path(output_dir)
    start = {k: getattr(recipe, k) or DEFAULT_CENTRES.get(k) for k in knobs}
    # the start point is part of what a log means: the search is deterministic given it, so a log is replayed
    # exactly only from the same start (a recipe that now holds the tuned values would start another search)
    # the resolved recipe (every field but the tuned knobs and the engine's logging/worker settings) is pinned by
    # its hash: re-running into the same output with other --set values must not rank another recipe's trials
    pinned = {
        k: v for k, v in recipe.to_dict().items() if k not in (*knobs, "workers", "log_every", "log_with")
    }
    meta = {
        "recipe": recipe.name,
        "recipe_sha256": hashlib.sha256(json.dumps(pinned, sort_keys=True, default=str).encode()).hexdigest(),
        "method": recipe.method,
        "proxy": proxy,
        "seed": recipe.seed,
        "start": start,
    }
    from fixnorm_zoo.engine.train import make_accelerator
    from fixnorm_zoo.recipe import load_recipe

    # one accelerator for every trial (accelerate's state is per process); the proxy recipe sets what it needs.
    # Its rank decides which process writes the trial log (every process runs the same search).
    accelerator = make_accelerator(
        load_recipe(recipe.to_dict(), overrides={**proxy, "log_with": "none"}), run_dir=out
    )
    log = TrialLog(out / TRIALS_FILE, meta, writer=accelerator.is_main_process)

    from accelerate.logging import get_logger

    logger = get_logger(__name__)  # rank 0 only: every process runs the same search

    def score_fn(params: Params) -> float:
        key = param_key(params)
        if key not in log.records:
            run_dir = out / "runs" / key.replace(",", "_")
            log.add(_run_trial(recipe, params, proxy, run_dir, accelerator=accelerator, progress=progress))
            r = log.records[key]
            shown = f"{r['score']:.2f}" if r["status"] == "ok" else r["status"]
            logger.info(f"[tune] trial {len(log.records)}: {key} -> {shown} ({r['time_s']} s)")
        return _score(log.records[key])

    order = run_search(strategy, score_fn, space, knobs=knobs, budget=trials, start=start, seed=seed)
    ok = [(p, s) for p, s in order if math.isfinite(s)]
    if not ok:
        raise TrainingDiverged(f"no trial finished (see {out / TRIALS_FILE})")
    best_params, best_score = max(ok, key=lambda t: t[1])
    records = [log.records[param_key(p)] for p, _ in order]
    if accelerator.is_main_process:
        _write_outputs(out, records, best_params, knobs, recipe_ref or recipe.name, tuple(extra_sets))
    return {"best": best_params, "score": best_score, "trials": records, "output_dir": str(out)}


def _write_outputs(
    out: Path,
    records: list[dict[str, Any]],
    best: Params,
    knobs,
    recipe_ref: str,
    extra_sets: tuple[str, ...],
) -> None:

    from fixnorm_zoo.utils.atomic import atomic_write_text

    table = io.StringIO()
    w = csv.writer(table, lineterminator="\n")
    w.writerow(["trial", *knobs, "status", "score", "time_s"])
    for i, r in enumerate(records, 1):
        w.writerow([i, *(r["params"][k] for k in knobs), r["status"], r.get("score"), r["time_s"]])
    atomic_write_text(out / "trials.csv", table.getvalue())
    import shlex

    kept = [
        x for x in extra_sets if x.split("=", 1)[0].strip() not in knobs
    ]  # the tuned values replace these
    sets = " ".join(
        [*(f"--set {shlex.quote(x)}" for x in kept), *(f"--set {k}={best[k]:.6g}" for k in knobs)]
    )
    atomic_write_text(
        out / "best.yaml",
        f"# best of {len(records)} trials; train with: fixnorm-zoo train {recipe_ref} {sets}\n"
        + "".join(f"{k}: {best[k]:.6g}\n" for k in knobs),
    )
    from fixnorm_zoo.plots import plot_trials

    plot_trials(records, knobs=knobs, path=out / "trials.png")
