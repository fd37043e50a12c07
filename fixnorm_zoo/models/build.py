"""Build the timm model a recipe or a zoo entry names, with its eval preprocessing as timm's ``pretrained_cfg``.

Architectures are timm names plus ``model_args``: stock timm ones (a published ``config.json`` then loads in plain
timm without this package) and the small-input family of :mod:`fixnorm_zoo.models.resnet9s`, which this module
registers with timm before building.

Why ``pretrained_cfg_overlay``: timm starts a model's ``pretrained_cfg`` from the architecture's ImageNet weights
(3x224, bicubic, ImageNet mean/std, ``test_input_size``, ``hf_hub_id``...). Our models were trained and are scored
with other settings, and timm's own tools (``resolve_data_config``, ``validate.py``, ``save_for_hf``) read that
config; so every ImageNet-weights field is cleared at build time and the zoo's eval setting put in its place, and
``model.pretrained_cfg`` and ``model.default_cfg`` agree with the registry.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fixnorm_zoo.data.transforms import eval_config

if TYPE_CHECKING:
    import torch
    from torch import nn

    from fixnorm_zoo.recipe import Recipe

# pretrained_cfg fields that describe timm's own (ImageNet) weights, not ours: cleared on every model we build
_SOURCE_FIELDS_CLEARED = {
    "url": None,
    "file": None,
    "hf_hub_id": None,
    "hf_hub_filename": None,
    "source": None,
    "tag": None,
    "test_input_size": None,
    "test_crop_pct": None,
    "test_pool_size": None,
    "min_input_size": None,
    "pool_size": None,
    "label_offset": None,
    "label_names": None,
    "label_descriptions": None,
    "paper_ids": None,
    "paper_name": None,
    "origin_url": None,
    "notes": None,
    "description": None,
}


def zoo_pretrained_cfg(
    eval_setting: dict[str, Any],
    *,
    num_classes: int,
    label_names: Sequence[str] | None = None,
    license: str | None = "apache-2.0",
) -> dict[str, Any]:
    """The pretrained_cfg overlay of a zoo model: its eval setting, head and license, timm's source fields cleared."""
    cfg: dict[str, Any] = {
        **_SOURCE_FIELDS_CLEARED,
        "input_size": tuple(eval_setting["input_size"]),
        "crop_pct": float(eval_setting["crop_pct"]),
        "crop_mode": eval_setting.get("crop_mode", "center"),
        "interpolation": eval_setting["interpolation"],
        "mean": tuple(eval_setting["mean"]),
        "std": tuple(eval_setting["std"]),
        "num_classes": num_classes,
        "license": license,
    }
    if label_names is not None:
        cfg["label_names"] = tuple(label_names)
    return cfg


def label_names_for(dataset: str, num_classes: int) -> tuple[str, ...] | None:
    """Class names the zoo knows for a dataset (Fashion-MNIST's ten), when the head still has that many classes."""
    if dataset == "fashion_mnist" and num_classes == 10:
        from fixnorm_zoo.data.fashion_mnist import FASHION_MNIST_CLASSES

        return FASHION_MNIST_CLASSES
    return None


MAX_PARAMS = 2_000_000_000
MAX_PARAMS_ENV = "FIXNORM_ZOO_MAX_PARAMS"
"""Models past this many parameters are refused before anything is allocated (override with the variable)."""


def build_timm_model(
    architecture: str,
    *,
    num_classes: int,
    in_chans: int,
    model_args: dict[str, Any],
    pretrained_cfg: dict[str, Any],
    **kwargs: Any,
) -> nn.Module:
    """``timm.create_model`` (no weights) with ``pretrained_cfg`` as the overlay; small-input models registered.

    Raises:
        RecipeError: timm does not know the architecture, or rejects a ``model_args`` key.
    """
    import timm

    import fixnorm_zoo.models.resnet9s  # noqa: F401  (registers the small-input models with timm)
    from fixnorm_zoo.errors import RecipeError

    if not timm.is_model(architecture):
        close = difflib.get_close_matches(architecture, timm.list_models(), n=5)
        raise RecipeError(f"model={architecture!r} is not a timm architecture; close matches: {close}")

    def build():
        return timm.create_model(
            architecture,
            pretrained=False,
            num_classes=num_classes,
            in_chans=in_chans,
            pretrained_cfg_overlay=pretrained_cfg,
            **kwargs,
            **model_args,
        )

    try:
        import torch

        with torch.device(
            "meta"
        ):  # sized first, without memory: widths=[..., 100000] must not allocate 400 GB
            count = sum(p.numel() for p in build().parameters())
        limit = int(os.environ.get(MAX_PARAMS_ENV, MAX_PARAMS))
        if count > limit:
            raise RecipeError(
                f"{architecture} with num_classes={num_classes}, model_args={model_args} has {count:,} parameters, "
                f"over the limit of {limit:,}: check widths/num_classes, or raise the limit with {MAX_PARAMS_ENV}="
            )
        return build()
    except TypeError as e:
        raise RecipeError(f"model_args={model_args!r} rejected by timm {architecture!r}: {e}") from e


def model_from_recipe(recipe: Recipe) -> nn.Module:
    """The recipe's timm model, randomly initialized, with ``pretrained_cfg`` set to the recipe's eval settings.

    Raises:
        RecipeError: timm does not know the architecture, or rejects a ``model_args`` key.
    """
    cfg = zoo_pretrained_cfg(
        eval_config(recipe),
        num_classes=recipe.num_classes,
        label_names=label_names_for(recipe.dataset, recipe.num_classes),
    )
    return build_timm_model(
        recipe.model,
        num_classes=recipe.num_classes,
        in_chans=recipe.in_chans,
        model_args=recipe.model_args,
        pretrained_cfg=cfg,
        drop_rate=recipe.drop_rate,
        drop_path_rate=recipe.drop_path_rate or None,
    )


def configure_batchnorm(
    model: nn.Module, *, momentum: float | None = None, freeze_scale: bool = False
) -> int:
    """Set every BatchNorm layer's running-statistics ``momentum`` (None: keep it) and, with ``freeze_scale``, hold
    its weight (gamma) at 1 with ``requires_grad`` off, so optimizers (FixNorm's role probe, timm's parameter
    groups) leave it out. Done at every start, a resume included: gamma = 1 is also what a checkpoint holds.

    Returns the number of BatchNorm layers changed (a recipe asking for either on a model with none is an error).

    Raises:
        RecipeError: ``momentum`` or ``freeze_scale`` asked for, but the model has no BatchNorm layer.
    """
    import torch

    from fixnorm_zoo.errors import RecipeError

    if momentum is None and not freeze_scale:
        return 0
    layers = batchnorm_layers(model)
    if not layers:
        raise RecipeError(
            f"bn_momentum/freeze_bn_scale set, but {type(model).__name__} has no BatchNorm layer: unset them"
        )
    for bn in layers:
        if momentum is not None:
            bn.momentum = momentum
        if freeze_scale and bn.weight is not None:
            with torch.no_grad():
                bn.weight.fill_(1.0)
            bn.weight.requires_grad_(False)
    return len(layers)


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """Every BatchNorm layer of ``model`` (timm's BatchNormAct and SyncBatchNorm included: they subclass these)."""
    from torch import nn

    return [
        m
        for m in model.modules()
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d | nn.SyncBatchNorm)
    ]


def whiten_stem(model: nn.Module, images: torch.Tensor, *, eps: float = 5e-4) -> nn.Module:
    """Set the model's first conv to a patch-whitening layer and freeze it (airbench's first layer).

    Its ``out_channels / 2`` filters are the top principal directions of the ``k x k`` patches of ``images``
    (normalized as the model sees them), each scaled by ``1 / sqrt(eigenvalue + eps)``, and the other half their
    negatives, so a ReLU after it passes both signs. Why frozen: the first layer then starts, and stays, at the
    decorrelated basis that a learned stem would have to find; it is left out of every optimizer
    (``requires_grad`` off), FixNorm's role probe included. Deterministic (no RNG), so a resume recomputes the
    same filters that its checkpoint holds.

    Returns the conv changed.

    Raises:
        RecipeError: the first conv is grouped, has an odd number of filters, or more than twice its patch size.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F

    from fixnorm_zoo.errors import RecipeError

    first = (getattr(model, "pretrained_cfg", None) or {}).get("first_conv")
    conv = (
        model.get_submodule(first) if first else next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    )
    dim = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    half = conv.out_channels // 2
    if conv.groups != 1 or conv.out_channels % 2 or half > dim:
        raise RecipeError(
            f"whiten_stem: the stem conv {first or type(conv).__name__} has {conv.out_channels} filters over "
            f"{dim}-value patches (groups {conv.groups}); whitening needs an even count of at most {2 * dim}, "
            "ungrouped: change the stem width or unset whiten_stem"
        )
    with torch.no_grad():
        patches = F.unfold(images.float(), conv.kernel_size, dilation=conv.dilation, stride=conv.stride)
        patches = patches.transpose(1, 2).reshape(-1, dim).double()
        patches -= patches.mean(0)
        eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))  # ascending
        top = eigenvectors[:, -half:].flip(1) / (eigenvalues[-half:].flip(0) + eps).sqrt()
        filters = top.T.reshape(half, *conv.weight.shape[1:])
        conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight.dtype))
        if conv.bias is not None:
            conv.bias.zero_()
            conv.bias.requires_grad_(False)
    conv.weight.requires_grad_(False)
    return conv
