"""Every architecture this package registers with timm behaves as timm's own models do (timm tests/test_models.py's
habits): forward and backward, features_only with timm's defaults and with out_indices, reset_classifier, the
pretrained config, and FixNorm's roles."""

from __future__ import annotations

import pytest
import timm
import torch

from fixnorm_zoo.models.resnet9s import REGISTERED_MODELS
from fixnorm_zoo.optim.fixnorm import CLASSIFIER, INVARIANT, param_roles


def _input(model: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *model.pretrained_cfg["input_size"], generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", REGISTERED_MODELS)
def test_forward_backward_and_classifier_reset(name: str) -> None:
    model = timm.create_model(name)
    x = _input(model)
    out = model(x)
    assert out.shape == (2, model.num_classes) and torch.isfinite(out).all()
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.get_classifier().out_features == 3
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)


@pytest.mark.parametrize("name", REGISTERED_MODELS)
def test_features_only_with_timms_defaults_and_out_indices(name: str) -> None:
    """``features_only=True`` used to raise IndexError (4 feature levels, timm asks for 5 by default)."""
    plain = timm.create_model(name)
    model = timm.create_model(name, features_only=True)
    feats = model(_input(plain))
    info = plain.feature_info
    assert [f.shape[1] for f in feats] == model.feature_info.channels() == [i["num_chs"] for i in info]
    size = plain.pretrained_cfg["input_size"][-1]
    assert model.feature_info.reduction() == [i["reduction"] for i in info]
    assert [f.shape[-1] for f in feats] == [size // r for r in model.feature_info.reduction()]
    last_two = timm.create_model(name, features_only=True, out_indices=(len(info) - 2, len(info) - 1))
    assert [f.shape[1] for f in last_two(_input(plain))] == [i["num_chs"] for i in info[-2:]]


@pytest.mark.parametrize("name", REGISTERED_MODELS)
def test_pretrained_cfg_and_fixnorm_roles(name: str) -> None:
    model = timm.create_model(name)
    cfg = model.pretrained_cfg
    assert (
        cfg["classifier"] == "head.fc"
        and model.get_submodule(cfg["first_conv"]).in_channels == cfg["input_size"][0]
    )
    roles = param_roles(model)
    convs = [n + ".weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(roles[n] == INVARIANT for n in convs)  # every conv feeds a BatchNorm
    assert roles[cfg["classifier"] + ".weight"] == CLASSIFIER
