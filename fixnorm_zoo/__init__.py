"""fixnorm_zoo: FixNorm training for timm models and a zoo of FixNorm baselines.

The top-level import stays light (no torch, timm or huggingface_hub until a name is used): names resolve lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "FixNorm": "fixnorm_zoo.fixnorm",
    "param_roles": "fixnorm_zoo.fixnorm",
    "load": "fixnorm_zoo.loading",
    "get_transforms": "fixnorm_zoo.loading",
    "list_models": "fixnorm_zoo.registry",
    "model_info": "fixnorm_zoo.registry",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from fixnorm_zoo.fixnorm import FixNorm, param_roles  # noqa: F401
    from fixnorm_zoo.loading import get_transforms, load  # noqa: F401
    from fixnorm_zoo.registry import list_models, model_info  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fixnorm_zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
