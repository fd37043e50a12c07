"""Time of a training step with FixNorm against the same step with SGD + weight decay, measured in one run.

    .venv/bin/python bench/fixnorm_overhead.py [--repeats 7] [--models efficientnet_b0 resnet50 demo]

For each model, both optimizers train the same model copy on the same batch; steps are interleaved (A, B, A, B, ...)
so drifts in machine speed hit both alike, and the median step time of each is compared. The optimizer step alone
(the part FixNorm changes) is timed too, because a step's time on 2 CPU cores is noisy at the percent level.
Goal: whole-step ratio <= 1.03.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import timm.optim
import torch
from torch import nn

from fixnorm_zoo.fixnorm import FixNorm

MODELS = {
    "efficientnet_b0": dict(name="efficientnet_b0", kwargs={}, input=(3, 224, 224), batch=32),
    "resnet50": dict(name="resnet50", kwargs={}, input=(3, 224, 224), batch=32),
    # the demo's model (recipes/fashion_mnist/demo_fixnorm.yaml): where the optimizer's share of a step is largest
    "demo": dict(name="resnet18", kwargs={"channels": (32, 64, 128, 256)}, input=(1, 28, 28), batch=128),
}


def _make(cfg: dict, method: str) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = timm.create_model(cfg["name"], num_classes=10 if cfg["input"][0] == 1 else 1000,
                              in_chans=cfg["input"][0], **cfg["kwargs"])  # fmt: skip
    if method == "fixnorm":
        opt = FixNorm(model, torch.optim.SGD, lr=0.01, momentum=0.9, nesterov=True, fc_norm=8.0,
                      example_input=torch.randn(2, *cfg["input"]))  # fmt: skip
    else:
        groups = timm.optim.param_groups_weight_decay(model, weight_decay=5e-4)
        opt = torch.optim.SGD(groups, lr=0.01, momentum=0.9, nesterov=True)
    return model.train(), opt


def _step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    t0 = time.perf_counter()
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    t1 = time.perf_counter()
    opt.step()
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1


def bench(cfg: dict, repeats: int) -> dict[str, float]:
    x = torch.randn(cfg["batch"], *cfg["input"])
    y = torch.randint(0, 10, (cfg["batch"],))
    runs = {m: _make(cfg, m) for m in ("fixnorm", "wd")}
    for m in runs:  # warm up
        _step(*runs[m], x, y)
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in runs}
    for _ in range(repeats):
        for m in runs:
            times[m].append(_step(*runs[m], x, y))
    # optimizer step alone: cheap, so many repeats
    opt_times: dict[str, list[float]] = {m: [] for m in runs}
    for _ in range(max(20, repeats * 5)):
        for m, (_model, opt) in runs.items():
            t0 = time.perf_counter()
            opt.step()
            opt_times[m].append(time.perf_counter() - t0)
    step = {m: statistics.median(t for t, _ in v) for m, v in times.items()}
    opt_step = {m: statistics.median(v) for m, v in opt_times.items()}
    return {
        "step_fixnorm_ms": 1e3 * step["fixnorm"],
        "step_wd_ms": 1e3 * step["wd"],
        "step_ratio": step["fixnorm"] / step["wd"],
        "opt_fixnorm_ms": 1e3 * opt_step["fixnorm"],
        "opt_wd_ms": 1e3 * opt_step["wd"],
        "projection_share": (opt_step["fixnorm"] - opt_step["wd"]) / step["wd"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats} interleaved steps")
    print(f"{'model':<16}{'batch':>6}{'FixNorm ms':>12}{'SGD+WD ms':>11}{'ratio':>8}"
          f"{'opt FixNorm ms':>16}{'opt SGD+WD ms':>15}{'extra/step':>12}")  # fmt: skip
    for key in args.models:
        cfg = MODELS[key]
        r = bench(cfg, args.repeats)
        print(f"{key:<16}{cfg['batch']:>6}{r['step_fixnorm_ms']:>12.1f}{r['step_wd_ms']:>11.1f}{r['step_ratio']:>8.3f}"
              f"{r['opt_fixnorm_ms']:>16.2f}{r['opt_wd_ms']:>15.2f}{100 * r['projection_share']:>11.2f}%", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
