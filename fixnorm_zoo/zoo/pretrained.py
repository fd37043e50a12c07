"""``fixnorm_zoo.load(name)``: a zoo model as a ready, eval-mode timm model with verified weights.

The model is built from the registry (a timm architecture + ``model_args``) with its eval preprocessing as timm's
``pretrained_cfg`` (so ``timm.data.resolve_data_config(model=model)``, timm's ``validate.py`` and
``get_transforms`` agree), and the weights come from :func:`fixnorm_zoo.zoo.hub.read_verified_weights` (pinned
revision, sha256 checked on the very bytes that are deserialized, safetensors only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fixnorm_zoo.errors import IntegrityError, UsageError
from fixnorm_zoo.zoo.registry import ModelInfo, Registry

if TYPE_CHECKING:
    from torch import nn

HF_HUB_PREFIX = "hf-hub:"


def pretrained_cfg_of(info: ModelInfo) -> dict:
    """The entry's timm ``pretrained_cfg`` overlay: its eval setting, head, label names and license."""
    from fixnorm_zoo.models.build import label_names_for, zoo_pretrained_cfg

    return zoo_pretrained_cfg(
        info.eval_setting,
        num_classes=info.num_classes,
        license=info.license,
        label_names=label_names_for(info.dataset, info.num_classes),
    )


def model_from_entry(info: ModelInfo) -> nn.Module:
    """The entry's architecture, randomly initialized, with its eval preprocessing as ``pretrained_cfg``."""
    from fixnorm_zoo.models.build import build_timm_model

    return build_timm_model(
        info.architecture,
        num_classes=info.num_classes,
        in_chans=info.in_chans,
        model_args=info.model_args,
        pretrained_cfg=pretrained_cfg_of(info),
    )


def resolve_info(name: str, *, registry: Registry | None = None) -> ModelInfo:
    """A zoo name, an alias, or ``hf-hub:ORG/NAME`` of a published zoo repo -> its registry entry.

    Raises:
        UnknownModelError: no such model (close matches listed), or no zoo entry publishes that Hub repo.
    """
    reg = registry or Registry()
    if name.startswith(HF_HUB_PREFIX):
        return reg.by_repo_id(name.removeprefix(HF_HUB_PREFIX))
    return reg.get(name)


def load(
    name: str,
    *,
    pretrained: bool = True,
    num_classes: int | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
    mirror: str | Path | None = None,
    registry: str | Path | None = None,
) -> nn.Module:
    """A zoo model in eval mode.

    Args:
        name: a zoo name or alias (``fixnorm_zoo.list_models()``), or ``hf-hub:ORG/NAME`` of a zoo repo (the
            registry's sha256 pin still applies).
        pretrained: load the published weights (strict key match); False builds the architecture alone.
        num_classes: replace the classifier with a fresh one of this size (for fine-tuning) after loading.
        revision: a Hub revision holding the same file as the registry's pinned one (default: the pinned commit);
            the sha256 check still applies.
        cache_dir: huggingface_hub cache directory (default: its usual one).
        local_files_only: never touch the network (as ``HF_HUB_OFFLINE=1``).
        mirror: a folder in the Hub's layout (``MIRROR/ORG/NAME/model.safetensors``) to read instead of the Hub
            (default: ``$FIXNORM_ZOO_HUB`` when set).
        registry: a registry file other than the package's ``zoo.json``.

    Raises:
        UnknownModelError: no such model (close matches listed).
        WeightsUnavailable: no published weights yet (the message gives the training command), or the weights
            cannot be had (offline without a cache, say).
        UsageError: ``num_classes`` is not positive, or a revision is asked of a mirror.
        IntegrityError: the weights file's sha256 differs from the registry's, or its tensors do not fit the
            model the entry describes.
    """
    if num_classes is not None and (isinstance(num_classes, bool) or num_classes < 1):
        raise UsageError(f"load(num_classes={num_classes!r}): give a positive number of classes, or None")
    info = resolve_info(name, registry=Registry(registry) if registry else None)
    model = model_from_entry(info)
    if pretrained:
        from safetensors.torch import load as load_safetensors

        from fixnorm_zoo.zoo.hub import read_verified_weights

        data = read_verified_weights(
            info, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, mirror=mirror
        )
        from safetensors import SafetensorError

        try:
            model.load_state_dict(load_safetensors(data), strict=True)
        except (
            SafetensorError,
            RuntimeError,
        ) as e:  # verified bytes that are not this entry's model: a bad entry
            first = " ".join(str(e).split())[:300]
            raise IntegrityError(
                f"{info.name}: its sha256-verified weights cannot be loaded into the model its registry entry "
                f"describes ({info.architecture}, model_args {info.model_args}, num_classes {info.num_classes}; "
                f"{type(e).__name__}: {first}). Fix the entry (architecture, model_args, num_classes, hub.sha256) to "
                "match the weights it was published with"
            ) from None
    if num_classes is not None and num_classes != info.num_classes:
        model.reset_classifier(num_classes)
        model.pretrained_cfg["num_classes"] = num_classes
        model.pretrained_cfg.pop("label_names", None)
    return model.eval()


def get_transforms(name: str, *, registry: str | Path | None = None):
    """The eval transform of a zoo model (PIL image -> normalized tensor), built by timm from its eval setting."""
    from fixnorm_zoo.data.transforms import eval_transform

    info = resolve_info(name, registry=Registry(registry) if registry else None)
    return eval_transform(pretrained_cfg_of(info))
