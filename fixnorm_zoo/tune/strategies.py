"""Search strategies over a log lattice of knob values, pure: each sees only an ``evaluate(params) -> score``
callable and a trial budget, so the tuner (``tuning.py``) runs them on real trials and ``bench/tuner.py`` runs the
very same code against a recorded dense grid.

``search_fixnorm`` is the few-trial method: with FixNorm the invariant weights' effective LR is set by the LR alone
and the classifier's logit scale by ``fc_norm`` alone, and the two interact weakly, so walk the first knob on its
lattice (coarse steps of x4, then x2, following any improvement as a line search), then the second the same way.
``grid``, ``random`` and ``tpe`` are the baselines it is compared with.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import Callable
from typing import Any

from fixnorm_zoo.errors import MissingExtra, RecipeError

Params = dict[str, float]
Space = dict[str, list[float]]


class BudgetExhausted(Exception):
    """Raised by an evaluator when the trial budget is spent; strategies stop on it."""


def lattice(centre: float, *, span: int = 4) -> list[float]:
    """``centre * 2**k`` for ``k`` in ``[-span, span]``: the log-scale values a knob may take."""
    return [float(f"{centre * 2.0**k:.6g}") for k in range(-span, span + 1)]


def param_key(params: Params) -> str:
    """A canonical name of one point, e.g. ``fc_norm=8,lr=0.1``: the trial's id in the log and its run dir."""
    return ",".join(f"{k}={params[k]:.6g}" for k in sorted(params))


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
        nearest = min(
            untried,
            key=lambda p: (
                max(abs(a - b) for a, b in zip(p, here, strict=True)),
                sum(abs(a - b) for a, b in zip(p, here, strict=True)),
                p,
            ),
        )
        candidate = dict(zip(knobs, nearest, strict=True))
        score = score_of(candidate)
        if score > best:
            best, index = score, candidate


def search_grid(
    evaluate: Callable[[Params], float], space: Space, *, knobs: tuple[str, ...], **_: Any
) -> None:
    """Every lattice point, row by row: the reference optimum (dense grid)."""

    for values in itertools.product(*(space[k] for k in knobs)):
        evaluate(dict(zip(knobs, values, strict=True)))


def search_random(
    evaluate: Callable[[Params], float], space: Space, *, knobs: tuple[str, ...], seed: int = 0, **_: Any
) -> None:
    """Lattice points in a seeded random order, without repeats."""

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
        raise MissingExtra("strategy 'tpe' needs optuna: pip install 'fixnorm_zoo[tune]'") from e
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
