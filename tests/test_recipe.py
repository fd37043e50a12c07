"""Recipes: every shipped recipe validates; bad fields are refused by name with what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixnorm_zoo.errors import RecipeError
from fixnorm_zoo.recipe import RECIPES_DIR, Recipe, load_recipe, parse_overrides

ALL_RECIPES = sorted(RECIPES_DIR.rglob("*.yaml"))
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", ALL_RECIPES, ids=[str(p.relative_to(RECIPES_DIR)) for p in ALL_RECIPES])
def test_shipped_recipes_validate(path: Path) -> None:
    recipe = load_recipe(path)
    assert isinstance(recipe, Recipe)
    assert recipe.method in ("fixnorm", "wd")


def test_twins_differ_only_in_method() -> None:
    for fixnorm_path in RECIPES_DIR.rglob("*fixnorm.yaml"):
        twin_path = fixnorm_path.with_name(fixnorm_path.name.replace("fixnorm", "wd"))
        assert twin_path.is_file(), f"{fixnorm_path} has no weight-decay twin"
        a, b = load_recipe(fixnorm_path).to_dict(), load_recipe(twin_path).to_dict()
        differ = {k for k in a if a[k] != b[k]}
        # the method and its tuned knobs (each method's own LR, as the tuner finds it with the same budget)
        assert differ <= {"name", "method", "fc_norm", "invariant_norm", "weight_decay", "lr"}, differ
        assert a["method"] == "fixnorm" and b["method"] == "wd" and b["weight_decay"] > 0


def test_unknown_field_lists_allowed_and_suggests() -> None:
    with pytest.raises(RecipeError, match=r"'leraning_rate'.*allowed fields:.*'lr'") as err:
        load_recipe("fashion_mnist/resnet18_fixnorm", overrides={"leraning_rate": 0.1})
    with pytest.raises(RecipeError, match=r"'epoch' \(did you mean 'epochs'\?\)"):
        load_recipe("fashion_mnist/resnet18_fixnorm", overrides={"epoch": 3})
    assert "allowed fields" in str(err.value)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"optimizer": "adam"}, r"optimizer='adam': expected one of 'sgd', 'sgdc', 'rmsproptf', 'adamw'"),
        ({"epochs": "ten"}, r"epochs='ten': expected int"),
        ({"epochs": 0}, r"epochs=0: must be > 0"),
        ({"weight_decay": 1e-4}, r"FixNorm replaces weight decay"),
        ({"input_size": [3, 28, 28]}, r"one value per channel"),
        ({"label_smoothing": 1.5}, r"label_smoothing=1.5"),
        # `--set 'mean=[1e30]'` (a YAML 1.1 string in a list) was refused as "expected a list"
        ({"mean": ["1e30"]}, r"mean=\[1e\+30\].*0-1 pixel scale"),
        ({"mean": ["x"]}, r"mean=\['x'\]: expected a list of float"),
    ],
)
def test_bad_values_name_field_value_and_allowed(overrides: dict, match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        load_recipe("fashion_mnist/resnet18_fixnorm", overrides=overrides)


def test_unknown_recipe_name_suggests() -> None:
    with pytest.raises(RecipeError, match="did you mean"):
        load_recipe("fashion_mnist/resnet18_fixnrm")


def test_overrides_parse_yaml_scalars_and_nesting() -> None:
    assert parse_overrides(
        ["lr=0.2", "nesterov=false", "model_args.depth_multiplier=1.2", "fc_norm=null"]
    ) == {
        "lr": 0.2,
        "nesterov": False,
        "model_args": {"depth_multiplier": 1.2},
        "fc_norm": None,
    }
    with pytest.raises(RecipeError, match="key=value"):
        parse_overrides(["lr"])
    base = load_recipe("fashion_mnist/resnet18_fixnorm").model_args
    recipe = load_recipe("fashion_mnist/resnet18_fixnorm", overrides=parse_overrides(["model_args.foo=1"]))
    assert recipe.model_args == {**base, "foo": 1} and len(base) >= 1  # merged, not replaced


def test_int_for_float_field_is_accepted() -> None:
    assert load_recipe("fashion_mnist/resnet18_fixnorm", overrides={"lr": 1}).lr == 1.0


def test_fashion_mnist_recipes_hold_the_tuners_result() -> None:
    """Each recipe's newest finished tuning in the manifest (eval/manifest.yaml ``tunes``, later entries supersede
    earlier ones; the tuner benchmark's ``grid_*`` and the ``explore_*`` searches and grids still running aside) wrote
    its best knobs to
    eval/tuner/ID_best.yaml: the recipe file must carry the same values, so that `fixnorm-zoo train RECIPE` reproduces
    the zoo runs without extra flags."""
    import csv
    import shlex

    import yaml

    manifest = yaml.safe_load((ROOT / "eval" / "manifest.yaml").read_text())
    with open(ROOT / "eval" / "results.csv", newline="") as f:
        recorded = [r["id"].split("/")[0] for r in csv.DictReader(f)]
    newest: dict[str, str] = {}
    for entry in manifest["tunes"]:
        args = shlex.split(entry["args"])
        in_progress = (  # a grid never ends early: fewer rows than its points is a search still running
            "grid" in args
            and "--trials" in args
            and recorded.count(entry["id"]) < int(args[args.index("--trials") + 1])
        )
        if in_progress:
            continue
        # a search at another schedule or seed (the tuner study's half-schedule and second-seed surfaces) measures the
        # recipe's surface, it does not tune the recipe
        other_run = any(f"--set {k}=" in entry["args"] for k in ("epochs", "seed"))
        if not entry["id"].startswith(("grid_", "explore_")) and not other_run:
            newest[entry["recipe"]] = entry["id"]
    assert newest, "no recipe tunings in eval/manifest.yaml"
    for recipe_name, tune_id in newest.items():
        path = ROOT / "eval" / "tuner" / f"{tune_id}_best.yaml"
        assert path.is_file(), f"{path} missing: eval/record.py run --only {tune_id}"
        recipe = load_recipe(recipe_name)
        for knob, value in yaml.safe_load(path.read_text()).items():
            # "4e-05" is a str to YAML 1.1
            assert getattr(recipe, knob) == pytest.approx(float(value)), (recipe_name, tune_id, knob)


def test_exponent_notation_for_float_field_is_accepted() -> None:
    # PyYAML reads "4e-05" (no dot) as a string, yet that is how Python prints the tuner's picks (eval/tuner/*_best.yaml)
    recipe = load_recipe(
        "fashion_mnist/demo_wd", overrides=parse_overrides(["weight_decay=4e-05", "lr=1e-1"])
    )
    assert recipe.weight_decay == pytest.approx(4e-5) and recipe.lr == pytest.approx(0.1)
    for bad in ("nan", "inf", "fast"):
        with pytest.raises(RecipeError, match=rf"lr='{bad}': expected float"):
            load_recipe("fashion_mnist/demo_wd", overrides=parse_overrides([f"lr={bad}"]))


def test_amp_no_is_accepted_in_yaml_and_set(tmp_path: Path) -> None:
    """`amp: no` as the README writes it: YAML 1.1 reads `no` as false, which must still mean 'no autocast'."""
    assert load_recipe("fashion_mnist/demo_wd", overrides=parse_overrides(["amp=no"])).amp == "no"
    path = tmp_path / "r.yaml"
    path.write_text("inherit: " + str(RECIPES_DIR / "fashion_mnist" / "demo_wd.yaml") + "\namp: no\n")
    assert load_recipe(str(path)).amp == "no"
    assert load_recipe("fashion_mnist/demo_wd", overrides={"amp": "bf16"}).amp == "bf16"
    with pytest.raises(RecipeError, match="amp=True"):
        load_recipe("fashion_mnist/demo_wd", overrides={"amp": True})


def test_muon_optimizer_field_validates() -> None:
    recipe = load_recipe("fashion_mnist/demo_wd", overrides={"optimizer": "muon", "aux_lr_scale": 4})
    assert recipe.optimizer == "muon" and recipe.aux_lr_scale == 4.0
    with pytest.raises(RecipeError, match="aux_lr_scale"):
        load_recipe("fashion_mnist/demo_wd", overrides={"aux_lr_scale": 0})
