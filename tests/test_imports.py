"""`import fixnorm_zoo` stays light: no torch, timm, huggingface_hub or accelerate until a name is used."""

from __future__ import annotations

import subprocess
import sys


def test_top_level_import_is_light() -> None:
    code = (
        "import sys, fixnorm_zoo; heavy = [m for m in ('torch', 'timm', 'huggingface_hub', 'accelerate', 'datasets')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"import fixnorm_zoo pulled in {out}"


def test_lazy_names_resolve() -> None:
    import fixnorm_zoo

    assert callable(fixnorm_zoo.param_roles) and isinstance(fixnorm_zoo.FixNorm, type)
    try:
        fixnorm_zoo.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("unknown attribute must raise AttributeError")
