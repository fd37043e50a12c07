"""Shared fixtures. Environment variables that libraries read at import time are set here, before any import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach the real Hub
os.environ.setdefault("TQDM_DISABLE", "1")
# a user's publishes go to a registry file beside the HF cache: never the real home's during tests
os.environ.setdefault(
    "FIXNORM_ZOO_USER_REGISTRY", os.path.join(tempfile.mkdtemp(prefix="fixnorm_zoo_user_"), "zoo.json")
)

import pytest  # noqa: E402


def reset_accelerate() -> None:
    """Forget accelerate's process-wide state (as accelerate's own ``AccelerateTestCase`` does after each test), so
    the next ``Accelerator`` may use other settings."""
    from accelerate.test_utils.testing import AccelerateTestCase

    AccelerateTestCase().tearDown()


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """accelerate keeps a process-wide singleton; each test starts and ends without one."""
    yield
    reset_accelerate()


@pytest.fixture(scope="session")
def hub():
    """A local Hub (tests/hub_server.py) on a free loopback port, for the real huggingface_hub client in
    subprocesses (HF_ENDPOINT must be set before huggingface_hub is imported)."""
    server = Path(__file__).resolve().parent / "hub_server.py"
    proc = subprocess.Popen([sys.executable, str(server)], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().split()[1])
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


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
        cwd=Path(__file__).resolve().parent.parent,
    )


TINY_RESNET = {
    "train_subset": 256,
    "epochs": 1,
    "batch_size": 64,
    "model_args": {"channels": [8, 16, 32, 64]},
}
"""A tiny Fashion-MNIST run: the ResNet recipe at 1/4 width on 256 images, one epoch (seconds on 2 cores)."""


def tiny_recipe(**overrides):
    """The shipped ``fashion_mnist/resnet18_fixnorm`` recipe made tiny (:data:`TINY_RESNET`), then ``overrides``."""
    from fixnorm_zoo.recipe import load_recipe

    return load_recipe("fashion_mnist/resnet18_fixnorm", overrides={**TINY_RESNET, **overrides})


IMAGE_FOLDER_CLASSES = ("n01440764", "n01443537", "n01484850", "n01491361")


@pytest.fixture(scope="session")
def tiny_imagefolder(tmp_path_factory) -> Path:
    """4 classes; 2 train + 2 val JPEGs each, of odd sizes so the resize/crop paths run."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 2), ("val", 2)):
        for c in IMAGE_FOLDER_CLASSES:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                h, w = rng.integers(180, 300, size=2)
                pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{c}_{i}.JPEG", quality=90)
    return root


TINY_RESNET9S = {"train_subset": 256, "epochs": 1, "batch_size": 64, "model_args": {"widths": [8, 8, 16, 32]}}
"""The fast recipe made tiny: 256 images, one epoch, widths 8-8-16-32 (a second or two)."""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """One finished tiny resnet9s run (:data:`TINY_RESNET9S`), shared by a test module."""
    from fixnorm_zoo.engine.train import train
    from fixnorm_zoo.recipe import load_recipe

    out = tmp_path_factory.mktemp("run") / "run"
    train(
        load_recipe("fashion_mnist/resnet9s_fixnorm", overrides=TINY_RESNET9S), output_dir=out, progress=False
    )
    reset_accelerate()
    return out


@pytest.fixture
def registry(tmp_path) -> Path:
    """A copy of the package's zoo.json to publish into."""
    path = tmp_path / "zoo.json"
    shutil.copyfile(Path(__file__).resolve().parent.parent / "fixnorm_zoo" / "zoo.json", path)
    return path
