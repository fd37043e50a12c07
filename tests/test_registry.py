"""The registry file: well-formed entries whose recorded sizes are what the recipes really build."""

from __future__ import annotations

import csv
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import pytest
import torch

from fixnorm_zoo.recipe import load_recipe
from fixnorm_zoo.zoo.registry import REGISTRY_FILE, list_models, model_info

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def test_every_entry_parses_and_points_at_a_recipe_that_builds_it() -> None:
    names = list_models()
    raw_names = [m["name"] for m in json.loads(REGISTRY_FILE.read_text())["models"]]
    assert sorted(names) == sorted(raw_names) and len(set(names)) == len(names) >= 8  # each entry listed once
    for name in names:
        info = model_info(name)
        recipe = load_recipe(info.recipe)
        assert (recipe.model, recipe.model_args, recipe.method) == (
            info.architecture,
            info.model_args,
            info.method,
        )
        assert info.eval_setting["input_size"] == recipe.input_size and info.num_classes == recipe.num_classes
        if info.status == "published":
            assert info.top1 is not None and len(info.hub.sha256) == 64 and info.hub.size > 0
        if info.baseline_of:
            assert model_info(info.baseline_of).method == "fixnorm" and info.method == "wd"
    raw = json.loads(REGISTRY_FILE.read_text())["models"]
    aliases = [a for m in raw for a in m["aliases"]]
    assert len(set(aliases + names)) == len(aliases) + len(names)  # no name is ambiguous


@pytest.mark.parametrize("name", ["mobilenetv2_scaled", "fmnist_resnet18"])
def test_recorded_params_and_gmacs_are_measured(name: str) -> None:
    from registry_stats import measure

    info = model_info(name)
    assert (info.params_m, info.gmacs) == measure(info.recipe)


def test_unknown_registry_fields_are_refused(tmp_path: Path, monkeypatch) -> None:
    from fixnorm_zoo.errors import FixNormZooError

    data = json.loads(REGISTRY_FILE.read_text())
    data["models"][0]["top_1"] = 77.0
    (tmp_path / "zoo.json").write_text(json.dumps(data))
    monkeypatch.setenv("FIXNORM_ZOO_REGISTRY", str(tmp_path / "zoo.json"))
    with pytest.raises(FixNormZooError, match="top_1"):
        list_models()


RELEASE = Path(__file__).resolve().parent.parent / "zoo_mirror"
PUBLISHED = [n for n in list_models() if model_info(n).status == "published"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_weights_are_the_registrys_and_load(name: str, monkeypatch) -> None:
    """The release folder zoo_mirror/ holds every published model the registry pins no Hub revision for, byte for
    byte (size and sha256 re-hashed), and `load` (naming that folder as the mirror) builds it with a strict key
    match, in eval mode."""
    from fixnorm_zoo import load
    from fixnorm_zoo.zoo.hub import sha256_file

    monkeypatch.delenv("FIXNORM_ZOO_HUB", raising=False)
    info = model_info(name)
    if info.hub.revision is not None:
        pytest.skip("pinned to a Hub commit: covered by tests/test_hub.py against the local Hub")
    path = RELEASE / info.hub.repo_id / info.hub.filename
    assert path.stat().st_size == info.hub.size and sha256_file(path) == info.hub.sha256
    config = json.loads((path.parent / "config.json").read_text())
    assert config["architecture"] == info.architecture
    # timm adds num_classes, in_chans, global_pool to the recorded model_args
    assert info.model_args.items() <= config["model_args"].items()
    model = load(name, mirror=RELEASE)
    assert not model.training and model.pretrained_cfg["input_size"] == tuple(info.eval_setting["input_size"])


def test_published_fmnist_numbers_are_the_measured_rows() -> None:
    """A published Fashion-MNIST entry's top-1 is seed 0's row in eval/results.csv (its recipe as shipped, no
    overrides) and its notes carry the mean over the seeds recorded there (tools/registry_notes.py writes them)."""

    with open(ROOT / "eval" / "results.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "train" and not r["set"]]
    published = [m for m in list_models("fmnist*") if model_info(m).status == "published"]
    assert published, "no published Fashion-MNIST entry"
    for name in published:
        info = model_info(name)
        # the newest group that ran the recipe as shipped: baseline (tuned on full runs) over fast over families
        group = next(
            g
            for g in ("baseline", "fast", "families")
            if any(r["group"] == g and r["recipe"] == info.recipe for r in rows)
        )
        seeds = {
            int(r["seed"]): float(r["top1"])
            for r in rows
            if r["recipe"] == info.recipe and r["group"] == group
        }
        assert info.top1 == seeds[0], name
        assert f"{statistics.mean(seeds.values()):.2f}" in info.notes and f"of {len(seeds)}" in info.notes, (
            name
        )


@pytest.mark.slow  # ~100 s: 10k PIL transforms per entry; CI runs it (.ci/run: make test, then make test-slow)
@pytest.mark.parametrize("name", PUBLISHED)
def test_timm_data_pipeline_reproduces_the_published_number(name: str) -> None:
    """timm alone, as its validate.py runs (`--model local-dir:REPO --pretrained`, the config from the published
    config.json, resolve_data_config with the test size, create_transform on PIL images), gives the registry's top-1
    on the 10k test images; and fixnorm_zoo.load's model has that same config."""
    import timm.data
    from PIL import Image

    import fixnorm_zoo.models.resnet9s  # noqa: F401  (resnet9s)
    from fixnorm_zoo import load
    from fixnorm_zoo.data.fashion_mnist import load_fashion_mnist

    info = model_info(name)
    model = timm.create_model(f"local-dir:{RELEASE / info.hub.repo_id}", pretrained=True).eval()
    zoo_model = load(name, mirror=RELEASE)
    cfg = timm.data.resolve_data_config(model=model, use_test_size=True)
    zoo_cfg = timm.data.resolve_data_config(model=zoo_model, use_test_size=True)
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()} == zoo_cfg
    transform = timm.data.create_transform(**cfg)
    images, labels = load_fashion_mnist(split="test")
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), 1000):
            batch = torch.stack(
                [transform(Image.fromarray(img[0].numpy(), mode="L")) for img in images[start : start + 1000]]
            )
            correct += int((model(batch).argmax(1) == labels[start : start + 1000]).sum())
    assert abs(100 * correct / len(images) - info.top1) < 0.015, (
        name,
        100 * correct / len(images),
        info.top1,
    )


def test_published_entries_are_timm_tags_with_their_model_args() -> None:
    import timm

    from fixnorm_zoo.zoo.timm_tags import register_timm_tags

    names = register_timm_tags()
    published = {n for n in list_models(pretrained=True) if model_info(n).tag}
    assert set(names) == published and "resnet9s.fixnorm_fmnist" in names
    assert "resnet9s.fixnorm_proxytuned_fmnist" not in names  # retired: kept on record, not served
    assert published <= set(timm.list_models(pretrained=True))
    cfg = timm.models.get_pretrained_cfg("resnet9s.wd_fmnist")
    assert (cfg.hf_hub_id, cfg.tag, cfg.input_size, cfg.num_classes) == (
        "fixnorm-zoo/fmnist_resnet9s_wd",
        "wd_fmnist",
        (1, 28, 28),
        10,
    )
    # the tag brings the entry's model_args (half-width channels, output_stride 8) and its 1-channel, 10-class head
    model = timm.create_model("resnet18.fixnorm_fmnist")
    assert (model.num_features, model.num_classes, model.conv1.in_channels) == (256, 10, 1)
    assert model.layer4[0].conv1.stride == (1, 1)  # output_stride 8: stage 4 dilated, not strided
    assert (
        timm.create_model("resnet18", num_classes=3).num_features == 512
    )  # the untagged architecture: stock
    assert register_timm_tags() == names  # idempotent


def test_a_users_publishes_go_to_the_user_file_merged_over_the_package(tmp_path, monkeypatch) -> None:
    """The default registry never writes into the installed package: an entry lands in the user's file (beside
    the HF cache), list/get see it merged over the package's entries, and an entry of the same name there
    replaces the package's."""
    from fixnorm_zoo.zoo.registry import ModelInfo, Registry, user_registry_path

    monkeypatch.delenv("FIXNORM_ZOO_REGISTRY", raising=False)
    monkeypatch.delenv("FIXNORM_ZOO_USER_REGISTRY", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert user_registry_path() == tmp_path / "hf" / "fixnorm_zoo" / "zoo.json"
    package_bytes = REGISTRY_FILE.read_bytes()
    reg = Registry()
    mine = ModelInfo(
        name="my_model", architecture="resnet9s", dataset="fashion_mnist", recipe="fashion_mnist/demo_wd"
    )
    reg.upsert(mine)
    changed = dataclasses.replace(model_info("resnet9s.wd_fmnist"), notes="my re-publish")
    reg.upsert(changed)
    assert REGISTRY_FILE.read_bytes() == package_bytes  # the package's data file untouched
    user = json.loads(user_registry_path().read_text())["models"]
    assert sorted(m["name"] for m in user) == ["my_model", "resnet9s.wd_fmnist"]
    assert "my_model" in list_models() and "resnet9s.fixnorm_fmnist" in list_models()
    assert model_info("fmnist_resnet9s_wd").notes == "my re-publish"  # by alias, the user's entry wins
    assert Registry(REGISTRY_FILE).get("resnet9s.wd_fmnist").notes != "my re-publish"


def test_eval_transform_takes_colour_and_grayscale_images() -> None:
    """A colour photo through a 1-channel model's transform (and a grayscale scan through an
    RGB model's) is converted to the model's channels, not a shape error."""
    from PIL import Image

    from fixnorm_zoo import get_transforms

    rgb = Image.new("RGB", (40, 30), (200, 100, 50))
    gray = rgb.convert("L")
    fmnist = get_transforms("resnet9s.fixnorm_fmnist")
    assert fmnist(rgb).shape == (1, 28, 28) and torch.equal(fmnist(rgb), fmnist(gray))
    imagenet = get_transforms("efficientnet_b0.fixnorm_in1k")
    assert imagenet(gray).shape == (3, 224, 224)


def test_timm_script_runs_a_timm_script_with_the_zoo_registered(tmp_path) -> None:
    """The cards' validate.py line. A stand-in for timm's script sees resnet9s and the zoo's tags in
    timm's registry, its own arguments unchanged; a missing script is one error line."""
    import subprocess

    script = tmp_path / "validate.py"
    script.write_text(
        "import sys, timm\n"
        "print(timm.is_model('resnet9s'), 'resnet9s.fixnorm_fmnist' in timm.list_models(pretrained=True), sys.argv[1:])\n"
    )
    cmd = [sys.executable, "-m", "fixnorm_zoo.timm_script"]
    r = subprocess.run([*cmd, str(script), "--model", "x", "--in-chans", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == "True True ['--model', 'x', '--in-chans', '1']"
    r = subprocess.run([*cmd, str(tmp_path / "nope.py")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "error:" in r.stderr
