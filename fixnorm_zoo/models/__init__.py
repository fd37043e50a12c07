"""Models: timm models built from a recipe or a zoo entry, and the small-input architectures registered with timm.

Modules::

    resnet9s.py resnet9s (a 28 px ResNet-9), registered with timm
    build.py    timm models from a recipe (model_from_recipe) or by name (build_timm_model), with the zoo's pretrained_cfg
"""

from fixnorm_zoo._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "model_from_recipe": "build",
        "build_timm_model": "build",
        "zoo_pretrained_cfg": "build",
        "ResNet9s": "resnet9s",
    },
)
