"""Training speed of the Fashion-MNIST families on this CPU, against the machine's own measured ceiling.

    .venv/bin/python bench/fmnist_speed.py [--batch 256] [--steps 12] [--compile] [--bf16] [--out FILE]

For each family (the zoo's recipes' models): params, forward MMACs per image (torch's FLOP counter), img/s of a
bare training step (forward, label-smoothed loss, backward, SGD step) in NCHW and channels_last, and the achieved
training GFLOP/s (3x the forward FLOPs) as a fraction of the ceiling. The ceiling is measured in the same run: the
best of an fp32 1024x1024 matmul and a channels_last 3x3 conv at these shapes. With --compile, also the fast
recipe's model (resnet9s w16, channels_last) under ``torch.compile`` (inductor's CPU backend) against the same step
in eager mode, with the compile time: whether compiling pays on this CPU. With --bf16, each family's channels_last
step also under bf16 autocast against fp32, with the CPU's bf16 features named (AVX-512 BF16, AMX): whether
``amp: bf16`` pays depends on them. Run it with nothing else on the cores (a second torch job slows a step up to
10x).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fixnorm_zoo.models.build import model_from_recipe
from fixnorm_zoo.recipe import load_recipe

FAMILIES = {
    "resnet9s w16 (fmnist_resnet9s)": ("fashion_mnist/resnet9s_fixnorm", {}),
    "resnet9s w24": ("fashion_mnist/resnet9s_fixnorm", {"model_args": {"widths": [24, 48, 96, 192]}}),
    "resnet9s w32": ("fashion_mnist/resnet9s_fixnorm", {"model_args": {"widths": [32, 64, 128, 256]}}),
    "resnet18 half, os8 (fmnist_resnet18)": ("fashion_mnist/resnet18_fixnorm", {}),
    "mobilenetv2_050 (fmnist_mobilenetv2_050)": ("fashion_mnist/mobilenetv2_050_fixnorm", {}),
}


def _median_time(fn, steps: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ceiling_gflops() -> dict[str, float]:
    """The machine's fp32 rate on the work these models do: a large matmul, and a channels_last 3x3 conv's forward
    and backward at the shapes of the zoo's small-input networks (the best of them is the denominator)."""
    out = {}
    for n in (1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        out[f"matmul_{n}"] = 2 * n**3 / _median_time(lambda a=a, b=b: a @ b, 10) / 1e9
    for chs, size, batch in ((64, 14, 256), (128, 7, 256), (256, 4, 256)):
        conv = nn.Conv2d(chs, chs, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
        x = torch.randn(batch, chs, size, size).contiguous(memory_format=torch.channels_last).requires_grad_()
        flops = 3 * 2 * batch * size * size * 9 * chs * chs  # forward + input grad + weight grad

        def fwd_bwd(conv=conv, x=x) -> None:
            conv(x).sum().backward()

        out[f"conv{chs}@{size}px_fwd+bwd"] = flops / _median_time(fwd_bwd, 10) / 1e9
    return out


def cpu_bf16_features() -> str:
    """The CPU's model and its bf16-relevant flags, from /proc/cpuinfo (empty on other systems)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    model = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), ""
    )
    flags = next(
        (line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []
    )
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return f"{model} ({' '.join(wanted) or 'no AVX-512/AMX'})"


def train_step_speed(
    model: nn.Module, *, batch: int, steps: int, channels_last: bool, bf16: bool = False
) -> float:
    model = model.train()
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = crit(model(x), y)
        loss.backward()
        opt.step()

    return batch / _median_time(step, steps)


def compile_speed(recipe_ref: str, *, batch: int, steps: int) -> tuple[float, float, float]:
    """(eager img/s, compiled img/s, seconds the first compiled steps took) for one recipe's model, channels_last.
    The compile seconds matter as much as the ratio: a 10-minute run only gains if the step saves more than that."""
    recipe = load_recipe(recipe_ref)
    eager = train_step_speed(model_from_recipe(recipe), batch=batch, steps=steps, channels_last=True)
    t0 = time.perf_counter()
    compiled_model = torch.compile(model_from_recipe(recipe).to(memory_format=torch.channels_last))
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    compiled_model.train()(x).sum().backward()  # the first call compiles forward and backward
    compile_s = time.perf_counter() - t0
    compiled = train_step_speed(compiled_model, batch=batch, steps=steps, channels_last=True)
    return eager, compiled, compile_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument(
        "--compile", action="store_true", help="also time torch.compile on the fast recipe's model"
    )
    ap.add_argument("--bf16", action="store_true", help="also time each family under bf16 autocast")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, fp32"]
    ceil = ceiling_gflops()
    peak = max(ceil.values())
    lines.append(
        "ceiling GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in ceil.items()) + f" (peak {peak:.0f})"
    )
    lines.append(
        f"{'family':42s} {'params':>7s} {'MMACs':>7s} {'NCHW img/s':>10s} {'CL img/s':>9s} "
        f"{'CL/NCHW':>7s} {'GFLOP/s':>7s} {'of peak':>7s}"
    )
    for label, (ref, overrides) in FAMILIES.items():
        recipe = load_recipe(ref, overrides=overrides)
        model = model_from_recipe(recipe)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.eval()(torch.randn(1, 1, 28, 28))
        macs = counter.get_total_flops() / 2
        params = sum(p.numel() for p in model.parameters())
        nchw = train_step_speed(
            model_from_recipe(recipe), batch=args.batch, steps=args.steps, channels_last=False
        )
        cl = train_step_speed(
            model_from_recipe(recipe), batch=args.batch, steps=args.steps, channels_last=True
        )
        gflops = 6 * macs * max(nchw, cl) / 1e9  # training = 3x the forward's 2*MACs
        lines.append(
            f"{label:42s} {params / 1e6:6.2f}M {macs / 1e6:7.1f} {nchw:10.0f} {cl:9.0f} {cl / nchw:7.2f} "
            f"{gflops:7.0f} {gflops / peak:7.0%}"
        )
    if args.bf16:
        lines.append(f"bf16 autocast on {cpu_bf16_features()}, channels_last:")
        for label, (ref, overrides) in FAMILIES.items():
            recipe = load_recipe(ref, overrides=overrides)
            fp32 = train_step_speed(
                model_from_recipe(recipe), batch=args.batch, steps=args.steps, channels_last=True
            )
            bf16 = train_step_speed(
                model_from_recipe(recipe), batch=args.batch, steps=args.steps, channels_last=True, bf16=True
            )
            lines.append(
                f"  {label:42s} fp32 {fp32:7.0f} img/s, bf16 {bf16:7.0f} img/s, bf16/fp32 {bf16 / fp32:5.2f}"
            )
    if args.compile:
        ref = FAMILIES["resnet9s w16 (fmnist_resnet9s)"][0]
        eager, compiled, compile_s = compile_speed(ref, batch=args.batch, steps=args.steps)
        lines.append(
            f"torch.compile, resnet9s w16 channels_last: eager {eager:.0f} img/s, compiled {compiled:.0f} img/s "
            f"({compiled / eager:.2f}x), first compiled step {compile_s:.0f} s"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
