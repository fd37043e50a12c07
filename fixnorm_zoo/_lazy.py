"""Lazy re-exports for the package's ``__init__`` files (the pattern of scientific Python's ``lazy_loader``).

Why: each subpackage's ``__init__`` is its table of contents (timm's habit), yet ``import fixnorm_zoo`` and the
light modules under it (the registry, the recipe) must not pull in torch: a name listed here is imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def attach(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, whose ``exports`` map a public name to the
    submodule (relative to ``package``) that defines it."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value
        return value

    names = sorted(exports)

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
