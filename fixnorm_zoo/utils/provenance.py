"""Where a result came from: the code revision, the library versions and the hardware, for ``summary.json`` and
the experiment record's rows.

Why: a number without its machine cannot be compared (the same 10-epoch run took 9.2 minutes on one machine and
4.2 on another) and a number without its code revision cannot be reproduced. Standard library only, plus the
versions of the packages already imported by the caller.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

from fixnorm_zoo.utils.resources import CHECKOUT_DIR

__all__ = ["code_revision", "cpu_model", "hardware", "library_versions", "provenance"]

LIBRARIES = ("fixnorm_zoo", "torch", "timm", "accelerate", "huggingface_hub", "safetensors", "datasets")
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
"""CPU flags that change training speed (fp32 and bf16 matmul paths), reported with the CPU's name."""


def cpu_model() -> str:
    """The CPU's model name and the speed-relevant flags it has, e.g. ``AMD EPYC (avx2 avx512f avx512_bf16)``."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    found = [f for f in CPU_FEATURES if f in flags]
    return f"{name} ({' '.join(found)})" if found else name


def hardware() -> str:
    """The CPU, and the GPU's name when torch sees one."""
    cpu = cpu_model()
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}; {cpu}"
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return cpu


def code_revision() -> str | None:
    """The git commit of the checkout the package is imported from (``+dirty`` with uncommitted changes to the
    package or the recipes), or None
    for an installed wheel (its version then says which code ran)."""
    root = CHECKOUT_DIR
    if not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            # the code only: a results file the experiment record appends to is data, not a code change
            [
                "git",
                "-C",
                str(root),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "fixnorm_zoo",
                "recipes",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}+dirty" if dirty else rev


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a result depends on (those not installed are left out)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def provenance() -> dict[str, object]:
    """Everything above in one JSON-able dict, plus Python's version."""
    return {
        "code_revision": code_revision(),
        "versions": {"python": platform.python_version(), **library_versions()},
        "hardware": hardware(),
    }
