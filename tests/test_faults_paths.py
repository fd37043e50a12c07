"""The path holes, one test each: paths checked once and then written blindly. A mirror folder swapped for
a symlink while publish re-evaluates, a results CSV that is a device or a symlink, a symlinked registry, rewrites
that reset a shared file's mode, unreadable mirror folders, and publish leftovers that were never recovered."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from fixnorm_zoo.errors import FixNormZooError, PublishRefused
from fixnorm_zoo.utils.atomic import atomic_write_text, check_writable_target

ROOT = Path(__file__).resolve().parent.parent


def test_mirror_folder_swapped_for_a_symlink_during_the_reevaluation(
    run, registry, tmp_path, monkeypatch
) -> None:
    """The high one: `M/me` replaced by a symlink to another folder while publish re-evaluates used to empty that
    folder and fill it with the model. Now the swap is refused and the other folder is untouched."""
    from fixnorm_zoo.zoo import publish as publish_mod

    mirror = tmp_path / "mirror"
    (mirror / "me").mkdir(parents=True)
    victim = tmp_path / "victim"
    (victim / "tiny").mkdir(parents=True)
    (victim / "tiny" / "precious.txt").write_text("keep")
    real = publish_mod._reverify

    def reverify_then_swap(*args, **kwargs):
        measured = real(*args, **kwargs)
        shutil.rmtree(mirror / "me")
        (mirror / "me").symlink_to(victim)  # the attacker's swap, after the containment check
        return measured

    monkeypatch.setattr(publish_mod, "_reverify", reverify_then_swap)
    with pytest.raises(PublishRefused, match="symbolic link"):
        publish_mod.publish(run, repo_id="me/tiny", name="tiny", mirror=mirror, registry=registry)
    assert sorted(p.name for p in (victim / "tiny").iterdir()) == ["precious.txt"]
    assert (victim / "tiny" / "precious.txt").read_text() == "keep"
    assert "tiny" not in {m["name"] for m in json.loads(registry.read_text())["models"]}


def test_results_csv_that_is_a_device_or_a_symlink_is_refused(run, tmp_path) -> None:
    from fixnorm_zoo.zoo.evaluate import evaluate

    fifo = tmp_path / "fifo.csv"
    os.mkfifo(
        fifo
    )  # a special file as a user could name one (a device needs root: the same check refuses it)
    link = tmp_path / "link.csv"
    target = tmp_path / "target.csv"
    link.symlink_to(target)
    for path, what in (
        (fifo, "not a regular file"),
        (link, "symbolic link"),
        (Path("/dev/null"), "not a regular"),
    ):
        with pytest.raises(FixNormZooError, match=what):
            evaluate(str(run), data="fashion_mnist", results_csv=path)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink() and not target.exists()
    assert not (tmp_path / "fifo.csv.lock").exists() and not Path("/dev/null.lock").exists()


def test_symlinked_registry_is_refused_not_detached(run, registry, tmp_path) -> None:
    from fixnorm_zoo.zoo.publish import publish

    link = tmp_path / "zoo_link.json"
    link.symlink_to(registry)
    before = registry.read_text()
    with pytest.raises(FileExistsError, match="symbolic link"):
        publish(run, repo_id="org/t", name="t", mirror=tmp_path / "m", registry=link)
    assert link.is_symlink() and registry.read_text() == before


def test_rewrites_keep_mode_and_new_folders_follow_the_umask(run, registry, tmp_path) -> None:
    from fixnorm_zoo.zoo.publish import publish

    registry.chmod(0o664)
    old_mask = os.umask(0o002)
    try:
        publish(run, repo_id="org/t", name="t", mirror=tmp_path / "m", registry=registry)
        new = tmp_path / "new.txt"
        atomic_write_text(new, "x")
        assert stat.S_IMODE(new.stat().st_mode) == 0o664
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(registry.stat().st_mode) == 0o664  # not reset to 0644 by the atomic rewrite
    repo = tmp_path / "m" / "org" / "t"
    assert stat.S_IMODE(repo.stat().st_mode) == 0o775  # not mkdtemp's 0700: a shared mirror stays readable
    private = tmp_path / "private.txt"
    private.write_text("a")
    private.chmod(0o600)
    atomic_write_text(private, "b")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_leftovers_of_a_killed_publish_are_recovered(run, registry, tmp_path) -> None:
    """A publish killed between its two renames leaves `.NAME.old-PID` and no `NAME`: the next publish of that repo
    restores the old folder first, then replaces it; stale staging folders of dead processes are removed."""
    from fixnorm_zoo.zoo.publish import publish

    mirror = tmp_path / "m"
    publish(run, repo_id="org/t", name="t", mirror=mirror, registry=registry)
    org = mirror / "org"
    dead = 2**22 + 12345  # above pid_max's default: no such process
    os.replace(org / "t", org / f".t.old-{dead}")
    (org / f".t.staging-{dead}").mkdir()
    (org / f".t.staging-{dead}" / "junk").write_text("x")
    publish(run, repo_id="org/t", name="t", mirror=mirror, registry=registry, replace=True)
    assert sorted(p.name for p in org.iterdir()) == ["t"]
    assert (org / "t" / "model.safetensors").is_file()


def test_check_writable_target_accepts_regular_files_and_new_paths(tmp_path) -> None:
    assert check_writable_target(tmp_path / "new") is None
    (tmp_path / "file").write_text("x")
    assert check_writable_target(tmp_path / "file").st_size == 1
    with pytest.raises(FileExistsError, match="not a regular file"):
        check_writable_target(tmp_path)


def test_card_shows_resume_changes_and_no_gmacs_of_another_model(run, registry, tmp_path) -> None:
    """The card's "recipe as run" names a `--resume --set` change (here written into the log
    row where the engine records it), and publishing over an entry of another architecture (`--replace`) does not
    carry that entry's GMACs into the card."""
    from fixnorm_zoo.zoo.publish import publish

    changed = tmp_path / "run"
    shutil.copytree(run, changed)
    log = changed / "log.jsonl"
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    rows[-1]["resume_changes"] = {"lr": [0.1, 0.05]}
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "dry"
    publish(changed, repo_id="org/t", name="resnet18.fixnorm_fmnist", dry_run=out, registry=registry)
    card = (out / "README.md").read_text()
    assert f"from epoch {rows[-1]['epoch']} on: `lr` 0.1 -> 0.05" in card
    assert "GMACs | n/a" in card and "0.047" not in card  # resnet18's GMACs are not this resnet9s's
    # a 256-image run's card does not tell users that the shipped recipe reproduces it
    command = next(line for line in card.splitlines() if "train it again with" in line)
    assert (
        "fixnorm-zoo train fashion_mnist/resnet9s_fixnorm --set" in command
        and "--set train_subset=256" in command
    )


def test_eval_results_csv_on_a_full_disk_still_gives_the_measurement(run, tmp_path, monkeypatch) -> None:
    """`eval --results-csv` whose write fails (ENOSPC) reports the measured numbers in its
    error instead of losing them."""
    import errno

    from fixnorm_zoo.errors import ResultsNotSaved
    from fixnorm_zoo.zoo import evaluate as evaluate_mod

    def full(path, row):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(evaluate_mod, "append_results_row", full)
    with pytest.raises(ResultsNotSaved, match=r"measured top-1 \d+\.\d+ top-5 .*No space left"):
        evaluate_mod.evaluate(str(run), data="fashion_mnist", results_csv=tmp_path / "r.csv")


def test_a_symlink_loop_as_the_mirror_or_the_user_registry_is_one_line(run, tmp_path) -> None:
    """A symlink loop named as the mirror (``--mirror`` or FIXNORM_ZOO_HUB) was a RuntimeError traceback; one as the
    user registry was silently taken for no registry. Both are now one error line naming the path."""
    from helpers import run_cli

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    r = run_cli("publish", str(run), "--repo-id", "org/x", "--name", "x", "--mirror", str(loop), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "symlink loop" in r.stderr, r.stderr
    r = run_cli("list", FIXNORM_ZOO_USER_REGISTRY=str(loop), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and str(loop) in r.stderr, r.stderr
