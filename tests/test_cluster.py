"""Beyond one machine, simulated here: 2 "nodes" (two torchrun launchers, one process each, one c10d rendezvous on
127.0.0.1) train exactly as 2 processes on one node do, and the SLURM batch script requeues a preempted job and
resumes it (srun and scontrol replaced by stand-ins that run on this machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import run_torchrun

ROOT = Path(__file__).resolve().parent.parent
SETS = ["train_subset=1024", "epochs=2", "batch_size=64", "model_args.channels=[8,16,32,64]", "fc_norm=3"]
TRAIN = ["-m", "fixnorm_zoo.cli", "train", "fashion_mnist/resnet18_fixnorm", "--no-progress"]
TRAIN += [a for s in SETS for a in ("--set", s)]


def _free_port() -> int:
    from accelerate.utils.other import get_free_port

    return int(get_free_port())


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "weights.safetensors"))


@pytest.mark.slow  # ~1 min: CI runs it (make test-slow)
@pytest.mark.multiproc
def test_two_nodes_train_as_two_processes_on_one_node(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--node_rank",
                str(rank),
                "--nproc_per_node",
                "1",
                "--rdzv_backend",
                "c10d",
                "--rdzv_endpoint",
                f"127.0.0.1:{port}",
                "--rdzv_id",
                "sim",
                *TRAIN,
                "--output",
                str(tmp_path / "nodes"),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outs = [n.communicate(timeout=300) for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    one_node = run_torchrun([*TRAIN, "--output", str(tmp_path / "one_node")])
    assert one_node.returncode == 0, one_node.stderr[-2000:]

    a, b = _weights(tmp_path / "nodes"), _weights(tmp_path / "one_node")
    assert all(torch.equal(a[k], b[k]) for k in a)  # same ranks, same shards, same gloo reductions
    summary = json.loads((tmp_path / "nodes" / "summary.json").read_text())
    same = json.loads((tmp_path / "one_node" / "summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["top1"] == same["top1"]
    assert summary["ranks_agree"] is True  # every rank ends with the same weights, FixNorm's norms included
    printed = "".join(o for pair in outs for o in pair)
    assert printed.count("epoch 2/2:") == 1 and printed.count("top-1") == 1  # the output printed once


@pytest.mark.slow  # ~1 min: CI runs it (make test-slow)
@pytest.mark.multiproc
def test_sbatch_script_requeues_a_preempted_job_and_the_requeued_job_resumes(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.log"
    (bin_dir / "scontrol").write_text(
        '#!/bin/bash\nif [ "$1" = show ]; then echo localhost; else echo "$@" >> "$SCONTROL_LOG"; fi\n'
    )
    (bin_dir / "srun").write_text(  # one task: this node, drop srun's own options
        '#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nexport SLURM_NODEID=0\nexec "$@"\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    out = tmp_path / "run"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SCONTROL_LOG": str(calls),
        "SLURM_JOB_ID": "42",
        "SLURM_JOB_NAME": "sim",
        "SLURM_NNODES": "1",
        "SLURM_JOB_NODELIST": "localhost",
        "GPUS": "2",
        "MASTER_PORT": str(_free_port()),
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
        "RECIPE": "fashion_mnist/resnet18_fixnorm",
        "OUTPUT": str(out),
        "EXTRA": " ".join(a for s in SETS for a in ("--set", s)),
    }
    script = str(ROOT / "tools" / "cluster" / "train.sbatch")
    first = subprocess.run(
        ["bash", script],
        env={**env, "FIXNORM_ZOO_SIGNAL_AT": "train:update_5"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert calls.read_text().split() == ["requeue", "42"] and "requeueing job 42" in first.stdout
    assert (out / "PREEMPTED.json").is_file() and not (out / "summary.json").exists()

    env["MASTER_PORT"] = str(_free_port())
    second = subprocess.run(["bash", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "5 updates, batch 5 of epoch 1" in second.stdout + second.stderr
    assert calls.read_text().split() == ["requeue", "42"]  # not requeued again
    assert (out / "summary.json").is_file() and not (out / "PREEMPTED.json").exists()
