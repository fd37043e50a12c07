"""``fixnorm-zoo demo``: a FixNorm run on Fashion-MNIST, published to a local mirror, loaded back and compared with
the recorded weight-decay twin."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="FixNorm vs its weight-decay twin on Fashion-MNIST, same recipe and budget",
    )
    p.add_argument("--output", default="runs/demo", help="where the run goes (default: runs/demo)")
    p.add_argument("--data-dir", help="Fashion-MNIST IDX folder (default: /usr/share/datasets/fashion-mnist)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fixnorm_zoo.demo import run_demo

    run_demo(output_dir=Path(args.output), data_dir=args.data_dir)
    return 0
