"""Cost of the small-image adaptations of the mobile families on Fashion-MNIST: training images/s of one FixNorm
step (forward, backward, FixNorm update; batch 256, channels_last, fp32) per family and adaptation, against the
resnet9s recipe measured in the same run, and the implied reference epochs per training epoch (50,000 images).

    .venv/bin/python bench/fmnist_adaptations.py --ref-epoch-s SECONDS [--threads 2] [--steps 12]

Run it alone on the machine, right after ``python ../shared/yardstick/reference_epoch.py`` (its figure is
``--ref-epoch-s``). The adaptations are the ones plain timm expresses: the input upscaled (``input_size``, the
images resized by PIL as timm's eval transform does) and dilation in the last stages (``model_args.output_stride``).
Output: bench/fmnist_adaptations.txt (with the machine named). Ratios only are comparable across machines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from fixnorm_zoo.models.build import model_from_recipe
from fixnorm_zoo.optim.factory import build_optimizer
from fixnorm_zoo.recipe import load_recipe
from fixnorm_zoo.utils.provenance import hardware

CASES = {
    "resnet9s (peer)": ("fashion_mnist/resnet9s_fixnorm", {}),
    "mobilenetv2_110d 28px os32": ("fashion_mnist/mobilenetv2_110d_fixnorm", {}),
    "mobilenetv2_110d 28px os16": (
        "fashion_mnist/mobilenetv2_110d_fixnorm",
        {"model_args": {"output_stride": 16}},
    ),
    "mobilenetv2_110d 56px os32": ("fashion_mnist/mobilenetv2_110d_fixnorm", {"input_size": [1, 56, 56]}),
    "efficientnet_b0 28px os32": ("fashion_mnist/efficientnet_b0_fixnorm", {}),
    "efficientnet_b0 28px os16": (
        "fashion_mnist/efficientnet_b0_fixnorm",
        {"model_args": {"output_stride": 16}},
    ),
    "efficientnet_b0 56px os32": ("fashion_mnist/efficientnet_b0_fixnorm", {"input_size": [1, 56, 56]}),
}


def step_speed(recipe_ref: str, overrides: dict, *, steps: int) -> float:
    """Median images/s of ``steps`` timed training steps (after 3 warm-up steps) on random batches."""
    recipe = load_recipe(recipe_ref, overrides=overrides)
    torch.manual_seed(0)
    model = model_from_recipe(recipe).to(memory_format=torch.channels_last).train()
    optimizer = build_optimizer(recipe, model)
    x = torch.randn(recipe.batch_size, *recipe.input_size).to(memory_format=torch.channels_last)
    y = torch.randint(0, recipe.num_classes, (recipe.batch_size,))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    times = []
    for i in range(steps + 3):
        t = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
        if i >= 3:
            times.append(time.perf_counter() - t)
    return recipe.batch_size / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ref-epoch-s", type=float, required=True, help="the yardstick's reference epoch, seconds"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".txt")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = [
        f"# {hardware()}, {args.threads} threads, batch 256, channels_last, fp32, FixNorm step; "
        f"reference epoch {args.ref_epoch_s:.2f} s",
        f"{'case':<30} {'img/s':>8} {'÷ resnet9s':>11} {'ref epochs per epoch':>21}",
    ]
    peer = None
    for name, (ref, overrides) in CASES.items():
        speed = step_speed(ref, overrides, steps=args.steps)
        peer = peer or speed
        lines.append(
            f"{name:<30} {speed:>8.0f} {speed / peer:>11.2f} {50_000 / speed / args.ref_epoch_s:>21.2f}"
        )
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
