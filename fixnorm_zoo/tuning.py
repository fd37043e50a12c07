"""The few-trial FixNorm tuner: peak LR and ``fc_norm`` searched one after the other on short proxy runs.

Why this works (DESIGN.md, section 1): with FixNorm the invariant weights' effective LR is set by the LR alone and
the classifier's logit scale by ``fc_norm`` alone, and the two interact weakly. So instead of a joint search, walk
``fc_norm`` on a log lattice at the recipe's LR (coarse steps of x4, then x2, following any improvement as a line
search), then the LR at the best ``fc_norm`` the same way. The weight-decay twin gets the same search over
(``weight_decay``, ``lr``) so that comparisons are fair.

Every trial is a normal run of the training engine (so trials also run under ``torchrun``/``accelerate launch``)
scored on a held-out part of the training set, never on the test set. Trials are appended to ``trials.jsonl`` as
they finish; re-running the same command replays the log (the searches are deterministic given it) and continues
without repeating a finished trial. A diverged or failed trial is recorded and scores as the worst.

The search strategies only see an ``evaluate(params) -> score`` callable, so ``bench/tuner.py`` runs the very same
code against a recorded dense grid.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fixnorm_zoo.errors import FixNormZooError, RecipeError, TrainingDiverged

KNOBS = {"fixnorm": ("fc_norm", "lr"), "wd": ("weight_decay", "lr")}
"""The knobs each method tunes, in search order (the regularizer first, then the LR)."""
STRATEGIES = ("fixnorm", "grid", "tpe", "random")
TRIALS_FILE = "trials.jsonl"
DEFAULT_CENTRES = {"fc_norm": 8.0, "weight_decay": 5e-4}

Params = dict[str, float]
Space = dict[str, list[float]]


class BudgetExhausted(Exception):
    """Raised by an evaluator when the trial budget is spent; strategies stop on it."""


def lattice(centre: float, *, span: int = 4) -> list[float]:
    """``centre * 2**k`` for ``k`` in ``[-span, span]``: the log-scale values a knob may take."""
    return [float(f"{centre * 2.0**k:.6g}") for k in range(-span, span + 1)]


def default_space(recipe, *, span: int = 4) -> Space:
    """A log lattice (factor 2, ``span`` steps either side) around the recipe's own values."""
    space = {}
    for knob in KNOBS[recipe.method]:
        centre = getattr(recipe, knob) or DEFAULT_CENTRES[knob]
        space[knob] = lattice(centre, span=span)
    return space


def param_key(params: Params) -> str:
    """A canonical name of one point, e.g. ``fc_norm=8,lr=0.1``: the trial's id in the log and its run dir."""
    return ",".join(f"{k}={params[k]:.6g}" for k in sorted(params))


# ---------------------------------------------------------------------------------------------- strategies


def _start_index(values: list[float], start: float | None) -> int:
    if start is None:
        return len(values) // 2
    return min(range(len(values)), key=lambda i: abs(math.log(values[i] / start)))


def _coordinate_passes(score_of, space: Space, knobs: tuple[str, ...], index: dict[str, int], best: float):
    """Line searches along each knob (steps of 2, then 1 lattice point) until a whole pass moves nothing; returns
    the coordinate-wise optimum reached and its score."""
    while True:
        start_of_pass = dict(index)
        for knob, step, direction in itertools.product(knobs, (2, 1), (+1, -1)):
            while 0 <= (j := index[knob] + direction * step) < len(space[knob]):
                candidate = dict(index, **{knob: j})
                score = score_of(candidate)
                if score <= best:
                    break
                best, index = score, candidate
        if index == start_of_pass:
            return index, best


def search_fixnorm(
    evaluate: Callable[[Params], float],
    space: Space,
    *,
    knobs: tuple[str, ...],
    start: Params | None = None,
    seed: int = 0,
) -> None:
    """Ours: coordinate line search on the log lattice, one knob after the other (``knobs`` in order), then the
    rest of the budget on the nearest untried points around the best one.

    For each knob, try the neighbours at a distance of 2 lattice steps (x4), move to the better one and keep going
    in that direction while it improves; then the same at distance 1 (x2). When a pass over the knobs moved the
    point, make another pass (points already tried cost nothing), so a weak interaction cannot strand the search.
    Once a pass moves nothing the point is a coordinate-wise optimum, but the knobs do interact a little, so a
    diagonal neighbour may still be better: the remaining budget goes to untried points nearest to the best one
    (ring by ring in lattice steps), and any improvement restarts the coordinate passes from there. The search
    ends when the budget (the evaluator's) is spent or every point was tried.
    ``seed`` is unused: the search is deterministic, which is also what makes resuming exact.
    """
    del seed
    index = {k: _start_index(space[k], (start or {}).get(k)) for k in knobs}
    tried: dict[tuple[int, ...], float] = {}

    def score_of(idx: dict[str, int]) -> float:
        key = tuple(idx[k] for k in knobs)
        if key not in tried:
            tried[key] = evaluate({k: space[k][i] for k, i in idx.items()})
        return tried[key]

    best = score_of(index)
    all_points = list(itertools.product(*(range(len(space[k])) for k in knobs)))
    while True:
        index, best = _coordinate_passes(score_of, space, knobs, index, best)
        # the nearest untried point around the best one (Chebyshev ring, then Manhattan distance, then lattice order)
        here = tuple(index[k] for k in knobs)
        untried = [p for p in all_points if p not in tried]
        if not untried:
            return
        nearest = min(untried, key=lambda p: (max(abs(a - b) for a, b in zip(p, here, strict=True)),
                                              sum(abs(a - b) for a, b in zip(p, here, strict=True)), p))  # fmt: skip
        candidate = dict(zip(knobs, nearest, strict=True))
        score = score_of(candidate)
        if score > best:
            best, index = score, candidate


def search_grid(
    evaluate: Callable[[Params], float], space: Space, *, knobs: tuple[str, ...], **_: Any
) -> None:
    """Every lattice point, row by row: the reference optimum (dense grid)."""
    import itertools

    for values in itertools.product(*(space[k] for k in knobs)):
        evaluate(dict(zip(knobs, values, strict=True)))


def search_random(
    evaluate: Callable[[Params], float], space: Space, *, knobs: tuple[str, ...], seed: int = 0, **_: Any
) -> None:
    """Lattice points in a seeded random order, without repeats."""
    import itertools

    points = list(itertools.product(*(space[k] for k in knobs)))
    random.Random(seed).shuffle(points)
    for values in points:
        evaluate(dict(zip(knobs, values, strict=True)))


def search_tpe(
    evaluate: Callable[[Params], float],
    space: Space,
    *,
    knobs: tuple[str, ...],
    seed: int = 0,
    n_startup_trials: int = 10,
    **_: Any,
) -> None:
    """Optuna's TPE (its defaults unless ``n_startup_trials`` is given) over the lattice indices, so it searches
    the same points as the others on the same log scale. A point it proposes again costs no new trial."""
    try:
        import optuna
    except ImportError as e:  # pragma: no cover - optuna is a dev/tuning extra
        raise FixNormZooError("strategy 'tpe' needs optuna: pip install 'fixnorm_zoo[tune]'") from e
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    size = math.prod(len(space[k]) for k in knobs)
    for _ in range(50 * size):  # bounded even when TPE keeps proposing known points
        trial = study.ask()
        params = {k: space[k][trial.suggest_int(k, 0, len(space[k]) - 1)] for k in knobs}
        try:
            score = evaluate(params)
        except BudgetExhausted:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        study.tell(trial, score if math.isfinite(score) else -1e9)


SEARCHES = {"fixnorm": search_fixnorm, "grid": search_grid, "random": search_random, "tpe": search_tpe}


class CountingEvaluator:
    """Wraps ``score_fn`` with a cache (a repeated point is not a new trial) and a trial budget."""

    def __init__(
        self, score_fn: Callable[[Params], float], *, budget: int | None, stop_at: float | None = None
    ) -> None:
        self.score_fn = score_fn
        self.budget = budget
        self.stop_at = stop_at
        self.scores: dict[str, float] = {}
        self.order: list[tuple[Params, float]] = []

    def __call__(self, params: Params) -> float:
        key = param_key(params)
        if key in self.scores:
            return self.scores[key]
        if self.budget is not None and len(self.order) >= self.budget:
            raise BudgetExhausted
        score = self.score_fn(params)
        self.scores[key] = score
        self.order.append((dict(params), score))
        if self.stop_at is not None and score >= self.stop_at:
            raise BudgetExhausted  # good enough: benchmarks count the trials needed to get here
        return score


def run_search(
    strategy: str,
    score_fn: Callable[[Params], float],
    space: Space,
    *,
    knobs: tuple[str, ...],
    budget: int | None,
    start: Params | None = None,
    seed: int = 0,
    stop_at: float | None = None,
    **options: Any,
) -> list[tuple[Params, float]]:
    """Run one strategy against ``score_fn`` and return the trials in the order they were spent. ``options``
    go to the strategy (e.g. ``n_startup_trials`` for TPE); ``stop_at`` ends the search at the first trial scoring at
    least that much."""
    if strategy not in SEARCHES:
        raise RecipeError(f"strategy={strategy!r}: allowed {list(SEARCHES)}")
    evaluator = CountingEvaluator(score_fn, budget=budget, stop_at=stop_at)
    with contextlib.suppress(BudgetExhausted):
        SEARCHES[strategy](evaluator, space, knobs=knobs, start=start, seed=seed, **options)
    return evaluator.order


# ---------------------------------------------------------------------------------------------- trials


def proxy_overrides(recipe, *, proxy_epochs: float, proxy_subset: int | None, holdout: int) -> dict[str, Any]:
    """The fields that turn a recipe into its proxy: fewer epochs (warmup scaled alike), optionally fewer images,
    and a held-out split of the training set as the score (Fashion-MNIST)."""
    if proxy_epochs <= 0:
        raise RecipeError(f"proxy_epochs={proxy_epochs!r}: must be > 0")
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

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if lines and lines[0].get("meta") != meta:
                raise FixNormZooError(
                    f"{path} was written for other settings ({lines[0].get('meta')}); use another --output"
                )
            self.records = {r["trial"]: r for r in lines[1:]}
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"meta": meta})  # main process only

    def _append(self, record: dict[str, Any]) -> None:
        if not is_main_process():  # under torchrun/accelerate every rank runs the search; one writes
            return
        from fixnorm_zoo.atomic import atomic_write_text, file_lock

        with file_lock(self.path):  # the whole log rewritten atomically: a kill never leaves half a line
            old = self.path.read_text() if self.path.exists() else ""
            atomic_write_text(self.path, old + json.dumps(record) + "\n")

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["trial"]] = record
        self._append(record)


def is_main_process() -> bool:
    """Rank 0, or the only process. Read from ``RANK``, which torchrun and ``accelerate launch`` set before the
    process starts, so it needs no torch import and holds before and after the process group exists."""
    return os.environ.get("RANK", "0") == "0"


def _score(record: dict[str, Any]) -> float:
    return record["score"] if record.get("status") == "ok" else -math.inf


def _run_trial(
    recipe, params: Params, proxy: dict[str, Any], run_dir: Path, progress: bool
) -> dict[str, Any]:
    from accelerate.state import AcceleratorState

    from fixnorm_zoo.recipe import load_recipe
    from fixnorm_zoo.train import latest_checkpoint, train

    record: dict[str, Any] = {"trial": param_key(params), "params": params}
    t0 = time.perf_counter()
    try:
        trial_recipe = load_recipe(recipe.to_dict(), overrides={**proxy, **params})
        # a trial killed half-way continues from its last complete checkpoint, or starts over without one
        resume = latest_checkpoint(run_dir) is not None
        if not resume and run_dir.exists() and is_main_process():
            shutil.rmtree(run_dir, ignore_errors=True)
        summary = train(trial_recipe, output_dir=run_dir, resume=resume, progress=progress)
        record.update(status="ok", score=summary["top1"], top5=summary["top5"])
    except TrainingDiverged as e:
        record.update(status="diverged", score=None, error=str(e).splitlines()[0])
    except RecipeError as e:
        record.update(status="failed", score=None, error=str(e))
    finally:
        AcceleratorState._reset_state(reset_partial_state=False)
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
) -> dict[str, Any]:
    """Search ``recipe``'s knobs with at most ``trials`` proxy runs; return the best point and where things went.

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
    meta = {
        "recipe": recipe.name,
        "method": recipe.method,
        "proxy": proxy,
        "seed": recipe.seed,
        "start": start,
    }
    log = TrialLog(out / TRIALS_FILE, meta)

    def score_fn(params: Params) -> float:
        key = param_key(params)
        if key not in log.records:
            log.add(_run_trial(recipe, params, proxy, out / "runs" / key.replace(",", "_"), progress))
            r = log.records[key]
            shown = f"{r['score']:.2f}" if r["status"] == "ok" else r["status"]
            print(f"[tune] trial {len(log.records)}: {key} -> {shown} ({r['time_s']} s)", flush=True)
        return _score(log.records[key])

    order = run_search(strategy, score_fn, space, knobs=knobs, budget=trials, start=start, seed=seed)
    ok = [(p, s) for p, s in order if math.isfinite(s)]
    if not ok:
        raise TrainingDiverged(f"no trial finished (see {out / TRIALS_FILE})")
    best_params, best_score = max(ok, key=lambda t: t[1])
    records = [log.records[param_key(p)] for p, _ in order]
    if is_main_process():
        _write_outputs(out, records, best_params, knobs, recipe_ref or recipe.name)
    return {"best": best_params, "score": best_score, "trials": records, "output_dir": str(out)}


def _write_outputs(out: Path, records: list[dict[str, Any]], best: Params, knobs, recipe_ref: str) -> None:
    import csv
    import io

    from fixnorm_zoo.atomic import atomic_write_text

    table = io.StringIO()
    w = csv.writer(table, lineterminator="\n")
    w.writerow(["trial", *knobs, "status", "score", "time_s"])
    for i, r in enumerate(records, 1):
        w.writerow([i, *(r["params"][k] for k in knobs), r["status"], r.get("score"), r["time_s"]])
    atomic_write_text(out / "trials.csv", table.getvalue())
    sets = " ".join(f"--set {k}={best[k]:.6g}" for k in knobs)
    atomic_write_text(
        out / "best.yaml",
        f"# best of {len(records)} trials; train with: fixnorm-zoo train {recipe_ref} {sets}\n"
        + "".join(f"{k}: {best[k]:.6g}\n" for k in knobs),
    )
    from fixnorm_zoo.plots import plot_trials

    plot_trials(records, knobs=knobs, path=out / "trials.png")
