"""``fixnorm-zoo tune RECIPE``: search LR and fc_norm (or weight_decay) on proxy or full-length trials."""

from __future__ import annotations

import argparse
import math
import shlex
from pathlib import Path

from fixnorm_zoo.cli.options import add_recipe_options, is_main_process, recipe_from_args, shown
from fixnorm_zoo.tune.strategies import SEARCHES


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "tune",
        parents=[common],
        help="search LR and fc_norm (or weight_decay) on proxy or full-length runs (--full-runs)",
    )
    add_recipe_options(p, recipe_help="a recipe YAML path or a name under recipes/")
    p.add_argument("--trials", type=int, default=10, help="trial budget (default 10)")
    p.add_argument(
        "--strategy",
        default="fixnorm",
        choices=list(SEARCHES),
        help="fixnorm: the paper-style coordinate search (default); grid: every point",
    )
    p.add_argument(
        "--proxy-epochs", type=float, help="epochs per trial, the schedule shortened to fit (default 1)"
    )
    p.add_argument(
        "--full-runs",
        action="store_true",
        help="every trial is a full-length run of the recipe (its epochs and schedule), scored on the held-out "
        "images: costs a full run per trial, and ranks what users train (short proxies can rank it wrongly)",
    )
    p.add_argument("--proxy-subset", type=int, help="train each trial on the first N training images only")
    p.add_argument(
        "--holdout",
        type=int,
        default=10000,
        help="training images held out as the score (Fashion-MNIST; default 10000)",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KNOB=V1,V2,...",
        help="values a knob may take (default: the recipe's value x 2^k, k=-4..4)",
    )
    p.add_argument("--seed", type=int, default=0, help="search seed (tpe, random)")
    p.add_argument("--output", help="default: runs/tune/RECIPE_STRATEGY")
    p.set_defaults(func=run)


def parse_space(items: list[str]) -> dict[str, list[float]] | None:
    """``--grid KNOB=V1,V2,...`` items as ``{knob: values}``, each value a positive finite number."""
    from fixnorm_zoo.errors import RecipeError

    space = {}
    for item in items:
        knob, sep, values = item.partition("=")
        try:
            space[knob.strip()] = [float(v) for v in values.split(",")]
        except ValueError:
            sep = ""
        if not sep:
            raise RecipeError(f"--grid {item!r}: expected KNOB=V1,V2,... e.g. --grid lr=0.05,0.1,0.2")
        bad = [v for v in space[knob.strip()] if not (math.isfinite(v) and v > 0)]
        if bad:
            raise RecipeError(
                f"--grid {item!r}: {bad} not positive finite numbers (the lattice is log-scale)"
            )
    return space or None


def run(args: argparse.Namespace) -> int:
    from fixnorm_zoo.errors import RecipeError
    from fixnorm_zoo.tune.runner import tune

    recipe, _ = recipe_from_args(args)
    proxy_epochs = args.proxy_epochs
    if args.full_runs:
        if args.proxy_epochs is not None or args.proxy_subset is not None:
            raise RecipeError(
                "--full-runs trains every trial for the recipe's own epochs on all training images but the held-out "
                "ones: drop --proxy-epochs/--proxy-subset, or drop --full-runs to tune on a proxy"
            )
        proxy_epochs = recipe.epochs
    if args.proxy_subset is not None and args.proxy_subset <= 0:
        raise RecipeError(
            f"--proxy-subset {args.proxy_subset}: give a positive number of images, or leave it out"
        )
    output = args.output or str(Path("runs") / "tune" / f"{recipe.name}_{args.strategy}")
    result = tune(
        recipe,
        trials=args.trials,
        output_dir=output,
        strategy=args.strategy,
        proxy_epochs=1 if proxy_epochs is None else proxy_epochs,
        proxy_subset=args.proxy_subset,
        holdout=args.holdout,
        space=parse_space(args.grid),
        seed=args.seed,
        progress=not args.no_progress,
        recipe_ref=args.recipe,
        extra_sets=tuple(args.set),
    )
    if not is_main_process():
        return 0
    print(f"{'#':>3} " + " ".join(f"{k:>12}" for k in result["best"]) + "   status    score  time_s")
    for i, r in enumerate(result["trials"], 1):
        score = f"{r['score']:.2f}" if r["status"] == "ok" else "-"
        knobs = " ".join(f"{r['params'][k]:>12.6g}" for k in result["best"])
        print(f"{i:>3} {knobs}   {r['status']:<8} {score:>6} {r['time_s']:>7}")
    sets = " ".join(
        [
            *(f"--set {shlex.quote(x)}" for x in args.set),
            *(f"--set {k}={v:.6g}" for k, v in result["best"].items()),
        ]
    )
    scored = "held-out top-1" if args.full_runs else "proxy top-1"
    print(f"best {scored} {result['score']:.2f}: fixnorm-zoo train {args.recipe} {sets}")
    print(f"wrote {shown(output)}/trials.jsonl, trials.csv, best.yaml, trials.png")
    return 0
