"""Small-input architectures registered with timm: ``resnet9s`` for 28-32 px images.

Why a registered model: every stock timm ResNet starts with a stride-2 stem and a max-pool, which turn a 28 px
Fashion-MNIST image into 7x7 before the first residual block. The networks that train fast to high accuracy at this
size (Page's ResNet-9 for CIFAR-10, airbench, the CIFAR ResNet-20s) keep full resolution in their first stage. No
timm option does that, so this module adds one family to timm's registry. ``timm.create_model("resnet9s")`` and
``timm.create_model("hf-hub:ORG/NAME")`` work in any process that has run ``import fixnorm_zoo.models.resnet9s``;
``fixnorm_zoo.load`` imports it itself.

Layout (widths ``c0..c3``; every conv is 3x3 and followed by BatchNorm, so FixNorm treats all of them as
scale-invariant)::

    stem    conv c0                     28x28
    layer1  conv c1, max-pool 2         14x14   + residual (2 convs c1)
    layer2  conv c2, max-pool 2          7x7
    layer3  conv c3, max-pool 2          3x3    + residual (2 convs c3)
    head    global max-pool, linear     (timm's ClassifierHead: global_pool / drop_rate / reset_classifier work)
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import ClassifierHead
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

__all__ = ["REGISTERED_MODELS", "ResNet9s"]
REGISTERED_MODELS = ("resnet9s",)
"""The timm names this module registers (a model card tells users of these to import this module)."""


def _conv_bn_relu(in_chs: int, out_chs: int, *, pool: bool = False) -> nn.Sequential:
    """conv -> BN -> ReLU (-> max-pool): the conv's output goes straight into BN, so its weight is scale-invariant."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_chs),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    def __init__(self, chs: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(chs, chs)
        self.conv2 = _conv_bn_relu(chs, chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class ResNet9s(nn.Module):
    """ResNet-9 (Page, "How to train your ResNet") for small images: stride-1 stem, no early pooling.

    Args:
        widths: channels of the stem and the three layers.
        num_classes: classifier outputs (0: features only, as timm's ``reset_classifier(0)``).
        in_chans: input channels.
        global_pool: timm pool type of the head (``"max"`` as in ResNet-9).
        drop_rate: dropout before the classifier.
    """

    def __init__(
        self,
        *,
        widths: tuple[int, int, int, int] | list[int] = (16, 32, 64, 128),
        num_classes: int = 10,
        in_chans: int = 1,
        global_pool: str = "max",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(widths) != 4 or any(int(w) <= 0 for w in widths):
            raise ValueError(
                f"widths={widths!r}: give 4 positive channel counts (stem, layer1, layer2, layer3)"
            )
        c0, c1, c2, c3 = (int(w) for w in widths)
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = c3
        self.drop_rate = drop_rate
        self.stem = _conv_bn_relu(in_chans, c0)
        self.layer1 = nn.Sequential(_conv_bn_relu(c0, c1, pool=True), _Residual(c1))
        self.layer2 = _conv_bn_relu(c1, c2, pool=True)
        self.layer3 = nn.Sequential(_conv_bn_relu(c2, c3, pool=True), _Residual(c3))
        self.head = ClassifierHead(c3, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        self.feature_info = [
            {"num_chs": c0, "reduction": 1, "module": "stem"},
            {"num_chs": c1, "reduction": 2, "module": "layer1"},
            {"num_chs": c2, "reduction": 4, "module": "layer2"},
            {"num_chs": c3, "reduction": 8, "module": "layer3"},
        ]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, pool_type=global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer3(self.layer2(self.layer1(self.stem(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "num_classes": 10,
        "input_size": (1, 28, 28),
        "pool_size": (3, 3),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": (0.2860,),
        "std": (0.3530,),
        "first_conv": "stem.0",
        "classifier": "head.fc",
        "license": "apache-2.0",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({"resnet9s.untrained": _cfg()})


@register_model
def resnet9s(pretrained: bool = False, **kwargs: Any) -> ResNet9s:
    """ResNet-9 for 28 px inputs; width set by ``widths`` (default 16-32-64-128: 0.41M params, 17 MMACs)."""
    # 4 feature levels (stem and 3 layers): timm asks for 5 by default, so name them (out_indices= still wins)
    return build_model_with_cfg(
        ResNet9s, "resnet9s", pretrained, feature_cfg={"out_indices": (0, 1, 2, 3)}, **kwargs
    )
