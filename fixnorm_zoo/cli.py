"""``fixnorm-zoo``: the command line. Heavy imports happen inside each command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fixnorm_zoo.errors import FixNormZooError


def _cmd_train(args: argparse.Namespace) -> int:
    from fixnorm_zoo.recipe import load_recipe, parse_overrides
    from fixnorm_zoo.train import train

    overrides = parse_overrides(args.set)
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    recipe = load_recipe(args.recipe, overrides=overrides)
    output = args.output or str(Path("runs") / recipe.name)
    summary = train(recipe, output_dir=output, resume=args.resume, progress=not args.no_progress)
    print(f"{recipe.name}: top-1 {summary['top1']:.2f}% top-5 {summary['top5']:.2f}% -> {output}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from fixnorm_zoo.evaluate import RESULTS_COLUMNS, evaluate

    row = evaluate(args.source, data=args.data, batch_size=args.batch_size, workers=args.workers,
                   results_csv=args.results_csv)  # fmt: skip
    print(",".join(RESULTS_COLUMNS))
    print(",".join(str(row[c]) for c in RESULTS_COLUMNS))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from fixnorm_zoo.demo import run_demo

    run_demo(output_dir=Path(args.output), data_dir=args.data_dir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fixnorm-zoo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a recipe (one process, or under accelerate launch / torchrun)")
    p.add_argument(
        "recipe", help="a recipe YAML path or a name under recipes/, e.g. fashion_mnist/resnet18_fixnorm"
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
    p.add_argument("--output", help="run directory (default: runs/RECIPE_NAME)")
    p.add_argument("--data-dir", help="dataset location (default: the recipe's, else the Debian path)")
    p.add_argument(
        "--resume", action="store_true", help="continue from the run directory's newest checkpoint"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "eval", help="top-1/top-5 of a run directory or hf-hub:ORG/NAME with its own eval transform"
    )
    p.add_argument("source", help="a run directory, or hf-hub:ORG/NAME")
    p.add_argument(
        "--data", required=True, help="fashion_mnist[:DIR], or an ImageFolder root (uses its val/)"
    )
    p.add_argument("--batch-size", type=int, default=256, help="per-process batch size")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--results-csv", help="append the row (timm's results columns) to this CSV")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser(
        "demo", help="FixNorm vs its weight-decay twin on Fashion-MNIST, same recipe and budget"
    )
    p.add_argument("--output", default="runs/demo", help="where the two runs go (default: runs/demo)")
    p.add_argument("--data-dir", help="Fashion-MNIST IDX folder (default: /usr/share/datasets/fashion-mnist)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FixNormZooError, FileExistsError, FileNotFoundError) as e:
        print(f"fixnorm-zoo {args.command}: error: {e}", file=sys.stderr)
        return 2
    finally:
        _destroy_process_group()


def _destroy_process_group() -> None:
    """Tear down gloo/NCCL before exit: left to interpreter shutdown, gloo can abort with 'terminate called'."""
    if "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
