"""Options and helpers that several subcommands share, declared once."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fixnorm_zoo.recipe import Recipe

READ_REGISTRY_HELP = (
    "registry file (default: the package's zoo.json with your publishes "
    "(~/.cache/huggingface/fixnorm_zoo/zoo.json) merged over it)"
)
WRITE_REGISTRY_HELP = (
    "registry file to write (default: your registry file, $HF_HOME/fixnorm_zoo/zoo.json or "
    "$FIXNORM_ZOO_USER_REGISTRY; never the installed package)"
)


def add_recipe_options(p: argparse.ArgumentParser, *, recipe_help: str) -> None:
    """The recipe and the options that change it, as train and tune both take them."""
    p.add_argument("recipe", help=recipe_help)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
    p.add_argument("--data-dir", help="dataset location (default: the recipe's, else the Debian path)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def recipe_from_args(args: argparse.Namespace) -> tuple[Recipe, dict]:
    """The recipe ``add_recipe_options`` describes, with its ``--set`` and ``--data-dir`` overrides applied; the
    overrides too (a resumed run checks them against the run's own recipe)."""
    from fixnorm_zoo.recipe import load_recipe, parse_overrides

    overrides = parse_overrides(args.set)
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    return load_recipe(args.recipe, overrides=overrides), overrides


def shown(text: object) -> str:
    """``text`` safe for a terminal: control characters (an escape sequence hidden in a path or a repo id) are
    printed as their escapes (``\\x1b``), never sent raw."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def is_main_process() -> bool:
    """Under torchrun or ``accelerate launch`` every process runs the command: only rank 0 prints the result, so
    the output reads the same as a one-process run's (and several writers cannot interleave on one pipe). The
    commands that print this way have built an ``Accelerator``, whose state answers."""
    from accelerate import PartialState

    return PartialState().is_main_process
