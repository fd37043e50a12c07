"""main(): the parser of every subcommand, and what a user sees when something goes wrong: one ``error:`` line and
exit code 2 for a mistake a user can fix, 75 / 130 for a preempted or interrupted run (a requeue script tests them),
a traceback only with ``--debug``."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys

from fixnorm_zoo import __version__
from fixnorm_zoo.cli import demo, publish, train, tune
from fixnorm_zoo.cli import eval as eval_
from fixnorm_zoo.cli import list as list_
from fixnorm_zoo.cli.options import is_main_process, shown
from fixnorm_zoo.errors import FixNormZooError, Preempted
from fixnorm_zoo.utils.preemption import EXIT_INTERRUPTED

DESCRIPTION = (
    "FixNorm training for timm models and a zoo of FixNorm baselines: train, tune, evaluate, publish."
)
DEBUG_HELP = "show the traceback of an error (also FIXNORM_ZOO_DEBUG=1)"
COMMANDS = (train, eval_, list_, publish, tune, demo)
"""The subcommands' modules, in the order ``--help`` lists them; each declares its options beside its handler."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fixnorm-zoo", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"fixnorm-zoo {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)  # --debug after the subcommand too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    for command in COMMANDS:
        command.register(sub, common)
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
        if is_main_process():
            print(f"fixnorm-zoo {args.command}: {shown(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C twice, or outside training: no traceback
        print(f"fixnorm-zoo {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FixNormZooError, FileExistsError, FileNotFoundError, PermissionError, IsADirectoryError) as e:
        if debug:
            raise
        print(
            f"fixnorm-zoo {args.command}: error: {shown(' '.join(str(e).split()))}", file=sys.stderr
        )  # one line
        return 2
    except BrokenPipeError:  # `fixnorm-zoo list | head -2`: the reader has what it wanted; nothing went wrong
        os.dup2(
            os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno()
        )  # Python's flush at exit must not fail too
        return 0
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
