"""The zoo's published weights as timm pretrained tags.

After :func:`register_timm_tags` (run by itself when timm is imported in a process that imported ``fixnorm_zoo``
first, or called by hand), ``timm.create_model("resnet9s.fixnorm_fmnist", pretrained=True)`` downloads the zoo's Hub
repo at the registry's pinned commit, and ``timm.list_models(pretrained=True)`` lists the zoo's tags beside timm's.

Why a wrapper entrypoint: timm keeps one set of pretrained cfgs per architecture, read when its entrypoint is
registered, and has no public call that adds a tag to an existing set. Registering a thin wrapper under the same
name, with timm's own cfgs first (so timm's default weights stay the default) and the zoo's after, uses only timm's
public registration API (``generate_default_cfgs``, ``register_model``). The wrapper adds the entry's
``model_args`` (resnet18's ``output_stride: 8``, say) when its tag is asked for; arguments the caller passes win.
What the wrapper changes for timm users: ``timm.list_models(module=...)`` lists a wrapped architecture under this
module instead of its timm module.

timm's loader does not check a sha256 (the Hub checks sizes): ``fixnorm_zoo.load`` is the verified path.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fixnorm_zoo.zoo.registry import ModelInfo, Registry

__all__ = ["PAPER_ID", "register_timm_tags", "timm_pretrained_cfg"]

PAPER_ID = "arXiv:2103.15345"
default_cfgs: dict[str, Any] = {}  # read by timm's register_model for the wrappers defined here
_ORIGINAL_ENTRYPOINTS: dict[str, Callable[..., Any]] = {}


def timm_pretrained_cfg(info: ModelInfo) -> dict[str, Any]:
    """The timm pretrained cfg of a published entry: its Hub repo (``@commit`` when pinned), eval setting, classes,
    the tag and the paper's arXiv id."""
    s = info.eval_setting
    hub_id = info.hub.repo_id + (f"@{info.hub.revision}" if info.hub.revision else "")
    return {
        "hf_hub_id": hub_id,
        "num_classes": info.num_classes,
        "input_size": tuple(s["input_size"]),
        "crop_pct": s.get("crop_pct", 1.0),
        "crop_mode": s.get("crop_mode", "center"),
        "interpolation": s.get("interpolation", "bilinear"),
        "mean": tuple(s["mean"]),
        "std": tuple(s["std"]),
        "license": info.license,
        "paper_ids": PAPER_ID,
        "notes": (f"fixnorm_zoo {info.method} model; verified load: fixnorm_zoo.load({info.name!r})",),
    }


def _wrapper(
    arch: str, original: Callable[..., Any], model_args: dict[str, dict[str, Any]]
) -> Callable[..., Any]:
    def entrypoint(pretrained: bool = False, **kwargs: Any) -> Any:
        tag = kwargs.get("pretrained_cfg")
        if tag is None:
            tag = default_cfgs[arch].tags[0] if arch in default_cfgs else None
        for k, v in model_args.get(tag, {}).items() if isinstance(tag, str) else ():
            kwargs.setdefault(k, v)
        return original(pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = arch
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = original.__doc__
    return entrypoint


def register_timm_tags(*, registry: str | Path | None = None) -> list[str]:
    """Register every published zoo entry named ``architecture.tag`` as a timm pretrained tag; returns the names
    registered. Safe to call again (a changed registry replaces the zoo's tags; timm's own stay).

    Raises:
        RegistryError: the registry cannot be read or is malformed.
    """
    import timm.models
    from timm.models import generate_default_cfgs, get_arch_pretrained_cfgs, model_entrypoint, register_model

    import fixnorm_zoo.models.resnet9s  # noqa: F401  (registers resnet9s)

    by_arch: dict[str, list[ModelInfo]] = defaultdict(list)
    for m in Registry(registry).models():
        if m.status == "published" and m.tag and m.hub.repo_id and m.eval_setting.get("input_size"):
            by_arch[m.architecture].append(m)
    names = []
    for arch, entries in sorted(by_arch.items()):
        if not timm.models.is_model(arch):
            continue  # an architecture this timm does not have: nothing to attach the tag to
        original = _ORIGINAL_ENTRYPOINTS.setdefault(arch, model_entrypoint(arch))
        theirs = {
            k: v
            for k, v in get_arch_pretrained_cfgs(arch).items()
            if not (v.notes and str(v.notes[0]).startswith("fixnorm_zoo "))  # a previous registration's
        }
        # the architecture's own layout fields (first conv, classifier, pool size) stay in every tag's cfg
        layout = {}
        for cfg in theirs.values():
            layout = {
                k: getattr(cfg, k) for k in ("first_conv", "classifier", "pool_size") if getattr(cfg, k, None)
            }
            break
        taken = sorted(f"{arch}.{m.tag}" for m in entries if f"{arch}.{m.tag}" in theirs)
        if (
            taken
        ):  # timm's own weights stay timm's: a zoo entry never replaces them, nor the architecture's default
            warnings.warn(
                f"fixnorm_zoo: registry entries {taken} are named like timm's own pretrained tags and are not "
                "registered with timm (rename them; fixnorm_zoo.load() still reads them, sha256-checked)",
                stacklevel=2,
            )
        entries = [m for m in entries if f"{arch}.{m.tag}" not in theirs]
        if not entries:
            continue
        ours = {f"{arch}.{m.tag}": {**layout, **timm_pretrained_cfg(m)} for m in entries}
        default_cfgs.update(generate_default_cfgs({**theirs, **ours}))
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # "Overwriting ARCH in registry": the wrapper replaces it on purpose
            register_model(_wrapper(arch, original, {m.tag: dict(m.model_args) for m in entries}))
        names += sorted(ours)
    return names
