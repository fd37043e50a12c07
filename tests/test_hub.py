"""The zoo end to end against a local Hub: publish (gate, card, timm format) → load (pinned revision, sha256),
plain timm in a process that never imports fixnorm_zoo, offline behaviour, tampering, the local mirror.

The Hub is ``tests/hub_server.py`` in a subprocess on a free loopback port; the real huggingface_hub client talks to
it from subprocesses, because ``HF_ENDPOINT`` must be set before huggingface_hub is imported (this pytest process
already imported it, offline).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import reset_accelerate, run_cli, tiny_recipe

from fixnorm_zoo.errors import FixNormZooError, UnknownModelError, WeightsUnavailable

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_testtoken_DoNotPrintMe123"
PROBE = "torch.manual_seed(0); x = torch.randn(4, 1, 28, 28)"


def _train(out: Path, seed: int, **extra) -> Path:
    from fixnorm_zoo.engine.train import train

    train(
        tiny_recipe(seed=seed, **extra),
        output_dir=out,
        progress=False,
    )
    reset_accelerate()
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    wd = {"method": "wd", "fc_norm": None, "weight_decay": 5e-4}
    return {"a": _train(base / "a", 0), "b": _train(base / "b", 1, **wd)}  # b: a's weight-decay twin


def _outputs_of_run(run: Path) -> torch.Tensor:
    from fixnorm_zoo.zoo.evaluate import load_run

    model, _, _ = load_run(run)
    exec(PROBE, globals(), ns := {"torch": torch})
    with torch.no_grad():
        return model.eval()(ns["x"])


def _env(hub: str, home: Path, registry: Path, *, offline: bool = False, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FIXNORM_ZOO_"))}
    env.update(
        HF_ENDPOINT=hub,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(home),
        HF_TOKEN=TOKEN,
        HF_HUB_OFFLINE="1" if offline else "0",
        HF_HUB_DISABLE_TELEMETRY="1",
        TQDM_DISABLE="1",
        FIXNORM_ZOO_REGISTRY=str(registry),
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)


def _outputs_in_subprocess(env: dict[str, str], load_expr: str, out: Path) -> subprocess.CompletedProcess:
    code = (
        f"import sys, torch\n{load_expr}\nmodel.eval()\n{PROBE}\n"
        f"with torch.no_grad(): torch.save(model(x), {str(out)!r})\n"
        "print('imported fixnorm_zoo' if 'fixnorm_zoo' in sys.modules else 'no fixnorm_zoo')\n"
    )
    return _run(["-c", code], env)


@pytest.fixture(scope="module")
def published(hub, runs, tmp_path_factory) -> dict:
    """Run a published twice to org/tiny (rev 1: run a, rev 2: run b), registry snapshots after each."""
    work = tmp_path_factory.mktemp("published")
    registry = work / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    env = _env(hub, work / "home_publisher", registry)
    first = run_cli("publish", str(runs["a"]), "--repo-id", "org/tiny", "--name", "tiny", env=env)
    assert first.returncode == 0, first.stderr
    snap1 = work / "zoo_rev1.json"
    shutil.copyfile(registry, snap1)
    refused = run_cli("publish", str(runs["b"]), "--repo-id", "org/tiny", "--name", "tiny", env=env)
    assert (
        refused.returncode == 2 and "--replace" in refused.stderr
    )  # a published entry is not replaced by accident
    second = run_cli(
        "publish", str(runs["b"]), "--repo-id", "org/tiny", "--name", "tiny", "--replace", env=env
    )
    assert second.returncode == 0, second.stderr
    return {"work": work, "rev1": snap1, "rev2": registry, "logs": [first, second]}


def _entry(registry: Path, name: str) -> dict:
    return next(m for m in json.loads(registry.read_text())["models"] if name in (m["name"], *m["aliases"]))


def test_publish_writes_registry_and_never_prints_the_token(published) -> None:
    e1, e2 = _entry(published["rev1"], "tiny"), _entry(published["rev2"], "tiny")
    for e in (e1, e2):
        assert (
            e["status"] == "published" and len(e["hub"]["revision"]) == 40 and len(e["hub"]["sha256"]) == 64
        )
        assert e["top1"] is not None and e["eval_split"] == "test"
    assert e1["hub"]["revision"] != e2["hub"]["revision"] and e1["hub"]["sha256"] != e2["hub"]["sha256"]
    for log in published["logs"]:
        assert TOKEN not in log.stdout + log.stderr
    assert TOKEN not in published["rev2"].read_text()


def test_load_round_trip_and_plain_timm_give_the_run_outputs(hub, runs, published, tmp_path) -> None:
    env = _env(hub, tmp_path / "home", published["rev2"])
    expected = _outputs_of_run(runs["b"])
    r = _outputs_in_subprocess(
        env, "import fixnorm_zoo\nmodel = fixnorm_zoo.load('tiny')", tmp_path / "zoo.pt"
    )
    assert r.returncode == 0, r.stderr
    torch.testing.assert_close(torch.load(tmp_path / "zoo.pt"), expected, rtol=0, atol=0)
    r = _outputs_in_subprocess(
        env,
        "import timm\nmodel = timm.create_model('hf-hub:org/tiny', pretrained=True)",
        tmp_path / "timm.pt",
    )
    assert r.returncode == 0, r.stderr
    assert "no fixnorm_zoo" in r.stdout
    torch.testing.assert_close(torch.load(tmp_path / "timm.pt"), expected, rtol=0, atol=0)


def test_zoo_tags_load_through_plain_timm_after_import_fixnorm_zoo(hub, runs, published, tmp_path) -> None:
    """A published entry named ``architecture.tag`` is a timm pretrained tag once timm is imported after
    ``import fixnorm_zoo``: timm lists it, and ``timm.create_model(NAME, pretrained=True)`` downloads the pinned
    commit with the entry's model_args (here the tiny widths) and gives the run's outputs."""
    data = json.loads(published["rev2"].read_text())
    (entry,) = [m for m in data["models"] if m["name"] == "tiny"]
    entry["name"] = "resnet18.tiny_fmnist"
    registry = tmp_path / "zoo.json"
    registry.write_text(json.dumps(data))
    env = _env(hub, tmp_path / "home", registry)
    load = (
        "import fixnorm_zoo, timm\n"
        "assert 'resnet18.tiny_fmnist' in timm.list_models('resnet18*', pretrained=True)\n"
        "cfg = timm.models.get_pretrained_cfg('resnet18.tiny_fmnist')\n"
        f"assert cfg.hf_hub_id == 'org/tiny@{entry['hub']['revision']}', cfg.hf_hub_id\n"
        "assert cfg.paper_ids == 'arXiv:2103.15345'\n"
        "assert timm.models.get_pretrained_cfg('resnet18').tag == 'a1_in1k'  # timm's default stays default\n"
        "model = timm.create_model('resnet18.tiny_fmnist', pretrained=True)"
    )
    r = _outputs_in_subprocess(env, load, tmp_path / "tag.pt")
    assert r.returncode == 0, r.stderr
    torch.testing.assert_close(torch.load(tmp_path / "tag.pt"), _outputs_of_run(runs["b"]), rtol=0, atol=0)
    r = _outputs_in_subprocess(
        {**env, "FIXNORM_ZOO_NO_TIMM_TAGS": "1"},
        "import fixnorm_zoo, timm\nmodel = timm.create_model('resnet18.tiny_fmnist', pretrained=True)",
        tmp_path / "off.pt",
    )
    assert r.returncode != 0 and "tiny_fmnist" in r.stderr  # opted out: timm does not know the tag


def test_revision_pinning_loads_the_registry_commit_not_main(hub, runs, published, tmp_path) -> None:
    env = _env(hub, tmp_path / "home", published["rev1"])  # registry pins commit 1; main now holds run b
    r = _outputs_in_subprocess(env, "import fixnorm_zoo\nmodel = fixnorm_zoo.load('tiny')", tmp_path / "o.pt")
    assert r.returncode == 0, r.stderr
    torch.testing.assert_close(torch.load(tmp_path / "o.pt"), _outputs_of_run(runs["a"]), rtol=0, atol=0)


def test_offline_after_caching_works_and_empty_cache_fails_clearly(hub, published, tmp_path) -> None:
    load = "import fixnorm_zoo\nmodel = fixnorm_zoo.load('tiny')"
    warm = tmp_path / "warm"
    assert _outputs_in_subprocess(_env(hub, warm, published["rev2"]), load, tmp_path / "1.pt").returncode == 0
    r = _outputs_in_subprocess(_env(hub, warm, published["rev2"], offline=True), load, tmp_path / "2.pt")
    assert r.returncode == 0, r.stderr
    r = _outputs_in_subprocess(
        _env(hub, tmp_path / "cold", published["rev2"], offline=True), load, tmp_path / "3.pt"
    )
    assert r.returncode != 0
    assert "not in the local cache" in r.stderr and "HF_HUB_OFFLINE" in r.stderr


def test_tampered_cached_weights_are_refused(hub, published, tmp_path) -> None:
    home = tmp_path / "home"
    load = "import fixnorm_zoo\nmodel = fixnorm_zoo.load('tiny')"
    assert _outputs_in_subprocess(_env(hub, home, published["rev2"]), load, tmp_path / "1.pt").returncode == 0
    blobs = [p for p in (home / "hub").rglob("blobs/*") if p.stat().st_size > 100_000]
    assert len(blobs) == 1
    data = bytearray(blobs[0].read_bytes())
    data[-1] ^= (
        0xFF  # one flipped bit in the last tensor: same size, so huggingface_hub alone would not notice
    )
    blobs[0].write_bytes(bytes(data))
    r = _outputs_in_subprocess(_env(hub, home, published["rev2"], offline=True), load, tmp_path / "2.pt")
    assert r.returncode != 0
    assert "IntegrityError" in r.stderr and "refusing to load" in r.stderr
    assert not (tmp_path / "2.pt").exists()


def test_gate_refuses_a_wrong_claim(hub, runs, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["a"], run)
    summary = json.loads((run / "summary.json").read_text())
    summary["top1"] += 0.5
    (run / "summary.json").write_text(json.dumps(summary))
    registry = tmp_path / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    before = registry.read_text()
    r = run_cli(
        "publish",
        str(run),
        "--repo-id",
        "org/wrong",
        "--name",
        "w",
        env=_env(hub, tmp_path / "home", registry),
    )
    assert r.returncode == 2
    assert "re-evaluation gives top-1" in r.stderr and "not published" in r.stderr
    assert registry.read_text() == before
    # and nothing reached the Hub: the repo does not exist there
    probe = _run(
        ["-c", "from huggingface_hub import HfApi; HfApi().model_info('org/wrong')"],
        _env(hub, tmp_path / "home", registry),
    )
    assert probe.returncode != 0 and "RepositoryNotFound" in probe.stderr


def test_dry_run_folder_is_timm_format_with_card(runs, tmp_path, monkeypatch) -> None:
    from fixnorm_zoo.zoo.cards import seeds_line
    from fixnorm_zoo.zoo.publish import publish

    registry = tmp_path / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    monkeypatch.setenv("FIXNORM_ZOO_REGISTRY", str(registry))
    out = tmp_path / "out"
    result = publish(runs["a"], repo_id="org/tiny", name="fmnist_resnet18", dry_run=out, twin=runs["b"])
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.json",
        "curves.png",
        "fixnorm_vs_wd.png",
        "log.jsonl",
        "model.safetensors",
        "provenance.json",
        "results.csv",
        "train_hparams.yaml",
    ]
    # what users ask for with each checkpoint: the recipe as run, the log, the measured row, where it ran
    assert (out / "train_hparams.yaml").read_text() == (runs["a"] / "recipe.yaml").read_text()
    assert (out / "log.jsonl").read_text() == (runs["a"] / "log.jsonl").read_text()
    results = (out / "results.csv").read_text().splitlines()
    assert results[0].startswith("model,img_size,top1") and f",{round(result['top1'], 3)}," in results[1]
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["evaluation"]["hardware"] and "torch" in prov["evaluation"]["versions"]
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "resnet18" and config["num_classes"] == 10
    assert config["model_args"]["channels"] == [8, 16, 32, 64]
    assert config["pretrained_cfg"]["input_size"] == [1, 28, 28] and len(config["label_names"]) == 10
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: timm" in card and "model-index:" in card
    assert f"value: {round(result['top1'], 2)}" in card and result["sha256"] in card
    assert "fixnorm-zoo eval" in card and "fc_norm" in card
    # the entry and its twin under their zoo names (the registry pairs resnet18.wd_fmnist with this entry)
    assert "\n# resnet18.fixnorm_fmnist\n" in card and "| resnet18.wd_fmnist (wd, run b) |" in card
    # another model than the entry's (widths 8-64): the entry's seed spread is not this run's
    assert seeds_line("") in card and "seeds 0-2" not in card
    assert "arxiv:2103.15345" in card and "- fixnorm" in card and "weight-decay" not in card.split("---")[1]
    assert json.loads(registry.read_text()) == json.loads((ROOT / "fixnorm_zoo" / "zoo.json").read_text())


def test_local_mirror_publish_and_load(runs, tmp_path, monkeypatch) -> None:
    from fixnorm_zoo import load
    from fixnorm_zoo.errors import IntegrityError
    from fixnorm_zoo.zoo.publish import publish

    registry = tmp_path / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    monkeypatch.setenv("FIXNORM_ZOO_REGISTRY", str(registry))
    mirror = tmp_path / "mirror"
    monkeypatch.setenv("FIXNORM_ZOO_HUB", str(mirror))
    publish(runs["a"], repo_id="org/tiny", name="fmnist_resnet18", replace=True)
    entry = _entry(registry, "fmnist_resnet18")
    assert (
        entry["name"] == "resnet18.fixnorm_fmnist"
    )  # published under its older name: the entry keeps its own
    assert entry["status"] == "published" and entry["hub"]["revision"] is None
    assert entry["recipe"] == "fashion_mnist/resnet18_fixnorm"  # the existing entry is updated, not replaced
    model = load("fmnist_resnet18_fixnorm")  # by alias
    assert not model.training
    exec(PROBE, globals(), ns := {"torch": torch})
    with torch.no_grad():
        torch.testing.assert_close(model(ns["x"]), _outputs_of_run(runs["a"]), rtol=0, atol=0)
    assert load("fmnist_resnet18", num_classes=3)(ns["x"]).shape == (4, 3)
    weights = mirror / "org" / "tiny" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(IntegrityError, match="sha256"):
        load("fmnist_resnet18")


def test_lookup_errors_and_unpublished_models(monkeypatch) -> None:
    from fixnorm_zoo import list_models, load, model_info

    # names are timm's architecture.tag; the older names stay as aliases and match patterns too
    assert "mobilenetv2_110d.fixnorm_in1k" in list_models()
    assert (
        list_models("resnet50.*") == list_models("resnet50*") == ["resnet50.fixnorm_in1k", "resnet50.wd_in1k"]
    )
    assert model_info("mobilenetv2_scaled").name == "mobilenetv2_110d.fixnorm_in1k"
    assert list_models("fmnist_resnet9s") == ["resnet9s.fixnorm_fmnist"]
    with pytest.raises(UnknownModelError, match="mobilenetv2_scaled"):
        model_info("mobilenetv2_scald")
    with pytest.raises(WeightsUnavailable, match="fixnorm-zoo train imagenet/mobilenetv2_scaled_fixnorm"):
        load("mobilenetv2_scaled")
    model = load("mobilenetv2_scaled", pretrained=False)
    assert not model.training and model.pretrained_cfg["input_size"] == (3, 208, 208)


def test_mirror_only_entries_load_from_a_named_mirror_only(runs, tmp_path, monkeypatch) -> None:
    """An entry published to a mirror only (no Hub revision) loads from a mirror the user names (mirror= or
    FIXNORM_ZOO_HUB), never from a hidden fallback; without one the error says how to name it; the sha256 applies."""
    from fixnorm_zoo import load
    from fixnorm_zoo.zoo.publish import publish

    registry = tmp_path / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    publish(
        runs["a"],
        repo_id="org/tiny",
        name="fmnist_resnet18",
        mirror=tmp_path / "release",
        registry=registry,
        replace=True,
    )
    monkeypatch.delenv("FIXNORM_ZOO_HUB", raising=False)
    exec(PROBE, globals(), ns := {"torch": torch})
    with torch.no_grad():
        out = load("fmnist_resnet18", registry=registry, mirror=tmp_path / "release")(ns["x"])
    torch.testing.assert_close(out, _outputs_of_run(runs["a"]), rtol=0, atol=0)
    with pytest.raises(WeightsUnavailable, match="FIXNORM_ZOO_HUB") as err:
        load("fmnist_resnet18", registry=registry)
    # both ways of naming the mirror: Python's keyword and the command line's flag
    assert "mirror=DIR in Python" in str(err.value) and "--mirror DIR on the command line" in str(err.value)
    assert isinstance(err.value, LookupError)
    with pytest.raises(FixNormZooError, match="cannot be honoured by the mirror"):
        load("fmnist_resnet18", registry=registry, mirror=tmp_path / "release", revision="main")


def test_loaded_model_config_is_the_registry_eval_setting(runs, tmp_path) -> None:
    """config.json holds the zoo's pretrained config only (no ImageNet test size, tag or paper ids), and a loaded
    model's pretrained_cfg/default_cfg give timm's data pipeline the registry's eval setting."""
    import timm.data

    from fixnorm_zoo import load
    from fixnorm_zoo.zoo.publish import publish
    from fixnorm_zoo.zoo.registry import Registry

    registry = tmp_path / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    publish(runs["a"], repo_id="org/tiny", name="tiny", mirror=tmp_path / "m", registry=registry)
    cfg = json.loads((tmp_path / "m" / "org" / "tiny" / "config.json").read_text())["pretrained_cfg"]
    for imagenet_field in ("test_input_size", "tag", "paper_ids", "hf_hub_id", "url", "test_crop_pct"):
        assert imagenet_field not in cfg, imagenet_field
    assert (
        cfg["input_size"] == [1, 28, 28] and cfg["interpolation"] == "bilinear" and cfg["num_classes"] == 10
    )
    model = load("tiny", registry=registry, mirror=tmp_path / "m")
    assert model.pretrained_cfg == model.default_cfg
    ev = Registry(registry).get("tiny").eval_setting
    data_cfg = timm.data.resolve_data_config(model=model, use_test_size=True)
    assert data_cfg["input_size"] == tuple(ev["input_size"]) and data_cfg["crop_pct"] == ev["crop_pct"]
    assert data_cfg["mean"] == tuple(ev["mean"]) and data_cfg["interpolation"] == ev["interpolation"]
    assert "hf_hub_id" not in model.pretrained_cfg and "test_input_size" not in model.pretrained_cfg


def test_hf_hub_ids_and_pretrained_listing(hub, published, tmp_path) -> None:
    """load('hf-hub:ORG/NAME') of a zoo repo goes through the registry (pinned, sha256-checked), as eval does;
    list_models(pretrained=True) lists only entries with weights."""
    env = _env(hub, tmp_path / "home", published["rev2"])
    code = (
        "import fixnorm_zoo\nm = fixnorm_zoo.load('hf-hub:org/tiny')\nprint(type(m).__name__, m.training)\n"
        "names = fixnorm_zoo.list_models(pretrained=True)\nprint('tiny' in names, 'resnet50.fixnorm_in1k' in names)"
    )
    r = _run(["-c", code], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ResNet", "False", "True", "False"]
    r = _run(["-c", "import fixnorm_zoo; fixnorm_zoo.load('hf-hub:org/not-in-zoo')"], env)
    assert r.returncode != 0 and "not a zoo repo" in r.stderr


def test_push_release_pins_the_hub_commit(hub, runs, tmp_path) -> None:
    """A release folder (as zoo_mirror/) pushed with `fixnorm-zoo push` gets a pinned commit, and the entry then
    loads from the Hub with no mirror named."""
    registry = tmp_path / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    env = _env(hub, tmp_path / "home", registry)
    r = run_cli(
        "publish",
        str(runs["a"]),
        "--repo-id",
        "org/released",
        "--name",
        "released",
        "--mirror",
        str(tmp_path / "release"),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert _entry(registry, "released")["hub"]["revision"] is None
    r = run_cli("push", str(tmp_path / "release"), "--name", "released", env=env)
    assert r.returncode == 0, r.stderr
    revision = _entry(registry, "released")["hub"]["revision"]
    assert revision and len(revision) == 40 and revision in r.stdout
    # the Hub repo carries every file publish wrote (weights, config, card, plots, hparams, log, results, provenance)
    code = "import sys, huggingface_hub as h; print(*h.HfApi().list_repo_files('org/released', revision=sys.argv[1]))"
    listed = subprocess.run([sys.executable, "-c", code, revision], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert sorted(f for f in listed.stdout.split() if f != ".gitattributes") == sorted(
        p.name for p in (tmp_path / "release" / "org" / "released").iterdir()
    )
    # an unchanged release is not pushed again (no empty commit); --force pushes anyway
    r = run_cli("push", str(tmp_path / "release"), "--name", "released", env=env)
    assert r.returncode == 0 and "unchanged since commit" in r.stdout, r.stdout + r.stderr
    assert _entry(registry, "released")["hub"]["revision"] == revision
    r = run_cli("push", str(tmp_path / "release"), "--name", "released", "--force", env=env)
    assert r.returncode == 0, r.stderr
    forced = _entry(registry, "released")["hub"]["revision"]
    assert forced != revision and forced in r.stdout
    revision = forced
    r = _outputs_in_subprocess(
        env, "import fixnorm_zoo\nmodel = fixnorm_zoo.load('released')", tmp_path / "o.pt"
    )
    assert r.returncode == 0, r.stderr
    torch.testing.assert_close(torch.load(tmp_path / "o.pt"), _outputs_of_run(runs["a"]), rtol=0, atol=0)


def test_push_checks_everything_first_and_uploads_only_what_publish_wrote(hub, runs, tmp_path) -> None:
    """A stray `.env` beside a release is never uploaded; a pickle in any selected folder stops the whole
    push before anything goes up; an unknown --name is an error, not exit 0; an empty --mirror is refused."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    registry = tmp_path / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    env = _env(hub, tmp_path / "home", registry)
    release = tmp_path / "release"
    for name in ("p1", "p2"):
        r = run_cli(
            "publish",
            str(runs["a"]),
            "--repo-id",
            f"org/{name}",
            "--name",
            name,
            "--mirror",
            str(release),
            env=env,
        )
        assert r.returncode == 0, r.stderr
    r = run_cli("publish", str(runs["a"]), "--repo-id", "org/p3", "--name", "p3", "--mirror", "", env=env)
    assert r.returncode == 2 and "empty string" in r.stderr and "Traceback" not in r.stderr
    (release / "org" / "p2" / "pytorch_model.bin").write_bytes(b"pickle")
    r = run_cli("push", str(release), "--name", "p1", "--name", "p2", env=env)
    assert r.returncode == 2 and "pickle" in r.stderr
    assert _entry(registry, "p1")["hub"]["revision"] is None  # p1 was fine, but nothing is pushed
    (release / "org" / "p2" / "pytorch_model.bin").unlink()
    (release / "org" / "p1" / ".env").write_text("HF_TOKEN=secret")
    r = run_cli("push", str(release), "--name", "no_such_model", env=env)
    assert r.returncode == 2 and "no_such_model" in r.stderr
    r = run_cli("push", str(release), "--name", "p1", "--name", "p2", env=env)
    assert r.returncode == 0, r.stderr
    revision = _entry(registry, "p1")["hub"]["revision"]
    assert revision and _entry(registry, "p2")["hub"]["revision"]
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/p1", ".env", revision=revision, cache_dir=tmp_path / "dl", endpoint=hub)


@pytest.mark.slow  # 18 s; the default suite keeps publish and push round trips, CI runs it (make test-slow)
def test_hub_republish_leaves_no_file_of_the_previous_run(hub, runs, tmp_path) -> None:
    registry = tmp_path / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    env = _env(hub, tmp_path / "home", registry)
    r = run_cli(
        "publish",
        str(runs["a"]),
        "--repo-id",
        "org/again",
        "--name",
        "again",
        "--twin",
        str(runs["b"]),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("publish", str(runs["a"]), "--repo-id", "org/again", "--name", "again", "--replace", env=env)
    assert r.returncode == 0, r.stderr
    code = "from huggingface_hub import HfApi; print(sorted(HfApi().list_repo_files('org/again')))"
    files = _run(["-c", code], env)
    assert files.returncode == 0, files.stderr
    assert "fixnorm_vs_wd.png" not in files.stdout and "model.safetensors" in files.stdout


def test_push_uploads_no_symlink_target_and_never_blocks_on_a_fifo(hub, runs, tmp_path) -> None:
    """A release folder's file that is a symlink (to a secret, say) or a FIFO stops the push before anything goes
    up, with one error line naming it: push uploads only regular files, the very bytes it hashed."""
    import os

    registry = tmp_path / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    env = _env(hub, tmp_path / "home", registry)
    release = tmp_path / "release"
    r = run_cli(
        "publish", str(runs["a"]), "--repo-id", "org/s1", "--name", "s1", "--mirror", str(release), env=env
    )
    assert r.returncode == 0, r.stderr
    folder = release / "org" / "s1"
    secret = tmp_path / "secret.txt"
    secret.write_text("HF_TOKEN=hf_secret")
    (folder / "results.csv").unlink()
    (folder / "results.csv").symlink_to(secret)
    r = run_cli("push", str(release), "--name", "s1", env=env, timeout=60)
    assert r.returncode == 2 and "symlink" in r.stderr and "results.csv" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and _entry(registry, "s1")["hub"]["revision"] is None
    (folder / "results.csv").unlink()
    (folder / "results.csv").write_text("model,top1\n")
    (folder / "README.md").unlink()
    os.mkfifo(folder / "README.md")
    r = run_cli("push", str(release), "--name", "s1", env=env, timeout=60)  # a hang would time out
    assert r.returncode == 2 and "FIFO" in r.stderr and "README.md" in r.stderr, r.stderr
    assert _entry(registry, "s1")["hub"]["revision"] is None


def test_a_user_entry_named_like_timms_own_tag_never_replaces_timms_weights(tmp_path) -> None:
    """A user registry entry named ``mobilenetv2_050.lamb_in1k`` (timm's own ImageNet tag) and pointing at another
    repo: after ``import fixnorm_zoo``, timm's tag and the architecture's default still name timm's own weights, and
    a warning names the entry (it was: timm downloaded and loaded the other repo's weights)."""
    import json

    models = json.loads((ROOT / "fixnorm_zoo" / "zoo.json").read_text())["models"]
    entry = dict(next(m for m in models if m["name"] == "mobilenetv2_050.fixnorm_fmnist"))
    entry.update(name="mobilenetv2_050.lamb_in1k", aliases=[], hub={**entry["hub"], "repo_id": "evil/m"})
    user = tmp_path / "zoo.json"
    user.write_text(json.dumps({"models": [entry]}))
    code = (
        "import warnings, fixnorm_zoo, timm\n"
        "from timm.models import get_pretrained_cfg\n"
        "print(get_pretrained_cfg('mobilenetv2_050.lamb_in1k').hf_hub_id)\n"
        "print(get_pretrained_cfg('mobilenetv2_050').hf_hub_id)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "FIXNORM_ZOO_USER_REGISTRY": str(user), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "evil/m" not in r.stdout and r.stdout.split() == ["timm/mobilenetv2_050.lamb_in1k"] * 2, r.stdout
    assert "mobilenetv2_050.lamb_in1k" in r.stderr and "not registered with timm" in r.stderr
