"""What a library user relies on. Errors subclass the builtin that fits; the library logs
(routable, silenceable) instead of printing and leaves matplotlib's backend alone; `evaluate` takes an accelerator
as `train` does; weights go through the one atomic writer (the demo's last hint: tests/test_demo.py)."""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_recipe

ROOT = Path(__file__).resolve().parent.parent


def test_errors_subclass_the_builtin_that_fits(tmp_path) -> None:
    from fixnorm_zoo import errors
    from fixnorm_zoo.data.fashion_mnist import load_fashion_mnist
    from fixnorm_zoo.recipe import load_recipe

    with pytest.raises(FileNotFoundError) as missing:  # a missing folder: FileNotFoundError, and a data error
        load_fashion_mnist(split="test", data_dir=tmp_path / "nowhere")
    assert isinstance(missing.value, errors.DataError) and isinstance(missing.value, ValueError)
    with pytest.raises(ValueError):
        load_recipe("fashion_mnist/resnet9s_fixnorm", overrides={"lr": -1.0})
    assert issubclass(errors.DataError, ValueError) and not issubclass(errors.DataError, FileNotFoundError)
    assert issubclass(errors.WeightsUnavailable, LookupError) and issubclass(
        errors.UnknownModelError, LookupError
    )
    assert issubclass(errors.IntegrityError, ValueError) and issubclass(errors.ResultsNotSaved, OSError)


def test_evaluate_takes_an_accelerator_as_train_does() -> None:
    from fixnorm_zoo.engine.train import train
    from fixnorm_zoo.zoo.evaluate import evaluate

    for fn in (evaluate, train):
        param = inspect.signature(fn).parameters["accelerator"]
        assert param.default is None and param.kind is inspect.Parameter.KEYWORD_ONLY, fn.__name__


def test_weights_are_written_by_the_one_atomic_writer(tmp_path, monkeypatch) -> None:
    import torch
    from safetensors.torch import load_file

    from fixnorm_zoo.engine import rundir

    written = []
    real = rundir.atomic_write_bytes
    monkeypatch.setattr(
        rundir, "atomic_write_bytes", lambda path, data, **kw: (written.append(path), real(path, data, **kw))
    )
    path = rundir.RunDir(tmp_path).save_weights({"w": torch.arange(3.0)})
    assert written == [path] and [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    assert load_file(path)["w"].tolist() == [0.0, 1.0, 2.0]


def test_the_library_logs_instead_of_printing(tmp_path, capsys, caplog) -> None:
    """Training's epoch lines reach the `fixnorm_zoo` logger (a user routes or silences them) and never stdout."""
    from fixnorm_zoo.engine.train import train

    with caplog.at_level(logging.INFO, logger="fixnorm_zoo"):
        train(tiny_recipe(), output_dir=tmp_path / "run", progress=False)
    assert any(r.name.startswith("fixnorm_zoo") and "epoch 1/" in r.getMessage() for r in caplog.records)
    assert "epoch 1/" not in capsys.readouterr().out


def test_plots_leave_matplotlibs_backend_and_pyplot_alone(tmp_path) -> None:
    code = (
        "import sys, matplotlib\nmatplotlib.use('svg')\nfrom fixnorm_zoo.plots import plot_curves\n"
        f"plot_curves([{{'epoch': 1, 'train_loss': 1.0, 'top1': 50.0}}], {str(tmp_path / 'c.png')!r}, title='t')\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["svg", "False"] and (tmp_path / "c.png").stat().st_size > 0


def test_docs_never_offer_the_launchers_accumulation_flag() -> None:
    """Defect 2: accelerate 1.15 exports `launch --gradient_accumulation_steps` only on its DeepSpeed path, so a
    plain launch ignores it; the pages set accumulation in the recipe and name the flag only to say so."""
    import re

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text()
        for m in re.finditer(r"--gradient_accumulation_steps", text):
            around = text[max(0, m.start() - 300) : m.end() + 300]
            assert "DeepSpeed" in around and "grad_accum_steps" in around, f"{page.name}: {around!r}"


def _package_sources() -> list[Path]:
    return sorted((Path(__file__).resolve().parent.parent / "fixnorm_zoo").rglob("*.py"))


def test_every_raise_is_a_specific_error_class_never_the_bare_base() -> None:
    """A user's ``except ValueError`` / ``except LookupError`` must catch what the package raises: every error is a
    subclass that is also the fitting builtin, so the base class itself is never raised."""
    import ast

    bare = []
    for path in _package_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if isinstance(func, ast.Name) and func.id == "FixNormZooError":
                    bare.append(f"{path.name}:{node.lineno}")
    assert not bare, f"bare FixNormZooError raised at {bare}: raise the subclass that fits"


def test_raises_sections_name_errors_the_package_raises() -> None:
    """A ``Raises:`` docstring section that names a package error class names one that some code raises (and never
    the bare base class, which nothing raises)."""
    import re

    from fixnorm_zoo import errors

    ours = {
        n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, errors.FixNormZooError)
    }
    text = "\n".join(p.read_text() for p in _package_sources())
    raised = set(
        re.findall(r"(?:raise|return) (\w+)\(", text)
    )  # a helper may build the error its caller raises
    documented = set()
    for section in re.findall(r"Raises:\n((?:\s{8,}.*\n)+)", text):
        documented |= set(re.findall(r"^\s+(\w+):", section, re.M))
    named = documented & ours
    assert "FixNormZooError" not in named, "a Raises: section names the base class; name the subclass raised"
    assert named <= raised, f"Raises: sections name {sorted(named - raised)}, which no code raises"
