"""Time of a training step with FixNorm against the same step with SGD + weight decay, measured in one run.

    .venv/bin/python bench/fixnorm_overhead.py [--repeats 7] [--models efficientnet_b0 resnet50 demo]

Both optimizers hold the same model and train it on the same batch, so forward and backward are the same work; steps
alternate (A B, B A, ...) so drifts in machine speed hit both alike, and median step times are compared. The
optimizer step alone (the only part FixNorm changes) is timed many times too: a whole step's time on 2 CPU cores
is noisy at the percent level, and "ratio (fwd/bwd + opt)" = (median fwd+bwd + FixNorm step) / (median fwd+bwd +
SGD+WD step) carries the optimizer difference without that noise. Goal: ratio <= 1.03.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import timm.optim
import torch
from torch import nn

from fixnorm_zoo.optim.fixnorm import FixNorm

MODELS = {
    "efficientnet_b0": dict(name="efficientnet_b0", kwargs={}, input=(3, 224, 224), batch=32),
    "resnet50": dict(name="resnet50", kwargs={}, input=(3, 224, 224), batch=32),
    # the demo's model (recipes/fashion_mnist/resnet18_fixnorm.yaml): where the optimizer's share of a step is largest
    "demo": dict(name="resnet18", kwargs={"channels": (32, 64, 128, 256)}, input=(1, 28, 28), batch=128),
}


def _model(cfg: dict) -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model(
        cfg["name"],
        num_classes=10 if cfg["input"][0] == 1 else 1000,
        in_chans=cfg["input"][0],
        **cfg["kwargs"],
    ).train()


def _optimizers(model: nn.Module, cfg: dict) -> dict[str, torch.optim.Optimizer]:
    """Both optimizers on the SAME model, so forward and backward are the same work for both."""
    fixnorm = FixNorm(
        model,
        torch.optim.SGD,
        lr=1e-4,
        momentum=0.9,
        nesterov=True,
        fc_norm=8.0,
        example_input=torch.randn(2, *cfg["input"]),
    )
    groups = timm.optim.param_groups_weight_decay(model, weight_decay=5e-4)
    wd = torch.optim.SGD(groups, lr=1e-4, momentum=0.9, nesterov=True)
    return {"fixnorm": fixnorm, "wd": wd}


def _step(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, float]:
    """One training step; returns (whole step, forward+backward) seconds."""
    t0 = time.perf_counter()
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    t1 = time.perf_counter()
    opt.step()
    t2 = time.perf_counter()
    return t2 - t0, t1 - t0


def bench(cfg: dict, repeats: int) -> dict[str, float]:
    model = _model(cfg)
    x = torch.randn(cfg["batch"], *cfg["input"])
    y = torch.randint(0, 10, (cfg["batch"],))
    opts = _optimizers(model, cfg)
    for opt in opts.values():  # warm up (and create momentum buffers)
        _step(model, opt, x, y)
    steps: dict[str, list[float]] = {m: [] for m in opts}
    fwd_bwd: list[float] = []
    for i in range(repeats):
        order = list(opts) if i % 2 == 0 else list(opts)[::-1]  # alternate who goes first
        for m in order:
            whole, fb = _step(model, opts[m], x, y)
            steps[m].append(whole)
            fwd_bwd.append(fb)
    # the optimizer step alone (the only part FixNorm changes): cheap, so many repeats on the last gradients
    opt_times: dict[str, list[float]] = {m: [] for m in opts}
    for i in range(max(30, repeats * 5)):
        for m in list(opts) if i % 2 == 0 else list(opts)[::-1]:
            t0 = time.perf_counter()
            opts[m].step()
            opt_times[m].append(time.perf_counter() - t0)
    med = {m: statistics.median(v) for m, v in steps.items()}
    opt_med = {m: statistics.median(v) for m, v in opt_times.items()}
    fb = statistics.median(fwd_bwd)
    return {
        "step_fixnorm_ms": 1e3 * med["fixnorm"],
        "step_wd_ms": 1e3 * med["wd"],
        "step_ratio": med["fixnorm"] / med["wd"],
        "opt_fixnorm_ms": 1e3 * opt_med["fixnorm"],
        "opt_wd_ms": 1e3 * opt_med["wd"],
        # fwd+bwd is shared work; this ratio carries the optimizer difference without the step-to-step noise
        "component_ratio": (fb + opt_med["fixnorm"]) / (fb + opt_med["wd"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats} interleaved steps"
    )
    print(
        f"{'model':<16}{'batch':>6}{'FixNorm ms':>12}{'SGD+WD ms':>11}{'ratio':>8}"
        f"{'opt FixNorm ms':>16}{'opt SGD+WD ms':>15}{'ratio (fwd/bwd + opt)':>23}"
    )
    for key in args.models:
        cfg = MODELS[key]
        r = bench(cfg, args.repeats)
        print(
            f"{key:<16}{cfg['batch']:>6}{r['step_fixnorm_ms']:>12.1f}{r['step_wd_ms']:>11.1f}{r['step_ratio']:>8.3f}"
            f"{r['opt_fixnorm_ms']:>16.2f}{r['opt_wd_ms']:>15.2f}{r['component_ratio']:>23.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
