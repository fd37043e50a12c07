"""Recipe options measured by issue 20's ablations: frozen BatchNorm scale, BatchNorm momentum, EMA warm-up and
alternating flips. Each is checked for doing what it says on a tiny real run or loader, and for refusing misuse."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_recipe
from safetensors.torch import load_file

from fixnorm_zoo import train as train_mod
from fixnorm_zoo.errors import RecipeError
from fixnorm_zoo.fashion_mnist import InMemoryLoader
from fixnorm_zoo.fixnorm import param_roles
from fixnorm_zoo.models import configure_batchnorm, create_model


def test_frozen_bn_scale_stays_one_through_training_and_leaves_the_optimizer(tmp_path) -> None:
    recipe = tiny_recipe(freeze_bn_scale=True, bn_momentum=0.4, epochs=1, train_subset=256)
    model = create_model(recipe)
    assert configure_batchnorm(model, momentum=0.4, freeze_scale=True) > 0
    roles = param_roles(model)
    bn_weights = {n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert not any(n.rsplit(".", 1)[0] in bn_weights and n.endswith(".weight") for n in roles)
    assert any(n.rsplit(".", 1)[0] in bn_weights and n.endswith(".bias") for n in roles)  # biases still train

    train_mod.train(recipe, output_dir=tmp_path, progress=False)
    weights = load_file(str(tmp_path / "weights.safetensors"))
    gammas = [weights[f"{n}.weight"] for n in bn_weights]
    betas = [weights[f"{n}.bias"] for n in bn_weights]
    assert gammas and all(torch.equal(g, torch.ones_like(g)) for g in gammas)
    assert any(b.abs().max() > 0 for b in betas)  # the run trained: BN biases moved off their zero init


def test_bn_momentum_is_set_on_every_batchnorm() -> None:
    model = create_model(tiny_recipe())
    configure_batchnorm(model, momentum=0.4)
    momenta = {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.4}
    assert all(m.weight.requires_grad for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_batchnorm_options_on_a_model_without_batchnorm_are_refused() -> None:
    with pytest.raises(RecipeError, match="no BatchNorm"):
        configure_batchnorm(torch.nn.Sequential(torch.nn.Linear(2, 2)), freeze_scale=True)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"bn_momentum": 0.0}, "bn_momentum"),
        ({"bn_momentum": 1.5}, "bn_momentum"),
        ({"hflip": 1.5}, "hflip"),
        ({"hflip_mode": "alternate", "hflip": 0.3}, "hflip_mode"),
        ({"model_ema_decay": 1.0}, "model_ema_decay"),
    ],
)
def test_out_of_range_options_are_refused(overrides, match) -> None:
    with pytest.raises(RecipeError, match=match):
        tiny_recipe(**overrides)


def test_alternating_flip_shows_each_image_both_ways_over_two_epochs() -> None:
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    x = x + torch.arange(64, dtype=torch.uint8).view(64, 1, 1, 1)  # each image its own values, to trace it
    y = torch.arange(64)
    loader = InMemoryLoader(
        x, y, batch_size=16, mean=(0.0,), std=(1 / 255,), train=True, alternate_flip=True, seed=3
    )
    seen = {}
    for epoch in (0, 1, 2):
        loader.set_epoch(epoch)
        for xb, yb in loader:
            for img, label in zip(xb, yb.tolist(), strict=True):
                plain = x[label].float()
                flipped = bool(torch.equal(img, plain.flip(-1)))
                assert flipped or torch.equal(img, plain)
                seen.setdefault(label, []).append(flipped)
    assert len(seen) == 64
    assert all(f[0] != f[1] and f[0] == f[2] for f in seen.values())  # alternates epoch to epoch
    assert 16 <= sum(f[0] for f in seen.values()) <= 48  # a random half (about) in the first epoch


def test_ema_warmup_makes_a_short_run_average_its_recent_weights(tmp_path) -> None:
    """Four updates at decay 0.999: without the warm-up the average is still (nearly) the weights after the first
    update; with it the decay starts near 0.4 and the average follows the model."""

    def distance(warmup: bool) -> float:
        out = tmp_path / f"warmup_{warmup}"
        recipe = tiny_recipe(
            model_ema=True, model_ema_warmup=warmup, model_ema_decay=0.999, epochs=1, train_subset=256
        )
        summary = train_mod.train(recipe, output_dir=out, progress=False)
        assert summary["eval_weights"] == "weights_ema.safetensors"
        ema, model = (load_file(str(out / f)) for f in ("weights_ema.safetensors", "weights.safetensors"))
        return sum(float((ema[k].float() - model[k].float()).norm()) for k in model if k.endswith(".weight"))

    assert distance(True) < 0.8 * distance(False)
