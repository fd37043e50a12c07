"""``fixnorm-zoo train RECIPE``: one run of a recipe (one process, or under accelerate launch / torchrun)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fixnorm_zoo.cli.options import add_recipe_options, is_main_process, recipe_from_args, shown


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "train", parents=[common], help="train a recipe (one process, or under accelerate launch / torchrun)"
    )
    add_recipe_options(
        p, recipe_help="a recipe YAML path or a name under recipes/, e.g. fashion_mnist/resnet18_fixnorm"
    )
    p.add_argument("--output", help="run directory (default: runs/RECIPE_NAME)")
    p.add_argument(
        "--resume", action="store_true", help="continue from the run directory's newest checkpoint"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fixnorm_zoo.engine.train import train

    recipe, overrides = recipe_from_args(args)
    output = args.output or str(Path("runs") / recipe.name)
    summary = train(
        recipe,
        output_dir=output,
        resume=args.resume,
        progress=not args.no_progress,
        resume_changes=tuple(overrides),
    )
    if is_main_process():
        print(f"{recipe.name}: top-1 {summary['top1']:.2f}% top-5 {summary['top5']:.2f}% -> {shown(output)}")
    return 0
