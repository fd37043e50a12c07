"""``fixnorm-zoo publish RUN_DIR`` (re-verify a run, then publish it with its card) and ``fixnorm-zoo push
RELEASE`` (upload a release folder's published models and pin their commits)."""

from __future__ import annotations

import argparse

from fixnorm_zoo.cli.options import WRITE_REGISTRY_HELP, shown


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "push",
        parents=[common],
        help="upload a release folder's published models to the Hub and pin their commits",
    )
    p.add_argument(
        "release", help="a folder in the Hub's layout, ORG/NAME/... (this repository's zoo_mirror)"
    )
    p.add_argument(
        "--name", action="append", help="only this zoo model (repeatable; default: every one found)"
    )
    p.add_argument("--registry", help=WRITE_REGISTRY_HELP)
    p.add_argument(
        "--force", action="store_true", help="push even a repo folder unchanged since its pinned commit"
    )
    p.set_defaults(func=run_push)

    p = sub.add_parser(
        "publish", parents=[common], help="re-verify a finished run, then publish it with its model card"
    )
    p.add_argument("run_dir", help="a finished run directory (fixnorm-zoo train --output)")
    p.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub (or under the mirror)")
    p.add_argument("--name", help="zoo name (default: the registry entry matching the recipe's name)")
    p.add_argument(
        "--dry-run", metavar="OUT_DIR", help="write the repo folder here and stop before the upload"
    )
    p.add_argument(
        "--mirror",
        help="copy to this local mirror directory instead of the Hub (default: $FIXNORM_ZOO_HUB when set)",
    )
    p.add_argument("--private", action="store_true", help="create the Hub repo private")
    p.add_argument(
        "--twin", help="the weight-decay twin's run directory (its result and a plot go in the card)"
    )
    p.add_argument("--data", help="evaluation data for the re-check (default: the recipe's dataset)")
    p.add_argument("--registry", help=WRITE_REGISTRY_HELP)
    p.add_argument(
        "--replace", action="store_true", help="allow replacing an entry that has published weights"
    )
    p.set_defaults(func=run_publish)


def run_publish(args: argparse.Namespace) -> int:
    from fixnorm_zoo.zoo.publish import publish

    result = publish(
        args.run_dir,
        repo_id=args.repo_id,
        name=args.name,
        dry_run=args.dry_run,
        mirror=args.mirror,
        private=args.private,
        twin=args.twin,
        data=args.data,
        registry=args.registry,
        replace=args.replace,
    )
    print(f"{result['name']}: re-measured top-1 {result['top1']:.2f}% top-5 {result['top5']:.2f}%")
    print(f"model.safetensors {result['size']} bytes sha256 {result['sha256']}")
    if args.dry_run:
        print(
            f"dry run: repo folder written to {shown(result['folder'])}; nothing uploaded, registry unchanged"
        )
    elif result["revision"]:
        print(f"uploaded {shown(args.repo_id)} at commit {result['revision']}; registry updated")
    else:
        print(f"copied to the mirror {shown(result['folder'])}; registry updated")
    return 0


def run_push(args: argparse.Namespace) -> int:
    from fixnorm_zoo.zoo.hub import push_release
    from fixnorm_zoo.zoo.registry import Registry

    pushed = push_release(
        args.release, registry=Registry(args.registry), names=args.name or None, force=args.force
    )
    for row in pushed:
        if row["unchanged"]:
            print(
                f"{row['name']}: unchanged since commit {row['revision']}, not pushed (--force to push anyway)"
            )
        else:
            print(
                f"{row['name']}: pushed {shown(args.release)}/{row['repo_id']} to the Hub, pinned commit {row['revision']}"
            )
    if not pushed:
        print(f"nothing to push: no published zoo entry has a folder under {shown(args.release)}")
    return 0
