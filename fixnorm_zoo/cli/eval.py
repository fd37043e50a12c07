"""``fixnorm-zoo eval SOURCE --data DATA``: top-1/top-5 of a zoo model, a run directory or an hf-hub model, with
the model's own eval transform."""

from __future__ import annotations

import argparse

from fixnorm_zoo.cli.options import is_main_process


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "eval",
        parents=[common],
        help="top-1/top-5 of a zoo model, run directory or hf-hub:ORG/NAME with its own eval transform",
    )
    p.add_argument("source", help="a zoo name, a run directory, or hf-hub:ORG/NAME")
    p.add_argument(
        "--data", required=True, help="fashion_mnist[:DIR], or an ImageFolder root (uses its val/)"
    )
    p.add_argument("--batch-size", type=int, default=256, help="per-process batch size")
    p.add_argument(
        "--workers",
        type=int,
        default=4,
        help="image-decoding processes for an image folder (0: in this process)",
    )
    p.add_argument("--results-csv", help="append the row (timm's results columns) to this CSV")
    p.add_argument(
        "--mirror", help="read a zoo model's weights from this folder (Hub layout; default: $FIXNORM_ZOO_HUB)"
    )
    p.add_argument(
        "--tta",
        choices=["none", "flip"],
        default="none",
        help="test-time augmentation: flip averages each image with its mirror (default: none, single view)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fixnorm_zoo.engine.metrics import RESULTS_COLUMNS
    from fixnorm_zoo.zoo.evaluate import evaluate

    row = evaluate(
        args.source,
        data=args.data,
        batch_size=args.batch_size,
        workers=args.workers,
        results_csv=args.results_csv,
        tta=args.tta,
        mirror=args.mirror,
    )
    if not is_main_process():
        return 0
    print(",".join(RESULTS_COLUMNS))
    print(",".join(str(row[c]) for c in RESULTS_COLUMNS))
    print(
        f"({row['n']} images"
        + (", flip TTA: mean of each image's and its mirror's logits)" if args.tta == "flip" else ")")
    )
    return 0
