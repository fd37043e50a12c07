"""The tuner: its searches on known score surfaces, its resumable trial log, failures, outputs, and one real
engine-backed search."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import run_torchrun

from fixnorm_zoo.engine import train as train_mod
from fixnorm_zoo.errors import FixNormZooError, TrainingDiverged
from fixnorm_zoo.recipe import load_recipe
from fixnorm_zoo.tune import runner as tuning
from fixnorm_zoo.tune import strategies as search

SPACE = {"fc_norm": search.lattice(8.0, span=3), "lr": search.lattice(0.1, span=3)}  # 7 x 7


def _bowl(fc_opt: float, lr_opt: float):
    """A separable bowl in log space with its maximum 90 at (fc_opt, lr_opt)."""

    def score(p):
        return 90 - (math.log2(p["fc_norm"] / fc_opt)) ** 2 - 0.5 * (math.log2(p["lr"] / lr_opt)) ** 2

    return score


@pytest.mark.parametrize("opt", [(8.0, 0.1), (1.0, 0.8), (64.0, 0.0125), (2.0, 0.4)])
def test_ours_finds_the_optimum_of_a_separable_surface_in_few_trials(opt) -> None:
    order = search.run_search(
        "fixnorm", _bowl(*opt), SPACE, knobs=("fc_norm", "lr"), budget=49, start={"fc_norm": 8.0, "lr": 0.1}
    )
    best, _ = max(order, key=lambda t: t[1])
    assert best == {"fc_norm": opt[0], "lr": opt[1]}
    found_at = [p for p, _ in order].index(best) + 1
    assert found_at <= 13  # against 49 grid points
    keys = [search.param_key(p) for p, _ in order]
    assert len(keys) == len(set(keys)) == 49  # never pays twice for a point; spends the budget it is given


def test_ours_leaves_a_coordinate_optimum_for_a_better_diagonal_neighbour() -> None:
    """Where the knobs interact, the best point can sit diagonally off a coordinate-wise optimum: the remaining
    budget goes to the ring around the incumbent, which finds it."""
    bowl = _bowl(8.0, 0.1)

    def score(p):
        return 95.0 if (p["fc_norm"], p["lr"]) == (16.0, 0.2) else bowl(p)

    order = search.run_search(
        "fixnorm", score, SPACE, knobs=("fc_norm", "lr"), budget=16, start={"fc_norm": 8.0, "lr": 0.1}
    )
    assert max(order, key=lambda t: t[1])[0] == {"fc_norm": 16.0, "lr": 0.2}
    # a pure coordinate search stops at (8, 0.1): both axis neighbours of it are worse
    assert score({"fc_norm": 16.0, "lr": 0.1}) < 90 and score({"fc_norm": 8.0, "lr": 0.2}) < 90


def test_budget_is_respected_and_grid_random_cover_the_lattice() -> None:
    score = _bowl(8.0, 0.1)
    assert len(search.run_search("fixnorm", score, SPACE, knobs=("fc_norm", "lr"), budget=3)) == 3
    grid = search.run_search("grid", score, SPACE, knobs=("fc_norm", "lr"), budget=None)
    rand = search.run_search("random", score, SPACE, knobs=("fc_norm", "lr"), budget=None, seed=3)
    assert len(grid) == len(rand) == 49
    assert {search.param_key(p) for p, _ in grid} == {search.param_key(p) for p, _ in rand}
    assert [p for p, _ in rand] != [p for p, _ in grid]


def test_tpe_runs_within_budget_on_the_lattice() -> None:
    order = search.run_search("tpe", _bowl(2.0, 0.4), SPACE, knobs=("fc_norm", "lr"), budget=15, seed=0)
    assert len(order) == 15
    assert all(p["fc_norm"] in SPACE["fc_norm"] and p["lr"] in SPACE["lr"] for p, _ in order)


def _fake_train(calls: list, *, diverge_lr: float | None = None):
    def fake(recipe, *, output_dir, accelerator=None, resume=False, progress=True):
        calls.append((recipe.fc_norm if recipe.method == "fixnorm" else recipe.weight_decay, recipe.lr))
        assert recipe.holdout == 500 and recipe.epochs == 2 and recipe.train_subset == 1000
        if recipe.lr == diverge_lr:
            raise TrainingDiverged("loss became nan at epoch 1")
        knob = recipe.fc_norm if recipe.method == "fixnorm" else recipe.weight_decay * 16000
        return {"top1": _bowl(8.0, 0.2)({"fc_norm": knob, "lr": recipe.lr}), "top5": 99.0}

    return fake


def test_tune_log_resumes_without_repeating_trials(tmp_path: Path, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(train_mod, "train", _fake_train(calls, diverge_lr=0.4))
    recipe = load_recipe("fashion_mnist/resnet18_fixnorm")
    kw = dict(output_dir=tmp_path, proxy_epochs=2, proxy_subset=1000, holdout=500, progress=False)
    first = tuning.tune(recipe, trials=4, **kw)
    assert len(calls) == 4
    second = tuning.tune(recipe, trials=9, **kw)  # the same command with a larger budget continues
    assert len(calls) == len(second["trials"]) == len(set(calls)) > 4  # nothing ran twice
    assert [r["trial"] for r in second["trials"][:4]] == [r["trial"] for r in first["trials"]]
    lines = [json.loads(x) for x in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert "meta" in lines[0] and len(lines) == 1 + len(calls)
    assert second["best"] == {"fc_norm": 8.0, "lr": 0.2}
    diverged = [r for r in lines[1:] if r["params"]["lr"] == 0.4]
    assert diverged and diverged[0]["status"] == "diverged" and diverged[0]["score"] is None
    best_yaml = (tmp_path / "best.yaml").read_text()
    assert "--set fc_norm=8 --set lr=0.2" in best_yaml
    import yaml

    assert load_recipe("fashion_mnist/resnet18_fixnorm", overrides=yaml.safe_load(best_yaml)).lr == 0.2
    assert (tmp_path / "trials.png").stat().st_size > 10_000 and (tmp_path / "trials.csv").is_file()
    with pytest.raises(FixNormZooError, match="other settings"):
        tuning.tune(recipe, trials=9, **{**kw, "proxy_epochs": 3})
    # the log pins the resolved recipe, not its name: another --set into the same output is refused
    other = load_recipe("fashion_mnist/resnet18_fixnorm", overrides={"label_smoothing": 0.2})
    with pytest.raises(FixNormZooError, match="other settings"):
        tuning.tune(other, trials=9, **kw)
    # a log written before the pin (no recipe_sha256 in its meta) still continues
    meta = json.loads(json.dumps(lines[0]))  # a copy of the meta line
    meta["meta"].pop("recipe_sha256")
    (tmp_path / "trials.jsonl").write_text("\n".join(json.dumps(x) for x in [meta, *lines[1:]]) + "\n")
    assert len(tuning.tune(recipe, trials=9, **kw)["trials"]) == len(second["trials"])


def test_wd_twin_tunes_weight_decay_and_lr(tmp_path: Path, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(train_mod, "train", _fake_train(calls))
    recipe = load_recipe("fashion_mnist/resnet18_wd")
    result = tuning.tune(
        recipe, trials=6, output_dir=tmp_path, proxy_epochs=2, proxy_subset=1000, holdout=500, progress=False
    )
    assert set(result["best"]) == {"weight_decay", "lr"}
    assert calls[0] == (recipe.weight_decay, recipe.lr)  # starts at the recipe's own values


def test_tune_runs_real_engine_trials_on_a_held_out_split(tmp_path: Path) -> None:
    recipe = load_recipe(
        "fashion_mnist/resnet18_fixnorm",
        overrides={"batch_size": 64, "model_args": {"channels": [8, 16, 32, 64]}},
    )
    result = tuning.tune(
        recipe, trials=2, output_dir=tmp_path, proxy_epochs=1, proxy_subset=256, holdout=512, progress=False
    )
    assert [r["status"] for r in result["trials"]] == ["ok", "ok"]
    first = f"fc_norm={recipe.fc_norm:g}_lr={recipe.lr:g}"  # the first trial: the recipe's own values
    summary = json.loads((tmp_path / "runs" / first / "summary.json").read_text())
    assert summary["eval_split"] == "train[-512:]" and summary["top1"] == result["trials"][0]["score"]


@pytest.mark.multiproc
def test_tune_under_torchrun_writes_each_trial_once(tmp_path: Path) -> None:

    cmd = [
        "-m",
        "fixnorm_zoo.cli",
        "tune",
        "fashion_mnist/resnet18_fixnorm",
        "--trials",
        "2",
        "--proxy-subset",
        "256",
        "--holdout",
        "256",
        "--set",
        "batch_size=64",
        "--set",
        "model_args.channels=[8,16,32,64]",
        "--output",
        str(tmp_path),
        "--no-progress",
    ]
    proc = run_torchrun(cmd, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(x) for x in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and [r["status"] for r in lines[1:]] == ["ok", "ok"]
    first = lines[1]["params"]
    summary = json.loads(
        (tmp_path / "runs" / f"fc_norm={first['fc_norm']:g}_lr={first['lr']:g}" / "summary.json").read_text()
    )
    demo = load_recipe("fashion_mnist/resnet18_fixnorm")
    assert first == {"fc_norm": demo.fc_norm, "lr": demo.lr}  # the search starts at the recipe's values
    assert summary["num_processes"] == 2


def test_best_yaml_command_drops_the_sets_the_tuned_values_replace(tmp_path: Path, monkeypatch) -> None:
    """`tune --set fc_norm=1 --set label_smoothing=0.05`: best.yaml's train command keeps label_smoothing and gives
    the tuned fc_norm once (it used to repeat the start value before the tuned one)."""
    monkeypatch.setattr(train_mod, "train", _fake_train([]))
    recipe = load_recipe(
        "fashion_mnist/resnet18_fixnorm", overrides={"fc_norm": 1.0, "label_smoothing": 0.05}
    )
    tuning.tune(
        recipe,
        trials=2,
        output_dir=tmp_path,
        proxy_epochs=2,
        proxy_subset=1000,
        holdout=500,
        progress=False,
        extra_sets=("fc_norm=1", "label_smoothing=0.05"),
    )
    command = (tmp_path / "best.yaml").read_text().splitlines()[0]
    assert "--set label_smoothing=0.05" in command and command.count("fc_norm=") == 1, command
