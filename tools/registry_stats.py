"""Recompute each zoo entry's params and GMACs (at its eval input size) from its recipe; print them, or with
--write store them in fixnorm_zoo/zoo.json. tests/test_registry.py checks the stored values against this."""

from __future__ import annotations

import argparse
import json
import sys


def measure(recipe_ref: str) -> tuple[float, float]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fixnorm_zoo.models.build import model_from_recipe
    from fixnorm_zoo.recipe import load_recipe

    recipe = load_recipe(recipe_ref)
    model = model_from_recipe(recipe).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *recipe.input_size))
    return round(params, 3), round(counter.get_total_flops() / 2 / 1e9, 4)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    from fixnorm_zoo.zoo.registry import REGISTRY_FILE, write_registry

    data = json.loads(REGISTRY_FILE.read_text())
    for d in data["models"]:
        d["params_m"], d["gmacs"] = measure(d["recipe"])
        print(f"{d['name']:<32} {d['params_m']:>8.3f}M {d['gmacs']:>8.4f} GMACs")
    if args.write:
        write_registry(data, path=REGISTRY_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
