"""The eval preprocessing of a model: its eval setting (timm's ``pretrained_cfg`` keys) and the one transform built
from it. Why here, under ``data``: the setting travels with the weights (a recipe's, a run's or a zoo entry's) and the
image loaders, the model builder and the zoo all read it, so it sits below all of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fixnorm_zoo.recipe import Recipe

EVAL_KEYS = ("input_size", "crop_pct", "crop_mode", "interpolation", "mean", "std")
"""An eval setting's keys, in timm's ``pretrained_cfg`` names."""
REQUIRED_EVAL_KEYS = tuple(k for k in EVAL_KEYS if k != "crop_mode")  # crop_mode defaults to "center"


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


def eval_transform(setting: dict[str, Any]) -> Any:
    """The eval transform of an eval setting (PIL image -> normalized tensor), built as timm's validate.py builds it:
    ``resolve_data_config`` over the setting, then ``create_transform``. The one builder the package uses: a run's
    training-time eval, ``fixnorm-zoo eval`` and ``get_transforms`` all transform images alike."""
    from timm.data import create_transform, resolve_data_config
    from torchvision import transforms

    pretrained_cfg = {k: setting[k] for k in EVAL_KEYS if k in setting}
    timm_transform = create_transform(**resolve_data_config(pretrained_cfg=pretrained_cfg), is_training=False)
    # any PIL image in: a colour photo through a 1-channel model (or a grayscale scan through an RGB one) is
    # converted to the model's channels first, as timm's datasets convert to RGB, instead of failing on a shape
    mode = ImageMode("L" if int(setting["input_size"][0]) == 1 else "RGB")
    return transforms.Compose([mode, *getattr(timm_transform, "transforms", [timm_transform])])


class ImageMode:
    """A transform step: a PIL image converted to ``mode`` ("L" for 1-channel models, "RGB" for 3); a picklable
    class, so data-loader workers can carry it."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, image: Any) -> Any:
        return image.convert(self.mode) if getattr(image, "mode", self.mode) != self.mode else image

    def __repr__(self) -> str:
        return f"ImageMode({self.mode!r})"
