"""`import fixnorm_zoo` stays light: no torch, timm, huggingface_hub or accelerate until a name is used."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def _layout_order() -> list[str]:
    """The module order of docs/layout.md (each module may import only the ones above it)."""
    text = (ROOT / "docs" / "layout.md").read_text()
    block = text.split("```")[1]
    return [m.group(1) for m in re.finditer(r"^  (\w+)\.py\b", block, re.M)] + [
        m.group(1) for m in re.finditer(r";  (\w+)\.py\b", block)
    ]


def test_dependencies_run_one_way_as_docs_layout_lays_them_out() -> None:
    order = _layout_order()
    modules = sorted(p.stem for p in (ROOT / "fixnorm_zoo").glob("*.py") if p.stem != "__init__")
    assert sorted(order) == modules, "docs/layout.md must list every module once"
    for name in modules:
        tree = ast.parse((ROOT / "fixnorm_zoo" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fixnorm_zoo."):
                dep = node.module.split(".")[1]
                assert order.index(dep) < order.index(name), f"{name} imports {dep}, listed below it"
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{name} imports private names {private} from {dep}"
