"""Fault injection: what a hostile or careless user, a kill -9, a full disk or a second process can do, and that
nothing is lost, nothing escapes its folder, and every user mistake is one ``error:`` line.

Kill points are named in the package (``fixnorm_zoo.utils.atomic.fault_point``) and fired with ``FIXNORM_ZOO_KILL_AT``
in a subprocess (SIGKILL: no cleanup runs). Race tests loop a bounded number of times.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from helpers import TINY_RESNET9S, cli_env, run_cli

from fixnorm_zoo.errors import FixNormZooError, IntegrityError, RecipeError

ROOT = Path(__file__).resolve().parent.parent


def _one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and ": error: " in lines[0], r.stderr
    return lines[0]


# -- paths built from user input stay where they belong -------------------------------------------------------


@pytest.mark.parametrize(
    "repo_id", ["x/../../victim", "/abs/victim", "a/b/c", "../victim", "ok/..", "org/.."]
)
def test_publish_repo_id_cannot_leave_the_mirror(run, registry, tmp_path, repo_id) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep")
    mirror = tmp_path / "mirror" / "sub"
    mirror.mkdir(parents=True)
    if repo_id.startswith("/"):
        repo_id = str(victim)
    r = run_cli(
        "publish", str(run), "--repo-id", repo_id, "--mirror", str(mirror), "--registry", str(registry)
    )
    assert "not a Hub ORG/NAME" in _one_error_line(r) or "ORG/NAME" in r.stderr
    assert (victim / "precious.txt").read_text() == "keep" and sorted(p.name for p in victim.iterdir()) == [
        "precious.txt"
    ]
    assert not any(mirror.iterdir())


@pytest.mark.parametrize("parent", ["../../../etc/passwd", "/etc/passwd", "../outside.yaml"])
def test_recipe_inherit_cannot_leave_its_folder(tmp_path, parent) -> None:
    from fixnorm_zoo.recipe import load_recipe

    (tmp_path / "outside.yaml").write_text("name: x\nmodel: resnet9s\ndataset: fashion_mnist\n")
    (tmp_path / "sub").mkdir()
    recipe = tmp_path / "sub" / "r.yaml"
    recipe.write_text(f"inherit: {parent}\nname: r\n")
    with pytest.raises(RecipeError, match="leaves the recipe's folder"):
        load_recipe(recipe)


def test_recipe_may_inherit_a_shipped_recipe_by_name(tmp_path) -> None:
    from fixnorm_zoo.recipe import load_recipe

    recipe = tmp_path / "mine.yaml"
    recipe.write_text("inherit: fashion_mnist/resnet9s_fixnorm\nname: mine\nepochs: 1\n")
    loaded = load_recipe(recipe)
    assert loaded.model == "resnet9s" and loaded.epochs == 1


@pytest.mark.parametrize("name", ["../zoo", "/etc/passwd", "fmnist_resnet9s/../x"])
def test_zoo_names_are_names_not_paths(name) -> None:
    from fixnorm_zoo import load
    from fixnorm_zoo.errors import UnknownModelError

    with pytest.raises(UnknownModelError):
        load(name)


def test_dry_run_refuses_a_non_empty_folder_and_touches_nothing(run, registry, tmp_path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    key = out / "id_key"
    key.write_text("secret")
    key.chmod(0o600)
    (out / "README.md").write_text("my readme")
    r = run_cli("publish", str(run), "--repo-id", "org/x", "--dry-run", str(out), "--registry", str(registry))
    assert "not a new or empty folder" in _one_error_line(r)
    assert (key.stat().st_mode & 0o777) == 0o600 and (out / "README.md").read_text() == "my readme"


def test_local_folder_named_like_a_zoo_model_does_not_shadow_it(tmp_path) -> None:
    from fixnorm_zoo.zoo.evaluate import load_source

    (tmp_path / "resnet50").mkdir()  # a folder named like a zoo entry (recipe status: no weights)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(FixNormZooError, match="recipe, its weights are not published"):
            load_source("resnet50")
    finally:
        os.chdir(cwd)


# -- nothing lost: publishing and the registry under kills, races and a full disk ------------------------------


def _publish_wd_entry(run: Path, *, registry: Path, mirror: Path) -> subprocess.CompletedProcess:
    """``fixnorm-zoo publish RUN`` under the name of a published entry (``fmnist_resnet18_wd``), no ``--replace``."""
    args = [
        "--repo-id",
        "org/x",
        "--name",
        "fmnist_resnet18_wd",
        "--mirror",
        str(mirror),
        "--registry",
        str(registry),
    ]
    return run_cli("publish", str(run), *args)


def test_careless_publish_does_not_replace_a_published_entry(run, registry, tmp_path) -> None:
    before = next(m for m in json.loads(registry.read_text())["models"] if m["name"] == "resnet18.wd_fmnist")
    r = _publish_wd_entry(run, registry=registry, mirror=tmp_path / "m")
    assert "--replace" in _one_error_line(r)
    after = next(m for m in json.loads(registry.read_text())["models"] if m["name"] == "resnet18.wd_fmnist")
    assert after == before


def test_registry_option_is_the_registry_read_and_written(run, tmp_path) -> None:
    registry = tmp_path / "other.json"
    registry.write_text('{"models": []}\n')
    r = _publish_wd_entry(run, registry=registry, mirror=tmp_path / "m")
    assert r.returncode == 0, r.stderr  # not found in X, so no "already published" from the package's file
    (entry,) = json.loads(registry.read_text())["models"]
    assert entry["architecture"] == "resnet9s" and entry["gmacs"] is None and entry["notes"] == ""
    assert not entry["recipe"].startswith("/")  # no local absolute path in a registry


def test_concurrent_registry_writers_lose_nothing(tmp_path) -> None:
    registry = tmp_path / "zoo.json"
    registry.write_text('{"models": []}\n')
    code = (
        "import sys\nfrom fixnorm_zoo.zoo.registry import ModelInfo, Registry\nreg = Registry(sys.argv[1])\n"
        "for i in range(25):\n"
        "    reg.upsert(ModelInfo(name=f'{sys.argv[2]}_{i}', architecture='resnet9s', dataset='fashion_mnist',"
        " recipe='fashion_mnist/resnet9s_fixnorm'))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(registry), f"p{k}"], env=cli_env())
        for k in range(3)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    names = {m["name"] for m in json.loads(registry.read_text())["models"]}
    assert len(names) == 75
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_weights_swapped_during_loads_are_never_returned(run, registry, tmp_path) -> None:
    """A second writer swaps the mirror's weights file between the published one and another run's while loads
    run: every load either returns the published weights or refuses with IntegrityError."""
    from safetensors.torch import load_file, save_file

    from fixnorm_zoo import load
    from fixnorm_zoo.zoo.publish import publish

    publish(run, repo_id="org/swap", name="swap", mirror=tmp_path / "m", registry=registry)
    path = tmp_path / "m" / "org" / "swap" / "model.safetensors"
    good = path.read_bytes()
    other = {k: v + 1 if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    save_file(other, str(tmp_path / "other.safetensors"))
    bad = (tmp_path / "other.safetensors").read_bytes()
    expected = load_file(str(path))
    stop = threading.Event()

    def swapper() -> None:
        i = 0
        while not stop.is_set():
            tmp = path.with_name(f"swap{i % 2}")
            tmp.write_bytes(bad if i % 2 else good)
            os.replace(tmp, path)
            i += 1

    thread = threading.Thread(target=swapper)
    thread.start()
    refused = 0
    try:
        for _ in range(40):
            try:
                model = load("swap", registry=registry, mirror=tmp_path / "m")
            except IntegrityError:
                refused += 1
                continue
            state = model.state_dict()
            assert all(torch.equal(state[k], expected[k]) for k in expected)
    finally:
        stop.set()
        thread.join()
    assert refused < 40  # both outcomes happened or at least loads succeeded; none returned the other weights


def test_kill_while_publishing_keeps_the_old_model_and_registry(run, registry, tmp_path) -> None:
    mirror = tmp_path / "m"
    publish_k = [
        "publish",
        str(run),
        "--repo-id",
        "org/k",
        "--name",
        "k",
        "--mirror",
        str(mirror),
        "--registry",
        str(registry),
    ]
    r = run_cli(*publish_k)
    assert r.returncode == 0, r.stderr
    old_files = {p.name: p.read_bytes() for p in (mirror / "org" / "k").iterdir()}
    old_registry = registry.read_text()
    for point in ("publish:staged", "publish:before_registry"):
        r = run_cli(*publish_k, "--replace", FIXNORM_ZOO_KILL_AT=point)
        assert r.returncode == -9, (point, r.stderr)
        assert registry.read_text() == old_registry  # the registry never names a half-published model
        repo = mirror / "org" / "k"
        assert sorted(p.name for p in repo.iterdir()) == sorted(old_files)  # a whole repo is always in place
    from fixnorm_zoo import load

    load("k", registry=registry, mirror=mirror)  # same run re-published: same bytes, so it still loads


def test_kill_during_training_then_resume_matches(tmp_path) -> None:
    args = [
        "train",
        "fashion_mnist/resnet9s_fixnorm",
        "--set",
        "epochs=2",
        "--set",
        "train_subset=256",
        "--set",
        "batch_size=64",
        "--set",
        "model_args.widths=[8,8,16,32]",
        "--no-progress",
    ]
    ref = run_cli(*args, "--output", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    r = run_cli(*args, "--output", str(tmp_path / "run"), FIXNORM_ZOO_KILL_AT="train:checkpoint_1")
    assert r.returncode == -9
    again = run_cli(*args, "--output", str(tmp_path / "run"))
    assert "already holds a run" in _one_error_line(again)
    r = run_cli(*args, "--output", str(tmp_path / "run"), "--resume")
    assert r.returncode == 0, r.stderr
    top1 = [json.loads((tmp_path / d / "summary.json").read_text())["top1"] for d in ("ref", "run")]
    assert top1[0] == top1[1]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="a tmpfs needs root and mount")
def test_full_disk_is_an_error_line_and_leaves_nothing_half_written(run, registry, tmp_path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        r = run_cli(
            "publish",
            str(run),
            "--repo-id",
            "org/full",
            "--name",
            "full",
            "--mirror",
            str(disk),
            "--registry",
            str(registry),
        )
        line = _one_error_line(r)
        assert "No space left" in line and "free space" in line
        assert not (disk / "org" / "full").exists()
        assert "full" not in {m["name"] for m in json.loads(registry.read_text())["models"]}
        leftovers = [p for p in disk.rglob("*") if p.is_file()]
        assert leftovers == [], leftovers  # the staging folder went with the error
    finally:
        subprocess.run(["umount", str(disk)])


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="a tmpfs needs root and mount")
def test_training_onto_a_full_disk_says_so_in_one_line(tmp_path) -> None:
    """A checkpoint written onto a full tmpfs was torch's "unexpected pos 70912 vs 70800" traceback; now
    one line naming the folder and "free space", and no half-written checkpoint folder holding the space."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        sets = [f"--set={k}={v}" for k, v in TINY_RESNET9S.items() if k != "model_args"]
        r = run_cli(
            "train",
            "fashion_mnist/resnet9s_fixnorm",
            *sets,
            "--set",
            "model_args.widths=[8,8,16,32]",
            "--output",
            str(disk / "run"),
            "--no-progress",
        )
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        errors = [
            line for line in r.stderr.splitlines() if ": error: " in line
        ]  # (timm warns of a 1-epoch cosine)
        assert len(errors) == 1, r.stderr
        line = errors[0]
        assert "No space left" in line and "free space" in line and "checkpoints" in line
        assert not [p for p in (disk / "run" / "checkpoints").iterdir()]
    finally:
        subprocess.run(["umount", str(disk)])


@pytest.mark.parametrize("where", ["eval:batch", "publish:staged"])
def test_ctrl_c_during_eval_or_publish_is_one_line_and_changes_nothing(
    run, registry, tmp_path, where
) -> None:
    """Ctrl-C during an evaluation or a publish printed a 76-line traceback; now one line, exit 130, and a
    publish interrupted after staging leaves the registry as it was and no model folder in the mirror."""
    before = registry.read_text()
    if where == "eval:batch":
        args = ["eval", str(run), "--data", "fashion_mnist"]
    else:
        args = [
            "publish",
            str(run),
            "--repo-id",
            "org/ctrlc",
            "--name",
            "ctrlc",
            "--mirror",
            str(tmp_path / "m"),
        ]
        args += ["--registry", str(registry)]
    r = run_cli(*args, FIXNORM_ZOO_SIGNAL_AT=where, FIXNORM_ZOO_SIGNAL="SIGINT")
    assert r.returncode == 130 and "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith("fixnorm-zoo")]
    assert lines == [f"fixnorm-zoo {args[0]}: interrupted"], r.stderr[-3000:]
    assert registry.read_text() == before
    assert not (tmp_path / "m" / "org" / "ctrlc").exists()


# -- user mistakes: one error line each -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["train", "fashion_mnist/no_such_recipe"],
        ["train", "fashion_mnist/resnet9s_fixnorm", "--set", "lr=.nan"],
        ["train", "fashion_mnist/resnet9s_fixnorm", "--set", "std=[0]"],
        ["train", "fashion_mnist/resnet9s_fixnorm", "--set", "train_subset=-59000"],
        ["train", "fashion_mnist/resnet9s_fixnorm", "--set", "fc_norm=-5"],
        ["train", "fashion_mnist/resnet9s_fixnorm", "--set", "min_lr=5"],
        ["train", "fashion_mnist/resnet9s_fixnorm", "--set", "batch_size=0"],
        ["info", "no_such_model"],
        ["eval", "fmnist_resnet18", "--data", "fashion_mnist", "--batch-size", "0"],
        ["eval", "mobilenetv2_scaled", "--data", "fashion_mnist"],
        ["list", "--registry", "/nonexistent/zoo.json"],
        ["push", "/nonexistent/release", "--name", "fmnist_resnet18"],
    ],
    ids=lambda a: " ".join(a[:4]),
)
def test_user_mistakes_are_one_error_line(args, tmp_path) -> None:
    _one_error_line(run_cli(*args, cwd=tmp_path))


def test_bad_files_are_one_error_line_naming_the_file(tmp_path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: [unclosed\n")
    assert str(bad_yaml) in _one_error_line(run_cli("train", str(bad_yaml)))
    corrupt = tmp_path / "zoo.json"
    corrupt.write_text('{"models": [')
    assert str(corrupt) in _one_error_line(run_cli("list", "--registry", str(corrupt)))
    schema = tmp_path / "schema.json"
    schema.write_text('{"models": [{"name": "x", "bogus": 1}]}')
    assert "unknown fields" in _one_error_line(run_cli("list", "--registry", str(schema)))
    (tmp_path / "csvdir").mkdir()
    line = _one_error_line(
        run_cli(
            "eval", "fmnist_resnet18", "--data", "fashion_mnist", "--results-csv", str(tmp_path / "csvdir")
        )
    )
    assert "is a directory" in line
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    line = _one_error_line(
        run_cli("eval", "fmnist_resnet18", "--data", "fashion_mnist", "--results-csv", str(other))
    )
    assert "columns" in line and other.read_text() == "a,b\n1,2\n"


def test_debug_flag_shows_the_traceback(tmp_path) -> None:
    r = run_cli("--debug", "info", "no_such_model")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_damaged_data_files_are_named(tmp_path) -> None:

    from fixnorm_zoo.data.fashion_mnist import load_fashion_mnist
    from fixnorm_zoo.errors import DataError

    src = Path("/usr/share/datasets/fashion-mnist")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copyfile(src / name, tmp_path / name)
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    good = images.read_bytes()
    images.write_bytes(good[: len(good) // 2])  # truncated gzip
    with pytest.raises(DataError, match="t10k-images"):
        load_fashion_mnist(split="test", data_dir=tmp_path)
    images.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="t10k-images"):
        load_fashion_mnist(split="test", data_dir=tmp_path)
    images.write_bytes(good)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[8] = 42  # one label out of 0..9
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="labels"):
        load_fashion_mnist(split="test", data_dir=tmp_path)


def test_corrupt_image_in_a_folder_is_named(tmp_path) -> None:
    from fixnorm_zoo.data.imagenet import open_image
    from fixnorm_zoo.errors import DataError

    bad = tmp_path / "broken.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a whole JPEG")
    with pytest.raises(DataError, match="broken.JPEG"):
        open_image(str(bad), "RGB")


def test_bad_num_classes_and_no_temp_folders_left(run, registry, tmp_path) -> None:
    from fixnorm_zoo import load
    from fixnorm_zoo.zoo.publish import publish

    with pytest.raises(FixNormZooError, match="num_classes"):
        load("resnet50", pretrained=False, num_classes=-1)
    publish(run, repo_id="org/t", name="t", mirror=tmp_path / "m", registry=registry)
    assert [p.name for p in (tmp_path / "m" / "org").iterdir()] == ["t"]  # the staging folder became the repo


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
        ({"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}, "cannot be reached"),
    ],
    ids=["offline", "no-endpoint"],
)
def test_publish_to_an_unreachable_hub_is_refused_before_the_re_evaluation(
    run, registry, env, expected
) -> None:
    """Publish (and push) check the Hub first: offline mode or an endpoint that does not
    answer is one error line, before the re-evaluation's seconds, and nothing is written."""
    before = registry.read_text()
    r = run_cli("publish", str(run), "--repo-id", "org/u", "--name", "u", "--registry", str(registry), **env)
    line = _one_error_line(r)
    assert expected in line and "--mirror" in line
    assert registry.read_text() == before


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
        ({"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}, "cannot be reached"),
    ],
    ids=["offline", "no-endpoint"],
)
def test_push_to_an_unreachable_hub_is_one_line_and_pins_nothing(tmp_path, env, expected) -> None:
    """Push checks the Hub before its first upload: one error line (was: httpx's ConnectError
    or OfflineModeIsEnabled traceback), and the registry is left as it was."""
    registry = tmp_path / "zoo.json"
    shutil.copyfile(ROOT / "fixnorm_zoo" / "zoo.json", registry)
    before = registry.read_bytes()
    release = ROOT / "fixnorm_zoo" / "bundled"  # the shipped pair, in the Hub's layout, sha256s as pinned
    r = run_cli("push", str(release), "--name", "resnet9s.fixnorm_fmnist", "--registry", str(registry), **env)
    line = _one_error_line(r)
    assert expected in line
    assert registry.read_bytes() == before
