"""Build the timm model a recipe names, with its eval preprocessing attached as timm's ``pretrained_cfg``.

Architectures are stock timm names plus ``model_args`` (never a custom registered class), so a published
``config.json`` loads in plain timm without this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from fixnorm_zoo.recipe import Recipe


def eval_config(recipe: Recipe) -> dict[str, Any]:
    """The eval preprocessing of a recipe, in timm's pretrained_cfg keys."""
    return {
        "input_size": tuple(recipe.input_size),
        "crop_pct": recipe.crop_pct,
        "crop_mode": "center",
        "interpolation": recipe.interpolation,
        "mean": tuple(recipe.mean),
        "std": tuple(recipe.std),
        "num_classes": recipe.num_classes,
    }


def create_model(recipe: Recipe) -> nn.Module:
    """The recipe's timm model, randomly initialized, with ``pretrained_cfg`` set to the recipe's eval settings.

    Raises:
        RecipeError: timm does not know the architecture, or rejects a ``model_args`` key.
    """
    import timm

    from fixnorm_zoo.errors import RecipeError

    if not timm.is_model(recipe.model):
        import difflib

        close = difflib.get_close_matches(recipe.model, timm.list_models(), n=5)
        raise RecipeError(
            f"recipe field model={recipe.model!r} is not a timm architecture; close matches: {close}"
        )
    try:
        model = timm.create_model(
            recipe.model,
            num_classes=recipe.num_classes,
            in_chans=recipe.in_chans,
            drop_rate=recipe.drop_rate,
            drop_path_rate=recipe.drop_path_rate or None,
            **recipe.model_args,
        )
    except TypeError as e:
        raise RecipeError(
            f"recipe field model_args={recipe.model_args!r} rejected by timm {recipe.model!r}: {e}"
        ) from e
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    cfg.update(eval_config(recipe))
    model.pretrained_cfg = cfg
    return model
