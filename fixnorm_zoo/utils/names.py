"""The one rule for the names a user gives: run names, zoo names and aliases, Hub file names.

Why one rule: a name becomes a folder under ``runs/``, a registry key and part of a Hub path, so it must be printable,
hold no path separator and not start with a dot (no hidden folder, no ``..``), wherever it enters.
"""

from __future__ import annotations

import re

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
NAME_RULE = "letters, digits, '_', '.', '-' (at most 128, no leading dot)"
""":data:`NAME` in words, for error messages."""
