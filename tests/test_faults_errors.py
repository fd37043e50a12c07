"""Every user-caused error is one `error:` line and exit 2, never a traceback; each input is
one the hostile-user pass found printing a traceback (or silently doing something else)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CLI, default_sigint, run_cli

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["train", "fashion_mnist/demo_wd", "--set", "train_subset=256", "--set", "epochs=1", "--no-progress"]
TUNE = ["tune", "fashion_mnist/demo_wd", "--trials", "1", "--no-progress"]


def _one_error_line(r: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    # the engine's oversubscription warning (when other jobs share the cores) is not part of the error
    lines = [
        line for line in r.stderr.splitlines() if line.strip() and "Warning" not in line and line[0] != " "
    ]
    assert r.returncode == 2 and len(lines) == 1 and ": error: " in lines[0], r.stderr[-3000:]
    return lines[0]


CASES = {
    "yaml-parser-error": ([*TRAIN, "--set", "lr=[0.1"], "not a YAML value"),
    "billion-laughs-set": ([*TRAIN, "--set", "model_args={a: &a [1, 2], b: *a}"], "anchors/aliases"),
    "huge-seed": ([*TRAIN, "--set", "seed=99999999999999999999"], "below 2**32"),
    "num-classes-5": ([*TRAIN, "--set", "num_classes=5"], "10 classes"),
    "huge-widths": ([*TRAIN, "--set", "model_args.widths=[16,32,64,100000]"], "parameters, over the limit"),
    # an ImageNet recipe on a real (tiny) image folder: Fashion-MNIST's fixed 28 px was refused even before,
    # the hole was a free-size dataset allocating a 3x100000x100000 batch
    "huge-input": (
        ["train", "imagenet/resnet50_fixnorm", "--data-dir", "IMAGE_FOLDER", "--no-progress"]
        + ["--set", "num_classes=4", "--set", "batch_size=4", "--set", "epochs=1", "--set", "warmup_epochs=0"]
        + ["--set", "workers=0"]
        + ["--set", "input_size=[3,100000,100000]"],
        "input_size",
    ),
    "grid-zero": ([*TUNE, "--grid", "lr=0"], "not positive finite"),
    "grid-negative": ([*TUNE, "--grid", "lr=-1"], "not positive finite"),
    "proxy-nan": ([*TUNE, "--proxy-epochs", "nan"], "finite number"),
    "proxy-inf": ([*TUNE, "--proxy-epochs", "inf"], "finite number"),
    "proxy-subset-0": ([*TUNE, "--proxy-subset", "0"], "positive number of images"),
    "eval-workers": (
        ["eval", "fmnist_resnet9s", "--data", "fashion_mnist", "--workers", "-1"],
        "--workers -1",
    ),
    "name-too-long": ([*TRAIN, "--output", "x" * 300], "use a shorter path"),
    # a Hub dataset with HF_HUB_OFFLINE=1 (the tests' setting) and no cached copy
    "hf-dataset-offline": (
        ["train", "imagenet/efficientnet_b0_fixnorm", "--data-dir", "hf:ILSVRC/imagenet-1k", "--no-progress"],
        "offline mode is on",
    ),
    "newline-name": (
        ["publish", "run", "--repo-id", "org/x", "--name", "bad\nname", "--dry-run", "d"],
        "zoo name",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_error_is_one_line(case: str, tmp_path: Path, tiny_imagefolder: Path) -> None:
    args, expected = CASES[case]
    args = [str(tiny_imagefolder) if a == "IMAGE_FOLDER" else a for a in args]
    if case == "newline-name":  # publish needs a finished run folder to get as far as the name
        run = tmp_path / "run"
        r = run_cli(*TRAIN, "--set", "batch_size=64", "--output", str(run), cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
    line = _one_error_line(run_cli(*args, cwd=tmp_path))
    assert expected in line, line


def test_inherit_chain_and_damaged_trial_log_are_one_line(tmp_path: Path) -> None:
    prev = "fashion_mnist/demo_wd"
    for i in range(40):  # 1,500 used to hit RecursionError; the limit is 32
        (tmp_path / f"r{i}.yaml").write_text(f"inherit: {prev}\n")
        prev = f"r{i}.yaml"
    assert "chains past 32" in _one_error_line(run_cli("train", str(tmp_path / "r39.yaml"), cwd=tmp_path))

    out = tmp_path / "tune"
    out.mkdir()
    meta = {"meta": {"recipe": "x"}}
    (out / "trials.jsonl").write_text(json.dumps(meta) + "\n{not json\n")
    line = _one_error_line(run_cli(*TUNE, "--output", str(out), cwd=tmp_path))
    assert "line 2 is not a JSON record" in line and str(out / "trials.jsonl") in line


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path: Path) -> None:
    """``--debug`` is accepted before and after the subcommand."""
    for args in (
        ["--debug", *TRAIN, "--set", "num_classes=5"],
        [*TRAIN, "--set", "num_classes=5", "--debug"],
    ):
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode != 0 and "Traceback" in r.stderr and "10 classes" in r.stderr, r.stderr[-2000:]


def _damaged(data: bytes, how: str) -> bytes:
    """``data`` (a safetensors file) damaged the ways the hostile-user pass tried."""
    import struct

    n = struct.unpack("<Q", data[:8])[0]
    if how == "truncated":
        return data[:1000]
    if how == "header-2**63":
        return struct.pack("<Q", 2**63) + data[8:]
    if how == "header-99MB":
        return struct.pack("<Q", 99 * 2**20) + data[8:]
    header = json.loads(data[8 : 8 + n])
    names = [k for k in header if k != "__metadata__"]
    first, second = header[names[0]], header[names[1]]
    second["data_offsets"] = [first["data_offsets"][0], first["data_offsets"][0] + 4]  # overlaps the first
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n
    return data[:8] + text.ljust(n) + data[8 + n :]


def test_damaged_run_weights_are_one_line_naming_the_file(tmp_path: Path) -> None:
    """A run folder whose weights.safetensors is damaged (truncated, a header length of 2**63 or of 99 MB,
    overlapping tensor offsets) is one error line naming the file, from eval and from publish, not safetensors' or
    torch's traceback."""
    run = tmp_path / "run"
    r = run_cli(*TRAIN, "--set", "batch_size=64", "--output", str(run), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    weights = run / "weights.safetensors"
    good = weights.read_bytes()
    for how in ("truncated", "header-2**63", "header-99MB", "overlapping-offsets"):
        weights.write_bytes(_damaged(good, how))
        line = _one_error_line(run_cli("eval", str(run), "--data", "fashion_mnist", cwd=tmp_path))
        assert "cannot be loaded" in line and str(weights) in line, how
        out = tmp_path / f"publish_{how}"
        line = _one_error_line(
            run_cli(
                "publish", str(run), "--repo-id", "org/x", "--name", "x", "--dry-run", str(out), cwd=tmp_path
            )
        )
        assert str(weights) in line and not out.exists(), how


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    """``fixnorm-zoo list | head -1``: a reader that has closed the pipe before the command writes. The command
    ends without an error line (it printed "error: Broken pipe ... free space or pick a writable location")."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run(
            [*CLI, "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            preexec_fn=default_sigint,
        )
    finally:
        os.close(write_end)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_the_command_runs_as_python_m_fixnorm_zoo_and_says_its_version() -> None:
    """``python -m fixnorm_zoo --version`` works like ``fixnorm-zoo --version`` (the package's one version)."""
    import fixnorm_zoo

    r = run_cli("--version", program=(sys.executable, "-m", "fixnorm_zoo"))
    assert r.returncode == 0 and r.stdout.strip() == f"fixnorm-zoo {fixnorm_zoo.__version__}", (
        r.stdout + r.stderr
    )


def test_control_characters_in_user_input_reach_the_terminal_escaped(tmp_path) -> None:
    """An escape sequence hidden in a path or an id is printed as ``\\x1b``, never sent raw to the terminal: in the
    result line (``train --output``) and in the one error line (a malformed ``hf-hub:`` id, which was also a
    traceback from huggingface_hub's validator)."""
    tiny = ["--set", "train_subset=256", "--set", "epochs=1", "--set", "batch_size=64", "--no-progress"]
    tiny += ["--set", "model_args.widths=[8,8,16,32]"]
    r = run_cli("train", "fashion_mnist/resnet9s_fixnorm", *tiny, "--output", "run\x1b[31m", cwd=tmp_path)
    assert r.returncode == 0 and "\x1b" not in r.stdout and "run\\x1b[31m" in r.stdout, repr(
        r.stdout + r.stderr
    )
    r = run_cli("eval", "hf-hub:org\x1b[31m/name", "--data", "fashion_mnist", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "\x1b" not in r.stderr, repr(r.stderr)
    assert "\\x1b[31m" in r.stderr and len(r.stderr.strip().splitlines()) == 1, repr(r.stderr)
