"""Preemption and mid-epoch resume: a signal stops training at a step every process agrees on, with a checkpoint,
one line and a documented exit code; --resume then continues mid-epoch exactly as the uninterrupted run would
(same remaining batches, augmentation, RNG, LR step, FixNorm targets), bit for bit on CPU. Also after a SIGKILL
between two step-interval checkpoints, and with 2 gloo processes under torchrun."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import reset_accelerate, run_cli, run_torchrun, tiny_recipe

from fixnorm_zoo.engine import train as train_mod
from fixnorm_zoo.engine.rundir import RunDir
from fixnorm_zoo.errors import Preempted, RecipeError
from fixnorm_zoo.utils.preemption import EXIT_INTERRUPTED, EXIT_PREEMPTED

ROOT = Path(__file__).resolve().parent.parent
# 768 images at batch 64: 12 updates an epoch, 2 epochs; augmentation and random erasing on (RNG must resume)
SETS = {"train_subset": 768, "epochs": 2, "batch_size": 64, "reprob": 0.25, "log_every": 1}
CLI_SETS = [
    "--set",
    "train_subset=768",
    "--set",
    "epochs=2",
    "--set",
    "batch_size=64",
    "--set",
    "reprob=0.25",
    "--set",
    "model_args.channels=[8,16,32,64]",
]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "weights.safetensors"))


def _same_run(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    la = [json.loads(x) for x in (a / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (b / "log.jsonl").read_text().splitlines()]
    keys = ("epoch", "updates", "train_loss", "lr", "top1", "top5")
    assert [[r[k] for k in keys] for r in la] == [[r[k] for k in keys] for r in lb]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    train_mod.train(tiny_recipe(**SETS), output_dir=out, progress=False)
    reset_accelerate()
    return out


@pytest.mark.parametrize(
    "sig,code", [("SIGTERM", EXIT_PREEMPTED), ("SIGUSR1", EXIT_PREEMPTED), ("SIGINT", EXIT_INTERRUPTED)]
)
def test_signal_mid_epoch_saves_and_resume_is_exact(uninterrupted, tmp_path, monkeypatch, sig, code) -> None:
    at = 17  # update 17 of 24: epoch 2, batch 5 of 12
    monkeypatch.setenv("FIXNORM_ZOO_SIGNAL_AT", f"train:update_{at}")
    monkeypatch.setenv("FIXNORM_ZOO_SIGNAL", sig)
    run = tmp_path / "run"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)}
    with pytest.raises(Preempted) as err:
        train_mod.train(tiny_recipe(**SETS), output_dir=run, progress=False)
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # restored once training stopped
    assert err.value.exit_code == code and err.value.signal_name == sig
    assert "--resume" in str(err.value) and str(run) in str(err.value)
    ckpt = Path(err.value.checkpoint)
    assert ckpt.name == f"epoch_0001_step_{at:09d}" and RunDir(run).latest_checkpoint() == ckpt
    marker = json.loads((run / RunDir.PREEMPTED).read_text())
    assert marker == {"signal": sig, "checkpoint": str(ckpt), "exit_code": code}
    state = json.loads((ckpt / RunDir.TRAIN_STATE).read_text())
    assert (state["epoch"], state["step_in_epoch"], state["num_updates"]) == (1, 5, at)

    monkeypatch.delenv("FIXNORM_ZOO_SIGNAL_AT")
    reset_accelerate()
    train_mod.train(tiny_recipe(**SETS), output_dir=run, resume=True, progress=False)
    _same_run(run, uninterrupted)
    assert not (run / RunDir.PREEMPTED).exists()


def test_step_interval_checkpoints_replace_each_other(tmp_path) -> None:
    run = tmp_path / "run"
    train_mod.train(
        tiny_recipe(**SETS, checkpoint_every_steps=5, keep_last=1), output_dir=run, progress=False
    )
    names = sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir())
    # updates 5, 10 (epoch 1), 15, 20 (epoch 2): each mid-epoch one replaced by the next checkpoint
    assert names == ["epoch_0002"] or names == ["epoch_0001", "epoch_0002"]
    assert not any("_step_" in n for n in names)


@pytest.mark.slow  # 27 s; the default suite keeps a kill-and-resume (test_faults.py, test_train.py) and CI runs it
def test_sigkill_between_step_checkpoints_resumes_from_the_last_one(tmp_path) -> None:
    """A kill -9 (no handler runs) after update 8, between the step checkpoints at 5 and 10: --resume continues
    from update 5 and ends where an uninterrupted run (same command, same thread count) ends."""
    cmd = [sys.executable, "-m", "fixnorm_zoo.cli", "train", "fashion_mnist/resnet18_fixnorm", *CLI_SETS]
    cmd += ["--set", "checkpoint_every_steps=5", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def cli(out: Path, *extra: str, **more: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*cmd, "--output", str(out), *extra],
            env={**env, **more},
            capture_output=True,
            text=True,
            timeout=300,
        )

    full = cli(tmp_path / "full")
    assert full.returncode == 0, full.stderr[-2000:]
    run = tmp_path / "run"
    killed = cli(run, FIXNORM_ZOO_KILL_AT="train:update_8")
    assert killed.returncode == -signal.SIGKILL
    assert RunDir(run).latest_checkpoint().name == "epoch_0000_step_000000005"
    resumed = cli(run, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "5 updates, batch 5 of epoch 1" in resumed.stdout + resumed.stderr
    _same_run(run, tmp_path / "full")


def test_cli_prints_one_line_and_exits_with_the_requeue_code(tmp_path) -> None:
    run = tmp_path / "run"
    cmd = ["train", "fashion_mnist/resnet18_fixnorm", *CLI_SETS, "--output", str(run), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FIXNORM_ZOO_SIGNAL_AT": "train:update_3"}
    for sig, code in (("SIGTERM", EXIT_PREEMPTED), ("SIGINT", EXIT_INTERRUPTED)):
        r = run_cli(
            *cmd, *(["--resume"] if run.exists() else []), env={**env, "FIXNORM_ZOO_SIGNAL": sig}, cwd=ROOT
        )
        assert r.returncode == code, r.stderr[-2000:]
        lines = [line for line in r.stderr.splitlines() if line.startswith("fixnorm-zoo")]
        assert len(lines) == 1 and f"stopped by {sig}" in lines[0] and "--resume" in lines[0]
        assert "Traceback" not in r.stderr
        env["FIXNORM_ZOO_SIGNAL_AT"] = "train:update_6"  # the resumed run passes update 3 without a signal


def test_ctrl_c_while_an_epoch_checkpoint_is_written_is_one_line_and_resumes(tmp_path) -> None:
    """Ctrl-C as the end-of-epoch checkpoint is written (the named point right after it) printed a
    traceback; now the run stops at the next step with one line and exit 130, and `--resume` finishes it."""
    run = tmp_path / "run"
    cmd = ["train", "fashion_mnist/resnet18_fixnorm", *CLI_SETS, "--output", str(run), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    signalled = {**env, "FIXNORM_ZOO_SIGNAL_AT": "train:checkpoint_1", "FIXNORM_ZOO_SIGNAL": "SIGINT"}
    r = run_cli(*cmd, env=signalled, cwd=ROOT)
    assert r.returncode == EXIT_INTERRUPTED and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith("fixnorm-zoo")]
    assert len(lines) == 1 and "stopped by SIGINT" in lines[0] and "--resume" in lines[0], r.stderr[-2000:]
    assert not (run / "summary.json").exists()
    r = run_cli(*cmd, "--resume", env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (run / "summary.json").is_file()
    assert [json.loads(x)["epoch"] for x in (run / "log.jsonl").read_text().splitlines()] == [1, 2]


def test_resume_under_another_world_size_is_refused(tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    monkeypatch.setenv("FIXNORM_ZOO_SIGNAL_AT", "train:update_4")
    with pytest.raises(Preempted):
        train_mod.train(tiny_recipe(**SETS), output_dir=run, progress=False)
    ckpt = RunDir(run).latest_checkpoint()
    state = json.loads((ckpt / RunDir.TRAIN_STATE).read_text())
    state["num_processes"] = 2  # as a 2-process run writes it
    (ckpt / RunDir.TRAIN_STATE).write_text(json.dumps(state))
    monkeypatch.delenv("FIXNORM_ZOO_SIGNAL_AT")
    reset_accelerate()
    with pytest.raises(RecipeError, match="2 processes, and this one has 1"):
        train_mod.train(tiny_recipe(**SETS), output_dir=run, resume=True, progress=False)


@pytest.mark.slow  # 35 s; the default suite keeps the 1-process signal tests, CI runs it (make test-slow)
@pytest.mark.multiproc
def test_two_processes_stop_at_the_same_step_and_resume_exactly(tmp_path) -> None:
    """2 gloo processes under torchrun; SIGTERM reaches rank 1 only, at a random update mid-epoch: both ranks stop
    at that update (the flag is all-reduced, so rank 0 does not block in the next step's collective), one line is
    printed, each exits 75; the torchrun --resume run ends with the uninterrupted 2-process run's weights."""
    at = random.Random(os.environ.get("PYTEST_SEED", "0")).choice([2, 3, 4, 5, 7, 8, 9, 10, 11])
    base = [
        "-m",
        "fixnorm_zoo.cli",
        "train",
        "fashion_mnist/resnet18_fixnorm",
        *CLI_SETS,
        "--no-progress",
    ]
    full = run_torchrun([*base, "--output", str(tmp_path / "full")])
    assert full.returncode == 0, full.stderr[-3000:]
    run = tmp_path / "run"
    stopped = run_torchrun(
        [*base, "--output", str(run)],
        FIXNORM_ZOO_SIGNAL_AT=f"train:update_{at}",
        FIXNORM_ZOO_SIGNAL_RANK="1",
    )
    assert stopped.returncode != 0
    lines = [line for line in stopped.stderr.splitlines() if line.startswith("fixnorm-zoo train: stopped by")]
    assert len(lines) == 1 and "SIGTERM" in lines[0], stopped.stderr[-3000:]
    marker = json.loads((run / RunDir.PREEMPTED).read_text())
    assert marker["exit_code"] == EXIT_PREEMPTED
    state = json.loads((Path(marker["checkpoint"]) / RunDir.TRAIN_STATE).read_text())
    assert state["num_updates"] == at and state["num_processes"] == 2
    resumed = run_torchrun([*base, "--output", str(run), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _same_run(run, tmp_path / "full")
    assert not (run / RunDir.PREEMPTED).exists()


@pytest.mark.slow  # 31 s; the default suite keeps the CLI signal tests, CI runs it (make test-slow)
def test_preemption_under_accelerate_launch_saves_marks_and_resumes_exactly(tmp_path) -> None:
    """`accelerate launch` turns any non-zero status of its child into its own status 1 (with a traceback unless
    `--quiet`), so a requeue script cannot see 75 there: the run still stops at the signal with a checkpoint, its
    one line and `PREEMPTED.json` (what tools/cluster/train.sbatch tests), and `--resume` under the same launcher
    ends with the uninterrupted run's weights and log."""
    base = ["-m", "fixnorm_zoo.cli", "train", "fashion_mnist/resnet18_fixnorm", *CLI_SETS, "--no-progress"]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--cpu", "--num_processes", "1"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(cmd: list[str], **more: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env={**env, **more}, capture_output=True, text=True, timeout=300, cwd=ROOT)

    full = run([sys.executable, *base, "--output", str(tmp_path / "full")])
    assert full.returncode == 0, full.stderr[-2000:]
    out = tmp_path / "run"
    stopped = run(
        [*launch, *base, "--output", str(out)],
        FIXNORM_ZOO_SIGNAL_AT="train:update_3",
        FIXNORM_ZOO_SIGNAL="SIGTERM",
    )
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr, stopped.stderr[-2000:]
    lines = [line for line in stopped.stderr.splitlines() if line.startswith("fixnorm-zoo")]
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0]
    marker = json.loads((out / "PREEMPTED.json").read_text())
    assert marker["checkpoint"].endswith("epoch_0000_step_000000003"), marker
    resumed = run([*launch, *base, "--output", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not (out / "PREEMPTED.json").exists()
    _same_run(out, tmp_path / "full")
