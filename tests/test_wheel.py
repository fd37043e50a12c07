"""The package as a user gets it: the built wheel, installed (not editable) outside the checkout, run from another
folder. Trains a shipped recipe by name, lists recipes, tunes, publishes to the local Hub, loads back, evaluates.

Why here and not only in CI's editable install: an editable install reads recipes, the card template and the
recorded demo numbers from the checkout, so it hides package-data mistakes (the wheel once held .py files only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--set", "epochs=1", "--set", "train_subset=512", "--set", "batch_size=64"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from this checkout, installed into a target folder (dependencies from this venv)."""
    base = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(base / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        cwd=base,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (base / "dist").glob("fixnorm_zoo-*.whl")
    target = base / "site"
    inst = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        cwd=base,
    )
    assert inst.returncode == 0, inst.stderr
    return target


def _env(target: Path, hub: str, home: Path, registry: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FIXNORM_ZOO_", "PYTHON"))}
    env.update(
        PYTHONPATH=str(target),
        HF_ENDPOINT=hub,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(home),
        HF_TOKEN="hf_wheeltest",
        HF_HUB_DISABLE_TELEMETRY="1",
        TQDM_DISABLE="1",
        FIXNORM_ZOO_REGISTRY=str(registry),
        OMP_NUM_THREADS="1",
    )
    return env


def _push_release(installed: Path, env: dict[str, str], work: Path, registry: Path, *names: str) -> None:
    """Push the named repos of the checkout's release folder to the test Hub, pinning them in ``registry``."""
    names_args = [a for name in names for a in ("--name", name)]
    r = run_cli(
        "push",
        str(ROOT / "zoo_mirror"),
        "--registry",
        str(registry),
        *names_args,
        env=env,
        cwd=work,
        timeout=600,
        program=[str(installed / "bin" / "fixnorm-zoo")],
    )
    assert r.returncode == 0, r.stderr


@pytest.mark.slow  # ~1 min end to end (wheel build, fresh venv): CI runs it (make test-slow)
def test_installed_wheel_trains_publishes_loads_and_evaluates(installed, hub, tmp_path) -> None:
    work = tmp_path / "elsewhere"  # a folder outside the checkout
    work.mkdir()
    registry = tmp_path / "zoo.json"
    registry.write_text((installed / "fixnorm_zoo" / "zoo.json").read_text())
    env = _env(installed, hub, tmp_path / "home", registry)
    where = subprocess.run(
        [sys.executable, "-c", "import fixnorm_zoo; print(fixnorm_zoo.__file__)"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout

    # the bundled baselines load from the wheel alone: no mirror, no Hub, no checkout
    bundled = [m["name"] for m in json.loads(registry.read_text())["models"] if m["hub"].get("bundled")]
    assert bundled, "the registry marks no model as bundled (tools/bundle_weights.py)"
    code = (
        "import sys, torch, fixnorm_zoo\n"
        "for name in sys.argv[1:]:\n"
        "    m = fixnorm_zoo.load(name)\n"
        "    print(name, m.training, tuple(m(torch.zeros(2, 1, 28, 28)).shape))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, *bundled],
        env={**env, "HF_HUB_OFFLINE": "1"},
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[: len(bundled)] == [f"{n} False (2, 10)" for n in bundled]
    r = run_cli(
        "eval",
        bundled[0],
        "--data",
        "fashion_mnist",
        env={**env, "HF_HUB_OFFLINE": "1"},
        cwd=work,
        timeout=600,
        program=[str(installed / "bin" / "fixnorm-zoo")],
    )
    assert r.returncode == 0, r.stderr
    measured = float(r.stdout.splitlines()[1].split(",")[2])
    recorded = next(m["top1"] for m in json.loads(registry.read_text())["models"] if m["name"] == bundled[0])
    assert abs(measured - recorded) < 0.015  # at most one of the 10,000 test images flips on another CPU

    r = run_cli(
        "list", "--recipes", env=env, cwd=work, timeout=600, program=[str(installed / "bin" / "fixnorm-zoo")]
    )
    assert r.returncode == 0 and "fashion_mnist/resnet9s_fixnorm" in r.stdout.split(), r.stdout + r.stderr

    r = run_cli(
        "train",
        "fashion_mnist/resnet9s_fixnorm",
        *TINY,
        "--output",
        "run",
        env=env,
        cwd=work,
        timeout=600,
        program=[str(installed / "bin" / "fixnorm-zoo")],
    )
    assert r.returncode == 0, r.stderr
    assert (work / "run" / "summary.json").is_file()

    r = run_cli(
        "tune",
        "fashion_mnist/resnet9s_fixnorm",
        "--trials",
        "2",
        "--proxy-subset",
        "256",
        "--holdout",
        "256",
        "--output",
        "tune",
        "--set",
        "batch_size=64",
        env=env,
        cwd=work,
        timeout=600,
        program=[str(installed / "bin" / "fixnorm-zoo")],
    )
    assert r.returncode == 0, r.stderr
    assert (work / "tune" / "best.yaml").is_file()

    r = run_cli(
        "publish",
        "run",
        "--repo-id",
        "org/wheel",
        "--name",
        "wheel_model",
        env=env,
        cwd=work,
        timeout=600,
        program=[str(installed / "bin" / "fixnorm-zoo")],
    )
    assert r.returncode == 0, r.stderr
    entry = next(m for m in json.loads(registry.read_text())["models"] if m["name"] == "wheel_model")
    assert entry["recipe"] == "fashion_mnist/resnet9s_fixnorm" and len(entry["hub"]["revision"]) == 40

    code = (
        "import fixnorm_zoo, timm.data\nm = fixnorm_zoo.load('wheel_model')\n"
        "print(m.training, timm.data.resolve_data_config(model=m, use_test_size=True)['input_size'])"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=work, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "(1,", "28,", "28)"]

    r = run_cli(
        "eval",
        "wheel_model",
        "--data",
        "fashion_mnist",
        env=env,
        cwd=work,
        timeout=600,
        program=[str(installed / "bin" / "fixnorm-zoo")],
    )
    assert r.returncode == 0, r.stderr
    top1 = float(r.stdout.splitlines()[1].split(",")[2])
    assert abs(top1 - entry["top1"]) < 1e-6


@pytest.mark.slow  # ~2 min: two repos pushed to the local Hub, each card's commands run (10,000 test images each)
def test_published_cards_commands_work_as_printed(installed, hub, tmp_path) -> None:
    """The commands a published card prints, run as printed from the installed wheel in a folder outside
    the checkout once the repo is on a Hub (the local one): the registry eval, the `hf-hub:` eval, timm's own
    validate.py through `fixnorm_zoo.timm_script`, and the card's Python block; each gives the card's number."""
    import gzip
    import re
    import shlex

    work = tmp_path / "elsewhere"
    work.mkdir()
    registry = tmp_path / "zoo.json"
    registry.write_text((installed / "fixnorm_zoo" / "zoo.json").read_text())
    env = _env(installed, hub, tmp_path / "home", registry)
    names = ["resnet9s.wd_fmnist", "tinynet_e.fixnorm_fmnist"]  # a fixnorm_zoo architecture, a stock timm one
    _push_release(installed, env, work, registry, *names)
    data_dir = tmp_path / "fmnist"  # torchvision's layout, as the card's comment says: DIR/FashionMNIST/raw/
    (data_dir / "FashionMNIST" / "raw").mkdir(parents=True)
    for gz in Path("/usr/share/datasets/fashion-mnist").glob("*-ubyte.gz"):
        (data_dir / "FashionMNIST" / "raw" / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    validate = ROOT.parent / "shared" / "peers" / "timm" / "validate.py"  # timm's script (../shared/peers)
    swap = {"fixnorm-zoo": str(installed / "bin" / "fixnorm-zoo"), "python": sys.executable}
    swap.update({"validate.py": str(validate), "DIR": str(data_dir)})
    ran_validate = False
    for name in names:
        entry = next(m for m in json.loads(registry.read_text())["models"] if m["name"] == name)
        assert entry["hub"]["revision"]
        card = (ROOT / "zoo_mirror" / entry["hub"]["repo_id"] / "README.md").read_text()
        lines = "\n".join(re.findall(r"```bash\n(.*?)```", card, re.S)).replace("\\\n", " ").splitlines()
        commands = [shlex.split(line, comments=True) for line in lines if line.strip()]
        assert len(commands) == 3, commands  # eval by name, eval hf-hub:, validate.py
        for command in commands:
            if "validate.py" in command and not validate.is_file():
                continue
            r = subprocess.run(
                [swap.get(a, a) for a in command],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert r.returncode == 0, (command, r.stderr[-3000:])
            if "validate.py" in command:
                ran_validate = True
                top1 = json.loads(r.stdout.split("--result\n")[-1])["top1"]
            else:
                top1 = float(r.stdout.splitlines()[1].split(",")[2])
            assert abs(top1 - entry["top1"]) < 0.015, (command, top1)  # one test image in 10,000 at most
        (use,) = re.findall(r"```python\n(.*?)```", card, re.S)
        check = "\nfrom PIL import Image\nprint(tuple(model(transform(Image.new('L', (40, 40))).unsqueeze(0)).shape))"
        r = subprocess.run(
            [sys.executable, "-c", use + check], env=env, cwd=work, capture_output=True, text=True
        )
        assert r.returncode == 0 and r.stdout.split("\n")[-2] == "(1, 10)", r.stderr[-3000:]
    if not ran_validate:
        pytest.skip(f"timm's validate.py is not at {validate}: the cards' validate.py lines were not run")


@pytest.mark.slow  # ~1 min: the README's load block and its evaluate lines that need no run folder or Hub org
def test_readme_load_block_and_evaluate_lines_work_as_printed(installed, hub, tmp_path) -> None:
    """The README's "Load a model" Python block (its last line downloads the timm tag from the Hub, so
    the entry is pushed to the local one first) and its Evaluate lines that name a bundled model, run as printed
    from the installed wheel outside the checkout."""
    import re
    import shlex

    work = tmp_path / "elsewhere"
    work.mkdir()
    registry = tmp_path / "zoo.json"
    registry.write_text((installed / "fixnorm_zoo" / "zoo.json").read_text())
    env = _env(installed, hub, tmp_path / "home", registry)
    readme = (ROOT / "README.md").read_text()
    (load_block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "fixnorm_zoo.load(" in b]
    _push_release(installed, env, work, registry, "resnet9s.fixnorm_fmnist")
    check = "\nprint(type(model).__name__, model.pretrained_cfg['tag'])"
    r = subprocess.run(
        [sys.executable, "-c", load_block + check], env=env, cwd=work, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split("\n")[-2] == "ResNet9s fixnorm_fmnist", r.stdout
    evaluate = readme.split("## Evaluate", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    bundled = [line for line in evaluate.splitlines() if line.startswith("fixnorm-zoo eval resnet9s.")]
    assert len(bundled) == 2, evaluate
    entry = next(
        m for m in json.loads(registry.read_text())["models"] if m["name"] == "resnet9s.fixnorm_fmnist"
    )
    for line in bundled:
        r = run_cli(
            *shlex.split(line, comments=True)[1:],
            env=env,
            cwd=work,
            timeout=600,
            program=[str(installed / "bin" / "fixnorm-zoo")],
        )
        assert r.returncode == 0, (line, r.stderr)
        if "--tta" not in line:
            assert abs(float(r.stdout.splitlines()[1].split(",")[2]) - entry["top1"]) < 0.015, r.stdout
        else:
            assert "flip" in r.stdout, r.stdout
