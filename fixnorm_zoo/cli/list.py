"""``fixnorm-zoo list [PATTERN]`` and ``fixnorm-zoo info NAME``: the zoo's entries (or the shipped recipes)."""

from __future__ import annotations

import argparse
import fnmatch
import json

from fixnorm_zoo.cli.options import READ_REGISTRY_HELP


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("list", parents=[common], help="the zoo's models, a table (or the shipped recipes)")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern (default: all)")
    p.add_argument("--pretrained", action="store_true", help="only models with published weights")
    p.add_argument("--recipes", action="store_true", help="list the recipes shipped with the package instead")
    p.add_argument("--registry", help=READ_REGISTRY_HELP)
    p.set_defaults(func=run_list)

    p = sub.add_parser("info", parents=[common], help="one zoo model's registry entry")
    p.add_argument("name", help="a zoo name or alias, e.g. resnet9s.fixnorm_fmnist")
    p.add_argument("--registry", help=READ_REGISTRY_HELP)
    p.set_defaults(func=run_info)


def run_list(args: argparse.Namespace) -> int:
    if args.recipes:
        from fixnorm_zoo.recipe import shipped_recipes

        for ref in shipped_recipes():
            if fnmatch.fnmatchcase(ref, args.pattern) or fnmatch.fnmatchcase(
                ref.rpartition("/")[2], args.pattern
            ):
                print(ref)
        return 0
    from fixnorm_zoo.zoo.registry import Registry

    reg = Registry(args.registry)
    rows = reg.select(args.pattern, pretrained=args.pretrained)  # one read of the registry, not one per entry
    head = (
        "name",
        "architecture",
        "dataset",
        "method",
        "params(M)",
        "GMACs",
        "paper top-1",
        "top-1",
        "status",
    )
    table = [head] + [
        (
            m.name,
            m.architecture,
            m.dataset,
            m.method,
            f"{m.params_m:.2f}" if m.params_m else "-",
            f"{m.gmacs:.3f}" if m.gmacs else "-",
            f"{m.paper_top1:.1f}" if m.paper_top1 else "-",
            f"{m.top1:.2f}" if m.top1 is not None else "-",
            m.status,
        )
        for m in rows
    ]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(head))]
    for r in table:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def run_info(args: argparse.Namespace) -> int:
    from fixnorm_zoo.zoo.registry import Registry

    info = Registry(args.registry).get(args.name)
    print(json.dumps(info.to_dict(), indent=2))
    if info.status == "recipe":
        print(f"no weights published yet; train them with: {info.train_command}")
    return 0
