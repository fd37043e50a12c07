"""``fixnorm_zoo.load(name)`` on a warm cache (sha256 check included) against
``timm.create_model("hf-hub:ORG/NAME", pretrained=True)`` on the same warm cache, in one run; and
``import fixnorm_zoo`` against ``import timm`` in fresh interpreters. Goals: both ratios <= 1.1.

The Hub is the tests' local stand-in (tests/hub_server.py) on a loopback port; the model is the Fashion-MNIST ResNet
architecture (2.8M params, 11 MB) trained for a few steps and published with ``fixnorm-zoo publish``. Timings are
alternated (A, B, A, B, ...) and the medians compared.

    .venv/bin/python bench/load_speed.py [--reps 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _median_alternated(a, b, reps: int) -> tuple[float, float]:
    ta, tb = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        a()
        ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b()
        tb.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fixnorm_load_bench_"))
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/hub_server.py")], stdout=subprocess.PIPE, text=True
    )
    port = int(server.stdout.readline().split()[1])
    registry = work / "zoo.json"
    registry.write_text((ROOT / "fixnorm_zoo/zoo.json").read_text())
    # set before huggingface_hub/timm are imported (they read these at import time)
    os.environ.update(
        HF_ENDPOINT=f"http://127.0.0.1:{port}",
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(work / "hf"),
        HF_TOKEN="hf_bench",
        FIXNORM_ZOO_REGISTRY=str(registry),
        TQDM_DISABLE="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    try:
        run = work / "run"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fixnorm_zoo.cli",
                "train",
                "fashion_mnist/resnet18_fixnorm",
                "--set",
                "train_subset=256",
                "--set",
                "epochs=1",
                "--output",
                str(run),
                "--no-progress",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fixnorm_zoo.cli",
                "publish",
                str(run),
                "--repo-id",
                "bench/resnet",
                "--name",
                "bench_resnet",
            ],
            check=True,
            capture_output=True,
        )

        import timm
        import torch

        import fixnorm_zoo

        fixnorm_zoo.load("bench_resnet")  # warm the cache (both read the same snapshot files)
        timm.create_model("hf-hub:bench/resnet", pretrained=True)
        x = torch.randn(2, 1, 28, 28)
        same = torch.equal(
            fixnorm_zoo.load("bench_resnet")(x),
            timm.create_model("hf-hub:bench/resnet", pretrained=True).eval()(x),
        )
        zoo_s, timm_s = _median_alternated(
            lambda: fixnorm_zoo.load("bench_resnet"),
            lambda: timm.create_model("hf-hub:bench/resnet", pretrained=True),
            args.reps,
        )
        print(
            f"load, warm cache ({args.reps} alternated reps, medians): fixnorm_zoo.load {zoo_s * 1e3:.1f} ms, "
            f"timm hf-hub {timm_s * 1e3:.1f} ms, ratio {zoo_s / timm_s:.3f} (goal <= 1.1); same outputs: {same}"
        )

        def imp(module: str):
            return lambda: subprocess.run([sys.executable, "-c", f"import {module}"], check=True)

        zoo_i, timm_i = _median_alternated(imp("fixnorm_zoo"), imp("timm"), max(5, args.reps // 2))
        print(
            f"import in a fresh interpreter (medians): fixnorm_zoo {zoo_i * 1e3:.0f} ms, timm {timm_i * 1e3:.0f} ms, "
            f"ratio {zoo_i / timm_i:.3f} (goal <= 1.1)"
        )
    finally:
        server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
