"""Recipe options measured by the ablations (eval/results.csv rows explore_*): frozen BatchNorm scale, BatchNorm momentum, EMA warm-up and
alternating flips. Each is checked for doing what it says on a tiny real run or loader, and for refusing misuse."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import tiny_recipe
from safetensors.torch import load_file

from fixnorm_zoo.data.fashion_mnist import InMemoryLoader
from fixnorm_zoo.engine import train as train_mod
from fixnorm_zoo.errors import RecipeError
from fixnorm_zoo.models.build import configure_batchnorm, model_from_recipe
from fixnorm_zoo.optim.fixnorm import param_roles


def test_frozen_bn_scale_stays_one_through_training_and_leaves_the_optimizer(tmp_path) -> None:
    recipe = tiny_recipe(freeze_bn_scale=True, bn_momentum=0.4, epochs=1, train_subset=256)
    model = model_from_recipe(recipe)
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
    model = model_from_recipe(tiny_recipe())
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


def _resnet9s(**overrides):
    from helpers import TINY_RESNET9S

    from fixnorm_zoo.recipe import load_recipe

    return load_recipe("fashion_mnist/resnet9s_fixnorm", overrides={**TINY_RESNET9S, **overrides})


NO_WARMUP = {"warmup_epochs": 0, "epochs": 10}
"""A cosine schedule without warm-up: warm-up starts every group at the same warmup_lr, so ratios hold only after."""


def _scheduled_lrs(recipe) -> list[tuple[float, set[str], bool]]:
    """Each group's LR three updates into timm's schedule, the names of the parameters it holds, and whether it is
    a matrix (Muon) group."""
    from fixnorm_zoo.optim.factory import build_optimizer, build_scheduler

    model = model_from_recipe(recipe)
    names = {id(p): n for n, p in model.named_parameters()}
    optimizer = build_optimizer(recipe, model)
    scheduler = build_scheduler(recipe, optimizer, 10)
    scheduler.step_update(3)
    return [
        (g["lr"], {names[id(p)] for p in g["params"]}, bool(g.get("matrix"))) for g in optimizer.param_groups
    ]


@pytest.mark.parametrize("method", ["fixnorm", "wd"])
def test_muon_sgd_part_runs_at_aux_lr_scale_times_the_filters_lr(method) -> None:
    """Before session 13 the SGD groups also carried ``lr_scale``, so timm's scheduler applied the ratio twice."""
    extra = (
        {"method": "wd", "fc_norm": None, "invariant_norm": None, "weight_decay": 5e-4}
        if method == "wd"
        else {}
    )
    lrs = _scheduled_lrs(_resnet9s(optimizer="muon", lr=0.02, aux_lr_scale=5.0, **NO_WARMUP, **extra))
    filters = {lr for lr, names, matrix in lrs if matrix and names}
    rest = [lr for lr, names, matrix in lrs if not matrix and names]
    assert len(filters) == 1 and rest
    (filter_lr,) = filters
    assert all(r == pytest.approx(5.0 * filter_lr) for r in rest)


@pytest.mark.parametrize("method", ["fixnorm", "wd"])
def test_bn_biases_get_their_own_group_at_bn_bias_lr_scale(method) -> None:
    extra = (
        {"method": "wd", "fc_norm": None, "invariant_norm": None, "weight_decay": 5e-4}
        if method == "wd"
        else {}
    )
    model = model_from_recipe(_resnet9s(**extra))
    bn = {n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    bn_biases = {f"{n}.bias" for n in bn}
    plain = _scheduled_lrs(_resnet9s(**NO_WARMUP, **extra))
    scaled = _scheduled_lrs(_resnet9s(bn_bias_lr_scale=8.0, **NO_WARMUP, **extra))
    held = [n for _, names, _ in scaled for n in names]
    assert sorted(held) == sorted(
        n for _, names, _ in plain for n in names
    )  # every parameter once, none lost
    own = [(lr, names) for lr, names, _ in scaled if names and names <= bn_biases]
    assert len(own) == 1 and own[0][1] == bn_biases
    base = next(lr for lr, names, _ in plain if bn_biases & names)
    assert own[0][0] == pytest.approx(8.0 * base)
    others = [names for lr, names, _ in scaled if names is not own[0][1]]
    assert not any(bn_biases & names for names in others)


def test_bn_bias_lr_scale_trains_and_is_refused_where_it_cannot_apply(tmp_path) -> None:
    summary = train_mod.train(_resnet9s(bn_bias_lr_scale=8.0), output_dir=tmp_path, progress=False)
    assert summary["top1"] > 10.0  # 256 images, one epoch: above chance
    with pytest.raises(RecipeError, match="bn_bias_lr_scale"):
        _resnet9s(bn_bias_lr_scale=0.0)
    with pytest.raises(RecipeError, match="bn_bias_lr_scale"):
        _resnet9s(bn_bias_lr_scale=4.0, optimizer="muon")


def test_whitened_stem_decorrelates_patches_and_stays_frozen_through_training(tmp_path) -> None:
    from fixnorm_zoo.models.build import whiten_stem

    recipe = _resnet9s(whiten_stem=True, model_args={"widths": [16, 8, 16, 32]})
    model = model_from_recipe(recipe)
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.avg_pool2d(
        torch.randn(64, 1, 30, 30, generator=g), 3, stride=1
    )  # correlated
    conv = whiten_stem(model, images, eps=1e-9)
    assert conv is model.stem[0] and not conv.weight.requires_grad
    out = torch.nn.functional.conv2d(images - images.mean(), conv.weight)  # patch mean ~ image mean here
    half = out[:, :8].transpose(0, 1).reshape(8, -1)
    cov = half @ half.T / half.shape[1]
    assert torch.allclose(cov, torch.eye(8), atol=0.05)  # whitened: unit variance, decorrelated
    assert torch.equal(conv.weight[8:], -conv.weight[:8])
    assert "stem.0.weight" not in {n for n, p in model.named_parameters() if p.requires_grad}

    train_mod.train(recipe, output_dir=tmp_path, progress=False)
    trained = load_file(str(tmp_path / "weights.safetensors"))["stem.0.weight"]
    assert torch.equal(trained[8:], -trained[:8])  # still the whitening layer: training left it alone
    rows = trained[:8].reshape(8, -1).double()
    gram = rows @ rows.T
    assert torch.allclose(
        gram, torch.diag(gram.diagonal()), atol=1e-6 * float(gram.abs().max())
    )  # orthogonal


def test_whiten_stem_refuses_a_stem_it_cannot_whiten() -> None:
    from fixnorm_zoo.models.build import whiten_stem

    model = model_from_recipe(
        _resnet9s(model_args={"widths": [20, 8, 16, 32]})
    )  # 20 filters > 2 x 9 patch values
    with pytest.raises(RecipeError, match="whiten_stem"):
        whiten_stem(model, torch.randn(4, 1, 28, 28))
    with pytest.raises(RecipeError, match="whiten_stem"):
        tiny_recipe(
            whiten_stem=True, dataset="imagenet", input_size=[3, 32, 32], mean=[0.5] * 3, std=[0.5] * 3
        )


def test_the_twins_exclusion_policies_decay_what_they_say() -> None:
    """The weight-decay twin's two exclusion policies on a depthwise model: timm's default decays depthwise
    filters (only norm affines and biases are exempt); ``norm_bias_depthwise`` exempts them too; sgdc is timm's
    corrected decay. FixNorm refuses both settings, which belong to weight decay."""
    from fixnorm_zoo.errors import RecipeError
    from fixnorm_zoo.models.build import model_from_recipe
    from fixnorm_zoo.optim.factory import build_optimizer
    from fixnorm_zoo.recipe import load_recipe

    def decays(**overrides) -> tuple[dict[int, float], Any]:
        recipe = load_recipe(
            "fashion_mnist/mobilenetv2_110d_wd", overrides={"weight_decay": 4e-5, **overrides}
        )
        model = model_from_recipe(recipe)
        opt = build_optimizer(recipe, model)
        return {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}, model, opt

    default, model, _ = decays()
    dw = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    dense = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == 1]
    norms = [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert dw and all(default[id(w)] == 4e-5 for w in dw)
    assert all(default[id(w)] == 4e-5 for w in dense) and all(default[id(w)] == 0.0 for w in norms)
    exempt, model, _ = decays(wd_exclude="norm_bias_depthwise")
    dw = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    dense = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == 1]
    assert all(exempt[id(w)] == 0.0 for w in dw) and all(exempt[id(w)] == 4e-5 for w in dense)
    _, _, opt = decays(optimizer="sgdc")
    assert type(opt).__name__ == "SGDW" and opt.defaults.get("corrected_weight_decay") is True
    with pytest.raises(RecipeError, match="wd_exclude"):
        load_recipe("fashion_mnist/mobilenetv2_110d_fixnorm", overrides={"wd_exclude": "norm_bias_depthwise"})
