"""fixnorm_zoo: FixNorm training for timm models and a zoo of FixNorm baselines.

The top-level import stays light (no torch, timm or huggingface_hub until a name is used): names resolve lazily.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from fixnorm_zoo._lazy import attach

# public name -> the module that defines it (imported on first use)
__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "FixNorm": "optim.fixnorm",
        "param_roles": "optim.fixnorm",
        "load": "zoo.pretrained",
        "get_transforms": "zoo.pretrained",
        "list_models": "zoo.registry",
        "model_info": "zoo.registry",
    },
)
__all__ = [*__all__, "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from fixnorm_zoo.optim.fixnorm import FixNorm, param_roles  # noqa: F401
    from fixnorm_zoo.zoo.pretrained import get_transforms, load  # noqa: F401
    from fixnorm_zoo.zoo.registry import list_models, model_info  # noqa: F401


class _RegisterTagsWhenTimmLoads(importlib.abc.MetaPathFinder):
    """Runs :func:`fixnorm_zoo.zoo.timm_tags.register_timm_tags` once, right after ``import timm`` finishes, so that
    ``timm.create_model("resnet9s.fixnorm_fmnist", pretrained=True)`` works after ``import fixnorm_zoo`` without
    this import loading timm itself. A registry that cannot be read costs a warning, never the user's import."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "timm":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("timm")
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_then_register(module: Any) -> None:
            exec_module(module)
            _register_tags()

        loader.exec_module = exec_then_register
        return spec


def _register_tags() -> None:
    try:
        from fixnorm_zoo.zoo.timm_tags import register_timm_tags

        register_timm_tags()
    except Exception as e:  # noqa: BLE001 - a user's `import timm` must not fail over the zoo's tags
        warnings.warn(f"fixnorm_zoo: the zoo's timm tags are not registered ({e})", stacklevel=2)


if not os.environ.get("FIXNORM_ZOO_NO_TIMM_TAGS"):
    if "timm" in sys.modules:
        _register_tags()
    elif not any(isinstance(f, _RegisterTagsWhenTimmLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterTagsWhenTimmLoads())
