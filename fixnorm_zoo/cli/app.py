"""``fixnorm-zoo``: the command line. Heavy imports happen inside each command."""

from __future__ import annotations

import argparse
import contextlib
import errno
import fnmatch
import json
import math
import os
import sys
from pathlib import Path

from fixnorm_zoo.errors import FixNormZooError, Preempted
from fixnorm_zoo.tune.strategies import SEARCHES
from fixnorm_zoo.utils.preemption import EXIT_INTERRUPTED


def _cmd_train(args: argparse.Namespace) -> int:
    from fixnorm_zoo.engine.train import train
    from fixnorm_zoo.recipe import load_recipe, parse_overrides

    overrides = parse_overrides(args.set)
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    recipe = load_recipe(args.recipe, overrides=overrides)
    output = args.output or str(Path("runs") / recipe.name)
    summary = train(
        recipe,
        output_dir=output,
        resume=args.resume,
        progress=not args.no_progress,
        resume_changes=tuple(overrides),
    )
    if not _is_main_process():
        return 0
    print(f"{recipe.name}: top-1 {summary['top1']:.2f}% top-5 {summary['top5']:.2f}% -> {output}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
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
    if not _is_main_process():
        return 0
    print(",".join(RESULTS_COLUMNS))
    print(",".join(str(row[c]) for c in RESULTS_COLUMNS))
    print(
        f"({row['n']} images"
        + (", flip TTA: mean of each image's and its mirror's logits)" if args.tta == "flip" else ")")
    )
    return 0


def _parse_space(items: list[str]) -> dict[str, list[float]] | None:
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


def _cmd_tune(args: argparse.Namespace) -> int:
    from fixnorm_zoo.errors import RecipeError
    from fixnorm_zoo.recipe import load_recipe, parse_overrides
    from fixnorm_zoo.tune.runner import tune

    overrides = parse_overrides(args.set)
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    recipe = load_recipe(args.recipe, overrides=overrides)
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
        space=_parse_space(args.grid),
        seed=args.seed,
        progress=not args.no_progress,
        recipe_ref=args.recipe,
        extra_sets=tuple(args.set),
    )
    if not _is_main_process():
        return 0
    print(f"{'#':>3} " + " ".join(f"{k:>12}" for k in result["best"]) + "   status    score  time_s")
    for i, r in enumerate(result["trials"], 1):
        score = f"{r['score']:.2f}" if r["status"] == "ok" else "-"
        knobs = " ".join(f"{r['params'][k]:>12.6g}" for k in result["best"])
        print(f"{i:>3} {knobs}   {r['status']:<8} {score:>6} {r['time_s']:>7}")
    import shlex

    sets = " ".join(
        [
            *(f"--set {shlex.quote(x)}" for x in args.set),
            *(f"--set {k}={v:.6g}" for k, v in result["best"].items()),
        ]
    )
    print(f"best proxy top-1 {result['score']:.2f}: fixnorm-zoo train {args.recipe} {sets}")
    print(f"wrote {output}/trials.jsonl, trials.csv, best.yaml, trials.png")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
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


def _cmd_info(args: argparse.Namespace) -> int:

    from fixnorm_zoo.zoo.registry import Registry

    info = Registry(args.registry).get(args.name)
    print(json.dumps(info.to_dict(), indent=2))
    if info.status == "recipe":
        print(f"no weights published yet; train them with: {info.train_command}")
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
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
        print(f"dry run: repo folder written to {result['folder']}; nothing uploaded, registry unchanged")
    elif result["revision"]:
        print(f"uploaded {args.repo_id} at commit {result['revision']}; registry updated")
    else:
        print(f"copied to the mirror {result['folder']}; registry updated")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
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
                f"{row['name']}: pushed {args.release}/{row['repo_id']} to the Hub, pinned commit {row['revision']}"
            )
    if not pushed:
        print(f"nothing to push: no published zoo entry has a folder under {args.release}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from fixnorm_zoo.demo import run_demo

    run_demo(output_dir=Path(args.output), data_dir=args.data_dir)
    return 0


WRITE_REGISTRY_HELP = (
    "registry file to write (default: your registry file, $HF_HOME/fixnorm_zoo/zoo.json or "
    "$FIXNORM_ZOO_USER_REGISTRY; never the installed package)"
)
DEBUG_HELP = "show the traceback of an error (also FIXNORM_ZOO_DEBUG=1)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fixnorm-zoo", description=__doc__)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)  # --debug after the subcommand too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    p = command("train", help="train a recipe (one process, or under accelerate launch / torchrun)")
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

    p = command(
        "eval",
        help="top-1/top-5 of a zoo model, run directory or hf-hub:ORG/NAME with its own eval transform",
    )
    p.add_argument("source", help="a zoo name, a run directory, or hf-hub:ORG/NAME")
    p.add_argument(
        "--data", required=True, help="fashion_mnist[:DIR], or an ImageFolder root (uses its val/)"
    )
    p.add_argument("--batch-size", type=int, default=256, help="per-process batch size")
    p.add_argument("--workers", type=int, default=4)
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
    p.set_defaults(func=_cmd_eval)

    p = command("list", help="the zoo's models, a table (or the shipped recipes)")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern (default: all)")
    p.add_argument("--pretrained", action="store_true", help="only models with published weights")
    p.add_argument("--recipes", action="store_true", help="list the recipes shipped with the package instead")
    p.add_argument(
        "--registry",
        help="registry file (default: the package's zoo.json with your publishes (~/.cache/huggingface/fixnorm_zoo/zoo.json) merged over it)",
    )
    p.set_defaults(func=_cmd_list)

    p = command("info", help="one zoo model's registry entry")
    p.add_argument("name")
    p.add_argument(
        "--registry",
        help="registry file (default: the package's zoo.json with your publishes (~/.cache/huggingface/fixnorm_zoo/zoo.json) merged over it)",
    )
    p.set_defaults(func=_cmd_info)

    p = command("push", help="upload a release folder's published models to the Hub and pin their commits")
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
    p.set_defaults(func=_cmd_push)

    p = command("publish", help="re-verify a finished run, then publish it with its model card")
    p.add_argument("run_dir")
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
    p.set_defaults(func=_cmd_publish)

    p = command(
        "tune", help="search LR and fc_norm (or weight_decay) on proxy or full-length runs (--full-runs)"
    )
    p.add_argument("recipe", help="a recipe YAML path or a name under recipes/")
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
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
    p.add_argument("--output", help="default: runs/tune/RECIPE_STRATEGY")
    p.add_argument("--data-dir", help="dataset location")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_tune)

    p = command("demo", help="FixNorm vs its weight-decay twin on Fashion-MNIST, same recipe and budget")
    p.add_argument("--output", default="runs/demo", help="where the two runs go (default: runs/demo)")
    p.add_argument("--data-dir", help="Fashion-MNIST IDX folder (default: /usr/share/datasets/fashion-mnist)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("FIXNORM_ZOO_DEBUG") == "1"
    finished = False
    try:
        with _library_log_to_stdout():
            code = args.func(args)
        finished = True
        return code
    except Preempted as e:  # a signal: checkpoint saved; one line, once, and the code a requeue script tests
        if _is_main_process():
            print(f"fixnorm-zoo {args.command}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C twice, or outside training: no traceback
        print(f"fixnorm-zoo {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FixNormZooError, FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError) as e:
        if debug:
            raise
        print(f"fixnorm-zoo {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line
        return 2
    except OSError as e:  # a full disk, a read-only folder: the user's to fix, not a bug
        if debug or e.errno is None:  # errno None: not a file-system error (an HTTP error, say)
            raise
        fixes = {
            errno.ENAMETOOLONG: "use a shorter path",
            errno.ENOSPC: "free space, then run the command again",
            errno.EDQUOT: "free space within your quota, then run the command again",
            errno.EROFS: "pick a writable location",
            errno.EACCES: "pick a location you may write to",
        }
        print(
            f"fixnorm-zoo {args.command}: error: {e.strerror or e} ({e.filename or 'no file named'}): "
            f"{fixes.get(e.errno, 'free space or pick a writable location, then run the command again')}",
            file=sys.stderr,
        )
        return 2
    finally:
        _end_processes(barrier=finished)


@contextlib.contextmanager
def _library_log_to_stdout():
    """The package logs through accelerate's logger (rank 0 only where a message says so); the command shows its
    INFO lines on stdout, as plain lines, written through tqdm so they never break a progress bar. A library user
    configures the ``fixnorm_zoo`` logger as any other."""
    import logging

    from tqdm.contrib.logging import logging_redirect_tqdm

    class _PlainFormatter(logging.Formatter):
        """accelerate's logger prefixes every line with ``[RANK N]``; a one-process run drops it."""

        def format(self, record: logging.LogRecord) -> str:
            text = super().format(record)
            one_process = os.environ.get("WORLD_SIZE", "1") == "1"
            return text.removeprefix("[RANK 0] ") if one_process else text

    log = logging.getLogger("fixnorm_zoo")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_PlainFormatter("%(message)s"))
    saved = (log.level, log.propagate)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with logging_redirect_tqdm(loggers=[log]):
            yield
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def _is_main_process() -> bool:
    """Under torchrun or ``accelerate launch`` every process runs the command: only rank 0 prints the result, so
    the output reads the same as a one-process run's (and several writers cannot interleave on one pipe). The
    commands that print this way have built an ``Accelerator``, whose state answers."""
    from accelerate import PartialState

    return PartialState().is_main_process


def _end_processes(*, barrier: bool) -> None:
    """Tear the process group down once, through accelerate, before exit (left to interpreter shutdown, gloo can
    abort with 'terminate called'). After a finished command, a barrier first: a rank that tears its connections
    down while its peer still uses them can abort the peer. Not after an error: the other ranks may never reach
    the barrier, and this rank must exit so that the launcher stops them."""
    if "accelerate" not in sys.modules:
        return
    from accelerate.state import PartialState, is_initialized

    if not is_initialized():
        return
    state = PartialState()
    if state.use_distributed:
        import torch.distributed as dist

        if barrier and dist.is_initialized():
            state.wait_for_everyone()
        state.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
