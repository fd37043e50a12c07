"""``fixnorm_zoo.load(name)``: a zoo model as a ready, eval-mode timm model with verified weights.

The model is built from the registry (a stock timm architecture + ``model_args``), its eval preprocessing set as
timm's ``pretrained_cfg`` (so ``timm.data.resolve_data_config(model=model)`` and ``get_transforms`` agree), and the
weights come from :func:`fixnorm_zoo.hub.fetch_weights` (pinned revision, sha256 checked, safetensors only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fixnorm_zoo.registry import ModelInfo, model_info

if TYPE_CHECKING:
    from torch import nn


def _pretrained_cfg(info: ModelInfo) -> dict:
    ev = info.eval_setting
    return {
        "input_size": tuple(ev["input_size"]),
        "crop_pct": ev["crop_pct"],
        "crop_mode": ev.get("crop_mode", "center"),
        "interpolation": ev["interpolation"],
        "mean": tuple(ev["mean"]),
        "std": tuple(ev["std"]),
        "num_classes": info.num_classes,
        "license": info.license,
    }


def build_model(info: ModelInfo) -> nn.Module:
    """The entry's architecture, randomly initialized, with its eval preprocessing as ``pretrained_cfg``."""
    import timm

    model = timm.create_model(info.architecture, pretrained=False, num_classes=info.num_classes,
                              in_chans=info.in_chans, **info.model_args)  # fmt: skip
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    cfg.update(_pretrained_cfg(info))
    model.pretrained_cfg = cfg
    return model


def load(
    name: str,
    *,
    pretrained: bool = True,
    num_classes: int | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
) -> nn.Module:
    """A zoo model in eval mode.

    Args:
        name: a zoo name or alias (``fixnorm_zoo.list_models()``).
        pretrained: load the published weights (strict key match); False builds the architecture alone.
        num_classes: replace the classifier with a fresh one of this size (for fine-tuning) after loading.
        revision: a Hub revision holding the same file as the registry's pinned one (default: the pinned commit);
            the sha256 check still applies.
        cache_dir: huggingface_hub cache directory (default: its usual one).
        local_files_only: never touch the network (as ``HF_HUB_OFFLINE=1``).

    Raises:
        UnknownModelError: no such model (close matches listed).
        FixNormZooError: no published weights yet (the message gives the training command), or the weights cannot
            be had (offline without a cache, say).
        IntegrityError: the weights file's sha256 differs from the registry's.
    """
    info = model_info(name)
    model = build_model(info)
    if pretrained:
        from safetensors.torch import load_file

        from fixnorm_zoo.hub import fetch_weights

        path = fetch_weights(info, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        model.load_state_dict(load_file(str(path)), strict=True)
    if num_classes is not None and num_classes != info.num_classes:
        model.reset_classifier(num_classes)
        model.pretrained_cfg["num_classes"] = num_classes
    return model.eval()


def get_transforms(name: str):
    """The eval transform of a zoo model (PIL image → normalized tensor), from its registry eval setting."""
    from timm.data import create_transform

    cfg = _pretrained_cfg(model_info(name))
    return create_transform(input_size=cfg["input_size"], is_training=False, crop_pct=cfg["crop_pct"],
                            crop_mode=cfg["crop_mode"], interpolation=cfg["interpolation"], mean=cfg["mean"],
                            std=cfg["std"])  # fmt: skip
