"""The schema and ownership holes, one test each: a registry read without a schema, names that escape or
shadow, a hand-edited train_state.json, two trainings into one folder, a new run over a user's files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import reset_accelerate, tiny_recipe

from fixnorm_zoo.engine import train as train_mod
from fixnorm_zoo.engine.rundir import RunDir
from fixnorm_zoo.errors import DataError, FixNormZooError, RecipeError
from fixnorm_zoo.recipe import load_recipe, parse_overrides
from fixnorm_zoo.zoo.registry import Registry

ROOT = Path(__file__).resolve().parent.parent


def _registry_with(tmp_path: Path, models) -> Path:
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps({"models": models}))
    return path


def _entry(**over) -> dict:
    base = json.loads((ROOT / "fixnorm_zoo" / "zoo.json").read_text())["models"][0]
    return {**base, **over}


@pytest.mark.parametrize(
    "models,match",
    [
        ([1], "expected a JSON object"),
        (["abc"], "expected a JSON object"),
        ([{"architecture": "resnet9s"}], "a name is letters"),
        ([_entry(name="a\x1b[31mred")], "a name is letters"),
        ([_entry(name="ok\nnewline")], "a name is letters"),
        ([_entry(num_classes="ten")], "num_classes='ten'"),
        # a 10**9-class head on resnet9s once asked for 512 GB at load
        ([_entry(num_classes=10**9)], "num_classes=1000000000 must be an integer from 1 to 1,000,000"),
        ([_entry(hub={**_entry()["hub"], "filename": "../../../../etc/passwd"})], "plain file name"),
        ([_entry(hub={**_entry()["hub"], "sha256": ""}, status="published")], "without a hub.sha256"),
        ([_entry(), _entry()], "used by both"),
        ([_entry(), _entry(name="other", aliases=[_entry()["name"]])], "used by both"),
        ([_entry(eval_setting={}, status="published")], "eval_setting.input_size"),
    ],
    ids=[
        "int",
        "str",
        "nameless",
        "escape",
        "newline",
        "num_classes",
        "huge-num-classes",
        "filename",
        "empty-sha",
        "dup",
        "shadow",
        "empty-eval-setting",
    ],
)
def test_registry_schema_is_one_error_naming_file_and_entry(tmp_path, models, match) -> None:
    path = _registry_with(tmp_path, models)
    with pytest.raises(FixNormZooError, match=match) as err:
        Registry(path).models()
    assert str(path) in str(err.value)


def test_registry_cli_error_is_one_line_and_special_files_do_not_hang(tmp_path) -> None:
    path = _registry_with(tmp_path, [1])
    r = subprocess.run(
        [sys.executable, "-m", "fixnorm_zoo.cli", "list", "--registry", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and ": error: " in lines[0] and "Traceback" not in r.stderr
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(FixNormZooError, match="not a regular file"):  # used to block forever
        Registry(fifo).models()


def test_recipe_name_cannot_leave_runs(tmp_path) -> None:
    for bad in ("../../x", "/etc/x", ".hidden", "a/b"):
        with pytest.raises(RecipeError, match="recipe field name="):
            load_recipe("fashion_mnist/demo_wd", overrides=parse_overrides([f"name={bad}"]))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("state") / "run"
    train_mod.train(tiny_recipe(epochs=2, keep_last=1), output_dir=out, progress=False)
    reset_accelerate()
    return out


@pytest.mark.parametrize(
    "edit,reason",
    [
        ({"epoch": 99}, "one row per finished epoch \\(99\\)"),
        ({"epoch": -3}, "non-negative"),
        ({"num_updates": "many"}, "non-negative"),
        (None, "expected a JSON object"),
        ({"step_in_epoch": 100}, "step_in_epoch=100 does not fit"),  # was: exit 0 with other final weights
        ({"best_top1": 1e9}, "best_top1=1000000000.0"),  # was: copied into summary.json
        ({"epoch_loss_sums": ["x"]}, "epoch_loss_sums"),  # was: a TypeError traceback
    ],
    ids=["epoch99", "epoch-3", "updates-str", "not-a-dict", "step100", "best-1e9", "loss-sums-str"],
)
def test_hand_edited_train_state_is_refused(finished, tmp_path, edit, reason) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "summary.json").unlink()  # an unfinished run to resume
    for ckpt in (run / "checkpoints").iterdir():
        if ckpt.is_dir():
            state_file = ckpt / RunDir.TRAIN_STATE
            state = json.loads(state_file.read_text())
            state_file.write_text(json.dumps([] if edit is None else {**state, **edit}))
    reset_accelerate()
    with pytest.raises(DataError, match=reason):
        train_mod.train(tiny_recipe(epochs=2, keep_last=1), output_dir=run, resume=True, progress=False)
    reset_accelerate()


def test_empty_train_state_is_refused(finished, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "summary.json").unlink()
    for ckpt in (run / "checkpoints").iterdir():
        if ckpt.is_dir():
            (ckpt / RunDir.TRAIN_STATE).write_text("{}")
    with pytest.raises(DataError, match="epoch=None"):
        train_mod.train(tiny_recipe(epochs=2, keep_last=1), output_dir=run, resume=True, progress=False)
    reset_accelerate()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("link", ["checkpoints", "checkpoints/epoch_0002"])
def test_symlinks_inside_a_run_directory_are_refused(finished, tmp_path, link) -> None:
    """A ``checkpoints/`` (or one checkpoint folder) that links to another run: resuming would read that run's
    checkpoint and pruning would delete its folders and rewrite its ``latest``; refused, the other run untouched."""
    victim = tmp_path / "victim"
    shutil.copytree(finished, victim)
    before = _snapshot(victim)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    if link == "checkpoints":
        (run / "checkpoints").rmdir()
    (run / link).symlink_to(victim / link, target_is_directory=True)
    reset_accelerate()
    with pytest.raises(FileExistsError, match="symlink inside the run directory"):
        train_mod.train(tiny_recipe(epochs=3, keep_last=1), output_dir=run, resume=True, progress=False)
    reset_accelerate()
    assert _snapshot(victim) == before
    assert (run / link).is_symlink()  # the user's link is theirs to remove


def test_a_second_training_into_the_same_folder_is_refused(tmp_path) -> None:
    run = tmp_path / "run"
    # as another process training there holds it
    with RunDir(run).lock(), pytest.raises(FileExistsError, match="another process"):
        train_mod.train(tiny_recipe(), output_dir=run, progress=False)
    reset_accelerate()
    assert not (run / "summary.json").exists()
    train_mod.train(tiny_recipe(), output_dir=run, progress=False)  # free again once the other one is done
    reset_accelerate()


def test_new_run_over_a_users_files_is_refused(tmp_path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    for name, text in (("weights.safetensors", "w"), ("log.jsonl", "l"), ("curves.png", "c")):
        (out / name).write_text(text)
    with pytest.raises(FileExistsError, match="no run to resume"):
        train_mod.train(tiny_recipe(), output_dir=out, progress=False)
    reset_accelerate()
    assert (out / "weights.safetensors").read_text() == "w" and (out / "log.jsonl").read_text() == "l"


def _eval_with_registry(name: str, registry: Path) -> subprocess.CompletedProcess:
    """``fixnorm-zoo eval NAME`` with ``registry`` as the zoo's registry (1 thread)."""
    env = {**os.environ, "FIXNORM_ZOO_REGISTRY": str(registry), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "fixnorm_zoo.cli", "eval", name, "--data", "fashion_mnist"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _bundled_entry(**over) -> dict:
    models = json.loads((ROOT / "fixnorm_zoo" / "zoo.json").read_text())["models"]
    base = next(m for m in models if m.get("hub", {}).get("bundled"))
    return {**base, "aliases": [], **over}


def test_weights_that_do_not_fit_their_entry_are_one_error_naming_the_entry(tmp_path) -> None:
    """A registry entry whose model_args differ from its (sha256-verified) weights: one line naming the entry and
    what to fix (was: torch's 60-line size-mismatch RuntimeError), from Python and from the CLI."""
    from fixnorm_zoo import load
    from fixnorm_zoo.errors import IntegrityError

    entry = _bundled_entry(name="resnet9s.wide", model_args={"widths": [16, 32, 64, 256]})
    registry = _registry_with(tmp_path, [entry])
    with pytest.raises(
        IntegrityError, match=r"resnet9s\.wide: its sha256-verified weights cannot be loaded"
    ) as e:
        load("resnet9s.wide", registry=registry)
    assert "[16, 32, 64, 256]" in str(e.value) and "Fix the entry" in str(e.value)
    r = _eval_with_registry("resnet9s.wide", registry)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "resnet9s.wide" in r.stderr


def test_a_mirror_file_with_another_sha_names_no_missing_revision(tmp_path) -> None:
    """The sha256 refusal of a mirror file says where the file is, never "(revision None)"."""
    from fixnorm_zoo import load
    from fixnorm_zoo.errors import IntegrityError

    entry = _bundled_entry(name="resnet9s.mirrored")
    entry["hub"] = {**entry["hub"], "bundled": False, "revision": None}
    registry = _registry_with(tmp_path, [entry])
    target = tmp_path / "m" / entry["hub"]["repo_id"] / entry["hub"]["filename"]
    target.parent.mkdir(parents=True)
    source = ROOT / "fixnorm_zoo" / "bundled" / entry["hub"]["repo_id"] / entry["hub"]["filename"]
    data = bytearray(source.read_bytes())
    data[-1] ^= 1  # same size, other sha256
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="its sha256 is") as e:
        load("resnet9s.mirrored", registry=registry, mirror=tmp_path / "m")
    assert "revision None" not in str(e.value) and "(revision" not in str(e.value)


def test_an_oversized_mirror_file_is_refused_before_it_is_read(tmp_path, monkeypatch) -> None:
    """A 12 GB sparse model.safetensors where the registry pins a 1.6 MB one: refused from its size, never read
    (the hostile pass saw it read whole into memory)."""
    from pathlib import Path as _Path

    from fixnorm_zoo import load
    from fixnorm_zoo.errors import IntegrityError

    entry = _bundled_entry(name="resnet9s.sparse")
    entry["hub"] = {**entry["hub"], "bundled": False, "revision": None}
    registry = _registry_with(tmp_path, [entry])
    target = tmp_path / "m" / entry["hub"]["repo_id"] / entry["hub"]["filename"]
    target.parent.mkdir(parents=True)
    with target.open("wb") as f:
        f.truncate(12 * 10**9)  # sparse: no disk used
    reads = []
    real_read = _Path.read_bytes
    monkeypatch.setattr(_Path, "read_bytes", lambda self: reads.append(self) or real_read(self))
    with pytest.raises(IntegrityError, match="12,000,000,000 bytes but the registry pins"):
        load("resnet9s.sparse", registry=registry, mirror=tmp_path / "m")
    assert target not in reads


def test_a_registry_entry_asking_for_a_huge_model_is_refused_before_allocating(tmp_path) -> None:
    """model_args of resnet50 with 3,000 blocks in one stage (what a hostile Hub config asked for): the meta-device
    estimate refuses it in one line instead of allocating until memory runs out."""
    entry = _entry(name="resnet50.huge", architecture="resnet50", model_args={"layers": [3, 4, 3000, 3]})
    registry = _registry_with(tmp_path, [entry])
    r = _eval_with_registry("resnet50.huge", registry)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.count("\n") == 1 and "over the limit" in r.stderr


def test_a_billion_laughs_recipe_file_is_refused_before_it_expands(tmp_path) -> None:
    """The anchor bomb in a recipe file (not only in --set): refused by the YAML reader in one line."""
    bomb = "\n".join(
        ["a: &a [x, x, x, x, x, x, x, x, x]"]
        + [
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]"
            for i in range(8)
        ]
    )
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text("inherit: fashion_mnist/demo_wd\nmodel_args:\n  " + bomb.replace("\n", "\n  ") + "\n")
    with pytest.raises(RecipeError, match="anchors/aliases"):
        load_recipe(str(recipe))


def test_a_mid_epoch_state_that_does_not_fit_the_run_is_refused(tmp_path) -> None:
    """A step checkpoint whose ``step_in_epoch`` was edited (1 where its folder and update count say 2) is refused
    on --resume with a line naming the file (it resumed silently, then ended with other weights)."""
    from helpers import TINY_RESNET9S, run_cli

    sets = [
        a
        for k, v in {**TINY_RESNET9S, "train_subset": 640, "epochs": 2}.items()
        for a in ("--set", f"{k}={json.dumps(v)}")
    ]
    args = [
        "train",
        "fashion_mnist/resnet9s_fixnorm",
        *sets,
        "--set",
        "checkpoint_every_steps=3",
        "--no-progress",
    ]
    run = tmp_path / "run"
    killed = run_cli(*args, "--output", str(run), FIXNORM_ZOO_KILL_AT="train:update_14")
    assert killed.returncode == -9, killed.stderr[-2000:]
    step = next(p for p in (run / "checkpoints").iterdir() if "_step_" in p.name)
    state = json.loads((step / RunDir.TRAIN_STATE).read_text())
    assert state["step_in_epoch"] == 2
    (step / RunDir.TRAIN_STATE).write_text(json.dumps({**state, "step_in_epoch": 1}))
    r = run_cli(*args, "--output", str(run), "--resume")
    assert r.returncode == 2 and "does not fit this run" in r.stderr and "Traceback" not in r.stderr, r.stderr
