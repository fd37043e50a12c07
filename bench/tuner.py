"""How many trials each search needs to come within 0.2 point of the dense grid's optimum.

The grid (eval/manifest.yaml's `grid_*` tuner searches, run by eval/record.py: every (fc_norm, lr) point of a 6x6
log lattice, one proxy run each, deterministic) is used as a table: each strategy runs its real code
(fixnorm_zoo.tune.strategies.run_search) with ``score = table[point]``, so a trial here is exactly the proxy run the
strategy would have paid for. Strategies: ours (fixnorm: coordinate line search, fc_norm then LR; once from the
recipe's values, and from every lattice point as its "seeds"), Optuna TPE with its defaults (10 random start-up
trials) and with 3 start-up trials, and random search; each over 20 search seeds. A strategy that never reaches the
target counts as budget + 1 trials. Prints a table and the ratio ours / TPE, and proxy vs full-run scores (with
their rank correlation) where full runs exist (eval/results.csv: the zoo's seeds and the proxy checks).

    .venv/bin/python bench/tuner.py [--grid eval/tuner/grid_resnet18_fixnorm_trials.jsonl] [--target 0.2]
    .venv/bin/python bench/tuner.py --grid eval/tuner/grid_mobilenetv2_050_fixnorm_trials.jsonl \
        --start fc_norm=4,lr=0.05 --no-full-runs       (the second surface; eval/record.py records both)
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixnorm_zoo.tune.strategies import param_key, run_search  # noqa: E402


def load_grid(path: Path) -> tuple[dict[str, float], dict[str, list[float]]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    table, space = {}, {}
    for r in lines[1:]:
        table[r["trial"]] = r["score"] if r["status"] == "ok" else -math.inf
        for k, v in r["params"].items():
            space.setdefault(k, set()).add(v)
    return table, {k: sorted(v) for k, v in space.items()}


def trials_to_target(order: list[tuple[dict, float]], target: float) -> int | None:
    best = -math.inf
    for i, (_, score) in enumerate(order, 1):
        best = max(best, score)
        if best >= target:
            return i
    return None


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(x: list[float]) -> list[float]:
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        for rank, i in enumerate(order):
            r[i] = rank
        return r

    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default=str(ROOT / "eval/tuner/grid_resnet18_fixnorm_trials.jsonl"))
    ap.add_argument(
        "--target", type=float, default=0.2, help="points below the grid optimum that count (0.2)"
    )
    ap.add_argument("--seeds", type=int, default=20, help="search seeds for TPE and random")
    ap.add_argument("--start", default="fc_norm=8,lr=0.1", help="ours starts at the recipe's values")
    ap.add_argument(
        "--full-runs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also print proxy vs full-run scores (the ResNet grid's and the zoo's full runs)",
    )
    args = ap.parse_args()

    table, space = load_grid(Path(args.grid))
    knobs = ("fc_norm", "lr")
    missing = [k for k in _all_points(space, knobs) if k not in table]
    if missing:
        print(
            f"the grid is incomplete ({len(missing)} points missing, e.g. {missing[0]}): finish it with eval/record.py run --only GRID_ID"
        )
        return 1
    best_key = max(table, key=table.get)
    optimum = table[best_key]
    target = optimum - args.target
    print(f"grid: {len(table)} points, optimum {optimum:.2f} at {best_key}; target >= {target:.2f}")
    print(f"points within {args.target}: {sorted(k for k, v in table.items() if v >= target)}")
    start = {k: float(v) for k, v in (kv.split("=") for kv in args.start.split(","))}

    def score(params: dict) -> float:
        return table[param_key(params)]

    recipe_start = run_search(
        "fixnorm", score, space, knobs=knobs, budget=len(table), start=start, stop_at=target
    )
    print(
        f"ours from the recipe's values {args.start}: {trials_to_target(recipe_start, target)} trial(s) to the target "
        f"(one start tells little, so below ours also starts from every lattice point)"
    )
    configs = {
        "ours (fixnorm)": ("fixnorm", {}),
        "TPE (optuna defaults)": ("tpe", {}),
        "TPE (3 start-up)": ("tpe", {"n_startup_trials": 3}),
        "random": ("random", {}),
    }
    results = {}
    budget = len(table)
    for label, (strategy, extra) in configs.items():
        needed, found_at_10 = [], []
        # ours is deterministic given its start point: it runs from every lattice point instead of over seeds
        starts = [dict(zip(knobs, v, strict=True)) for v in itertools.product(*(space[k] for k in knobs))]
        seeds = starts if strategy == "fixnorm" else list(range(args.seeds))
        for seed in seeds:
            seed_start = None
            if strategy == "fixnorm":
                seed_start, seed = seed, 0
            order = run_search(
                strategy,
                score,
                space,
                knobs=knobs,
                budget=budget,
                start=seed_start,
                seed=seed,
                stop_at=target,
                **extra,
            )
            n = trials_to_target(order, target)
            needed.append(n if n is not None else budget + 1)
            found_at_10.append(min(len(order), 10))
        results[label] = needed
        mean = statistics.mean(needed)
        sd = statistics.stdev(needed) if len(needed) > 1 else 0.0
        print(
            f"{label:<22} trials to within {args.target}: mean {mean:5.1f} +- {sd:4.1f}, median "
            f"{statistics.median(needed):4.1f}, reached within 10 trials {sum(n <= 10 for n in needed):>2}/{len(needed)} "
            f"{'start points' if strategy == 'fixnorm' else 'seeds'}; never: {sum(n > budget for n in needed)}"
        )
    for budget_n in (6, 10):
        order = run_search("fixnorm", score, space, knobs=knobs, budget=budget_n, start=start)
        p, v = max(order, key=lambda t: t[1])
        print(
            f"ours with a {budget_n}-trial budget picks {param_key(p)} (proxy {v:.2f}; grid optimum {optimum:.2f})"
        )
    for stat in (statistics.mean, statistics.median):
        ours = stat(results["ours (fixnorm)"])
        print(
            f"{stat.__name__:>6}: ours / TPE (defaults) = {ours / stat(results['TPE (optuna defaults)']):.2f} (goal <= 0.5), "
            f"ours / TPE (3 start-up) = {ours / stat(results['TPE (3 start-up)']):.2f}, "
            f"ours / random = {ours / stat(results['random']):.2f}"
        )

    if args.full_runs:
        _proxy_vs_full()
    return 0


def _proxy_vs_full() -> None:
    """Proxy score vs full-run test top-1, the premise of short proxies, from eval/results.csv. Two sets, each ranked
    on its own (proxy scores compare only within one model): (1) over the reference grid: the full 10-epoch run of
    the grid's own model at sampled grid points (group ``grid_full``); (2) per zoo family: the tuned point of each
    recipe (eval/tuner/RECIPE_best.yaml; full runs: the seeds of group ``families``, averaged) and the extra points
    of group ``proxy_check``. All use one proxy (1 epoch on 20,000 images, scored on 10,000 held-out training
    images)."""

    import yaml

    with open(ROOT / "eval/results.csv") as f:
        rows = list(csv.DictReader(f))
    trials = {r["id"]: r for r in rows if r["kind"] == "trial"}

    def searched_point(
        row: dict[str, str],
    ) -> str:  # the searched knobs only (the grid's pinned output_stride is not one)
        knobs = dict(kv.split("=", 1) for kv in row["set"].split(";"))
        return param_key({k: float(v) for k, v in knobs.items() if k in ("fc_norm", "lr", "weight_decay")})

    grid = [
        (searched_point(r), float(r["proxy_top1"]), float(r["top1"]))
        for r in rows
        if r["group"] == "grid_full"
    ]
    if grid:
        _print_pairs("over the reference grid (stride-32 ResNet, 10 epochs, seed 0)", grid)
    seeds: dict[str, list[float]] = {}
    for r in rows:
        if r["group"] == "families" and not r["set"]:
            seeds.setdefault(Path(r["recipe"]).name, []).append(float(r["top1"]))
    families: dict[str, list[tuple[str, float, float]]] = {}
    for best in sorted((ROOT / "eval/tuner").glob("*_best.yaml")):
        recipe = best.name.removesuffix("_best.yaml")
        if recipe.startswith("grid_") or recipe not in seeds:
            continue
        point = param_key({k: float(v) for k, v in yaml.safe_load(best.read_text()).items()})
        proxy = float(trials[f"{recipe}/{point}"]["top1"])
        families.setdefault(recipe.rsplit("_", 1)[0], []).append(
            (f"{recipe} {point} (tuned; {len(seeds[recipe])} seeds)", proxy, statistics.mean(seeds[recipe]))
        )
    for r in rows:
        if r["group"] == "proxy_check" and r["proxy_top1"]:
            recipe = Path(r["recipe"]).name
            families.setdefault(recipe.rsplit("_", 1)[0], []).append(
                (f"{recipe} {searched_point(r)}", float(r["proxy_top1"]), float(r["top1"]))
            )
    for family, pairs in sorted(families.items()):
        _print_pairs(f"{family} zoo recipes (full budget; FixNorm and weight-decay points)", pairs)


def _print_pairs(title: str, pairs: list[tuple[str, float, float]]) -> None:
    print(f"proxy vs full run, {title}:")
    for label, proxy, top1 in pairs:
        print(f"  {label:<60} proxy {proxy:6.2f}  full {top1:6.2f}")
    if len(pairs) >= 3:
        rho = spearman([p for _, p, _ in pairs], [t for _, _, t in pairs])
        print(f"  Spearman rank correlation over {len(pairs)} points: {rho:.2f}")
    else:
        print("  (fewer than 3 points: no rank correlation)")


def _all_points(space, knobs):

    return [
        param_key(dict(zip(knobs, v, strict=True))) for v in itertools.product(*(space[k] for k in knobs))
    ]


if __name__ == "__main__":
    sys.exit(main())
