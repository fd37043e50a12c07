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
from helpers import IMAGE_FOLDER_CLASSES, TINY_RESNET9S, reset_accelerate, run_cli  # noqa: E402


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


@pytest.fixture
def cli():
    """``cli("list", ...)``: the command in a child process (:func:`helpers.run_cli`)."""
    return run_cli
