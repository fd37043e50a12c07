"""Package data shipped from the repository's root folders (``recipes/``, ``model_cards/``).

Why: the project keeps those folders at the top level (its specified layout) and the wheel installs them as
``fixnorm_zoo.recipes`` / ``fixnorm_zoo.model_cards`` (setuptools ``package-dir``); a checkout put on ``sys.path``
without an install has only the root folders. One lookup serves both cases.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The installed (or checked-out) ``fixnorm_zoo`` folder: its data files (``zoo.json``, ``bundled/``) live here."""
CHECKOUT_DIR = PACKAGE_DIR.parent
"""The folder above the package: a checkout's root (with ``.git``, ``recipes/``), or site-packages when installed."""


def package_data_dir(folder: str) -> Path:
    """The installed ``fixnorm_zoo.<folder>`` package's directory, else the checkout's root ``<folder>/``."""
    try:
        return Path(str(importlib.resources.files(f"fixnorm_zoo.{folder}")))
    except ModuleNotFoundError:  # a checkout on sys.path without an install: the root folder itself
        return CHECKOUT_DIR / folder
