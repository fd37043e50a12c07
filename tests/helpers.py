"""What several test modules share: the tiny recipes and nets, the command-line runner, the multi-process launcher.

Fixtures live in conftest.py; plain helpers live here and are imported (``from helpers import ...``), so a reader
finds each in one place.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = (sys.executable, "-m", "fixnorm_zoo.cli")

TINY_RESNET = {
    "train_subset": 256,
    "epochs": 1,
    "batch_size": 64,
    "model_args": {"channels": [8, 16, 32, 64]},
}
"""A tiny Fashion-MNIST run: the ResNet recipe at 1/4 width on 256 images, one epoch (seconds on 2 cores)."""

TINY_RESNET9S = {"train_subset": 256, "epochs": 1, "batch_size": 64, "model_args": {"widths": [8, 8, 16, 32]}}
"""The fast recipe made tiny: 256 images, one epoch, widths 8-8-16-32 (a second or two)."""

IMAGE_FOLDER_CLASSES = ("n01440764", "n01443537", "n01484850", "n01491361")


def tiny_recipe(**overrides):
    """The shipped ``fashion_mnist/resnet18_fixnorm`` recipe made tiny (:data:`TINY_RESNET`), then ``overrides``."""
    from fixnorm_zoo.recipe import load_recipe

    return load_recipe("fashion_mnist/resnet18_fixnorm", overrides={**TINY_RESNET, **overrides})


def tiny_net(num_classes: int = 5, widths: Sequence[int] = (16, 32)):
    """Convs each followed by BatchNorm (their weights scale-invariant), then a linear classifier: the smallest
    model on which FixNorm's three parameter roles all occur. Input: 3 channels, any size."""
    from torch import nn

    layers: list[nn.Module] = []
    in_ch = 3
    for i, width in enumerate(widths):
        layers += [nn.Conv2d(in_ch, width, 3, padding=1, stride=1 if i == 0 else 2, bias=False)]
        layers += [nn.BatchNorm2d(width), nn.ReLU()]
        in_ch = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_ch, num_classes))


def reset_accelerate() -> None:
    """Forget accelerate's process-wide state (as accelerate's own ``AccelerateTestCase`` does after each test), so
    the next ``Accelerator`` may use other settings."""
    from accelerate.test_utils.testing import AccelerateTestCase

    AccelerateTestCase().tearDown()


def default_sigint() -> None:
    """For ``preexec_fn``: the child starts with SIGINT's default disposition. A suite started in the background
    (``nohup make test &``) runs with SIGINT ignored, and a child inherits that, so without this a test that sends
    the child Ctrl-C would see it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment without the package's own variables, one thread, no progress bars, the checkout
    importable: what a user's shell gives the command."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIXNORM_ZOO_")}
    env.update(OMP_NUM_THREADS="1", TQDM_DISABLE="1", PYTHONPATH=str(ROOT), **extra)
    return env


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 300,
    program: Sequence[str] = CLI,
    **env_vars: str,
) -> subprocess.CompletedProcess:
    """``fixnorm-zoo ARGS`` in a child process (``python -m fixnorm_zoo.cli``, or ``program``), its output captured.

    Args:
        env: the child's environment (default: :func:`cli_env`), plus ``env_vars``.
        program: the command to run, e.g. an installed wheel's ``bin/fixnorm-zoo``.
    """
    return subprocess.run(
        [*program, *args],
        env={**(env if env is not None else cli_env()), **env_vars},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=default_sigint,
    )


def run_torchrun(
    args: list[str], *, nproc: int = 2, timeout: int = 300, **env: str
) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc_per_node N ARGS`` on a free port (accelerate's ``get_free_port``),
    one thread per process, from the repository root."""
    from accelerate.utils.other import get_free_port

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--master_port",
        str(get_free_port()),
        *args,
    ]
    return subprocess.run(
        cmd,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        preexec_fn=default_sigint,
    )
