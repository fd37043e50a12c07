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


def _layout_modules() -> list[str]:
    """The modules docs/layout.md lists in its tree (``pkg/mod.py`` as ``pkg.mod``)."""
    block = (ROOT / "docs" / "layout.md").read_text().split("```")[1]
    found, package = [], None
    for line in block.splitlines():
        if m := re.match(r"^  (\w+)/\s", line):
            package = m.group(1)
        elif m := re.match(r"^    (\w+)\.py\b", line):
            found.append(f"{package}.{m.group(1)}")
        elif (m := re.match(r"^  (\w+)\.py\b", line)) and m.group(1) != "__init__":
            package = None
            found.append(m.group(1))
    return found


def test_docs_layout_lists_every_module_once() -> None:
    package = ROOT / "fixnorm_zoo"
    modules = sorted(
        ".".join(p.relative_to(package).with_suffix("").parts)
        for p in package.rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    )
    listed = _layout_modules()
    assert len(listed) == len(set(listed)), "docs/layout.md lists a module twice"
    assert sorted(listed) == modules, "docs/layout.md must list every module of the package"


def test_subpackages_import_one_way_as_the_layers_contract_says() -> None:
    """import-linter's contracts in pyproject.toml: cli > demo | timm_script > tune | zoo > engine > optim | plots >
    models > data > recipe > utils > errors, and FixNorm importing nothing else of the package."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout[-3000:]


def test_no_module_imports_another_modules_private_names() -> None:
    for path in (ROOT / "fixnorm_zoo").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fixnorm_zoo."):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path} imports private names {private} from {node.module}"


def test_top_level_import_takes_under_a_tenth_of_a_second() -> None:
    code = "import time; t = time.perf_counter(); import fixnorm_zoo; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    assert min(times) < 0.1, f"import fixnorm_zoo took {min(times):.3f} s at best of 3"


def test_every_name_a_table_of_contents_lists_resolves() -> None:
    """Each package's ``__all__`` (the lazy table of contents in its ``__init__``) names only what its modules
    define: a stale entry would be an AttributeError on first use."""
    import importlib

    missing = []
    for package in (
        "fixnorm_zoo",
        *(f"fixnorm_zoo.{p}" for p in ("utils", "data", "models", "optim", "engine", "zoo", "tune")),
    ):
        module = importlib.import_module(package)
        missing += [f"{package}.{n}" for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"listed but not defined: {missing}"
