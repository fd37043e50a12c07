"""One run directory: its file names, atomic writes, checkpoints and the ``latest`` pointer, summary and log.

Layout (``RUN_DIR``):
    recipe.yaml              the resolved recipe the run started with
    log.jsonl                one row per epoch (loss, top-1/5, LR, FixNorm diagnostics, throughput)
    checkpoints/epoch_NNNN/  accelerate save_state (model, optimizer, RNG) + train_state.json (+ ema.safetensors)
    checkpoints/latest       name of the newest complete checkpoint
    weights.safetensors      final weights (weights_ema.safetensors too when EMA is on)
    summary.json             final metrics, eval setting, wall time
    curves.png               the training curves

Every other module reads and writes a run through :class:`RunDir`, so a file name lives here only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fixnorm_zoo.errors import DataError
from fixnorm_zoo.utils.atomic import atomic_write_bytes, atomic_write_text, writer_errors_as_os_errors

_CHECKPOINT_NAME = re.compile(r"epoch_\d{4}(_step_\d{9})?")
"""``epoch_NNNN`` after N epochs, ``epoch_NNNN_step_UUUUUUUUU`` mid-epoch after U updates: sorted by name, newest
last."""


class RunDir:
    """The files of one training run, named in one place (accelerate's ``save_state`` owns what is inside a
    checkpoint folder; this class owns the rest)."""

    RECIPE = "recipe.yaml"
    LOG = "log.jsonl"
    SUMMARY = "summary.json"
    WEIGHTS = "weights.safetensors"
    WEIGHTS_EMA = "weights_ema.safetensors"
    CURVES = "curves.png"
    CHECKPOINTS = "checkpoints"
    LATEST = "latest"
    TRAIN_STATE = "train_state.json"
    PREEMPTED = "PREEMPTED.json"
    LOCK = ".run.lock"  # held (flock) by the process training into the folder  # present while the run is stopped by a signal, waiting for --resume
    EMA_WEIGHTS = "ema.safetensors"
    OUTPUTS = (LOG, SUMMARY, WEIGHTS, WEIGHTS_EMA, CURVES)
    """What a run writes beside its recipe and checkpoints."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    @property
    def recipe_file(self) -> Path:
        return self.path / self.RECIPE

    @property
    def log_file(self) -> Path:
        return self.path / self.LOG

    @property
    def summary_file(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def curves_file(self) -> Path:
        return self.path / self.CURVES

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    def weights_file(self, *, ema: bool = False) -> Path:
        return self.path / (self.WEIGHTS_EMA if ema else self.WEIGHTS)

    def final_weights(self) -> Path | None:
        """The weights a finished run is evaluated with: the EMA weights when the run kept them, else the plain ones."""
        for path in (self.weights_file(ema=True), self.weights_file()):
            if path.is_file():
                return path
        return None

    def is_finished(self) -> bool:
        return self.summary_file.is_file()

    def holds_run(self) -> bool:
        """A finished run or one with a complete checkpoint: starting a new run here would mix two runs."""
        return self.is_finished() or self.latest_checkpoint() is not None

    def foreign_outputs(self) -> list[str]:
        """Files named like a run's outputs in a folder that holds no run to resume (a user's own files, or the
        remains of something else): a new run would overwrite them. A run killed before its first checkpoint
        leaves only ``recipe.yaml``, which a new start may replace."""
        return [n for n in self.OUTPUTS if (self.path / n).exists()] if not self.holds_run() else []

    def refuse_symlinks(self) -> None:
        """Raise FileExistsError naming the first symlink where the run keeps its own files (its outputs,
        ``recipe.yaml``, ``checkpoints/`` and what is in it): resuming through one would load another run's
        checkpoint, and pruning would delete that run's folders and rewrite its ``latest``. The run directory
        itself may be reached through a link."""
        links = [
            self.path / n
            for n in (self.RECIPE, *self.OUTPUTS, self.CHECKPOINTS)
            if (self.path / n).is_symlink()
        ]
        if not links and self.checkpoints.is_dir():
            links = sorted(p for p in self.checkpoints.iterdir() if p.is_symlink())
        if links:
            raise FileExistsError(
                f"{links[0]} is a symlink inside the run directory {self.path}: a run keeps only its own files "
                "there; remove the link (or pick another --output)"
            )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Own the run directory while training into it: a second process that tries is refused at once (two
        trainings into one folder would mix one's recipe with the other's weights). The kernel releases the lock
        if the process dies."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / self.LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FileExistsError(
                    f"{self.path} is being trained into by another process right now: wait for it to finish, or "
                    "pick another --output"
                ) from None
            yield
        finally:
            os.close(fd)

    # -- reading ------------------------------------------------------------------------------------------------

    def read_summary(self) -> dict[str, Any]:
        """``summary.json``; a missing or damaged one is a DataError that says the run is not finished."""
        try:
            return json.loads(self.summary_file.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"{self.summary_file} cannot be read ({e}): name a finished run directory") from e

    def read_history(self) -> list[dict[str, Any]]:
        """The per-epoch rows of ``log.jsonl`` (empty before the first epoch ends)."""
        if not self.log_file.is_file():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]

    # -- writing (main process only; each write is atomic) ----------------------------------------------------------

    def write_recipe(self, text: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
        atomic_write_text(self.recipe_file, text)

    def write_history(self, history: list[dict[str, Any]]) -> None:
        """Rewritten whole from the checkpointed history: after a kill and ``--resume`` it holds each epoch once."""
        atomic_write_text(self.log_file, "".join(json.dumps(row) + "\n" for row in history))

    @property
    def preempted_file(self) -> Path:
        return self.path / self.PREEMPTED

    def write_preempted(self, info: dict[str, Any]) -> None:
        """Mark the run as stopped by a signal (which one, the checkpoint, the exit code): a requeue script that
        cannot see the exit status (some launchers replace it) tests for this file."""
        atomic_write_text(self.preempted_file, json.dumps(info) + "\n")

    def clear_preempted(self) -> None:
        self.preempted_file.unlink(missing_ok=True)

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.summary_file, json.dumps(summary, indent=2))

    def save_weights(self, state_dict: dict[str, Any], *, ema: bool = False) -> Path:
        """Final weights as safetensors, through the package's one atomic writer (a unique temporary file, then
        renamed: a reader never sees half a file, a kill leaves the old one)."""
        from safetensors.torch import save

        path = self.weights_file(ema=ema)
        with writer_errors_as_os_errors(path):
            data = save(
                {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}, metadata={"format": "pt"}
            )
            atomic_write_bytes(path, data)
        return path

    # -- checkpoints --------------------------------------------------------------------------------------------

    def complete_checkpoints(self) -> list[Path]:
        """Complete checkpoint folders: the one ``latest`` names first, then the others newest first. The pointer
        must name an ``epoch_NNNN`` folder of this run; an empty, foreign or dangling pointer is ignored."""
        root = self.checkpoints
        if not root.is_dir():
            return []
        done = sorted(
            (
                p
                for p in root.iterdir()
                if _CHECKPOINT_NAME.fullmatch(p.name) and (p / self.TRAIN_STATE).is_file()
            ),
            reverse=True,
        )
        pointer = root / self.LATEST
        named = pointer.read_text().strip() if pointer.is_file() else ""
        if _CHECKPOINT_NAME.fullmatch(named) and (root / named) in done:
            done.remove(root / named)
            done.insert(0, root / named)
        return done

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        candidates = self.complete_checkpoints()
        return candidates[0] if candidates else None

    def save_checkpoint(
        self,
        accelerator,
        *,
        epoch: int,
        train_state: dict[str, Any],
        ema_state: dict[str, Any] | None,
        keep: Callable[[list[str]], set[str]],
        step: int | None = None,
    ) -> Path:
        """accelerate's ``save_state`` into a temporary folder, then a rename: a crash mid-write never leaves a
        broken ``latest``. The train state is JSON and the EMA weights safetensors (nothing of ours is pickled).
        ``epoch``: epochs completed; ``step``: the update count of a mid-epoch checkpoint (None at an epoch's end).
        ``keep(names)`` says which older end-of-epoch folders stay; the rest are removed, and so is every older
        mid-epoch one (the newest checkpoint supersedes it)."""
        root = self.checkpoints
        name = f"epoch_{epoch:04d}" if step is None else f"epoch_{epoch:04d}_step_{step:09d}"
        tmp = root / (name + ".tmp")
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        with writer_errors_as_os_errors(
            tmp, partial=tmp
        ):  # a full disk, said as such (torch: "unexpected pos")
            accelerator.save_state(str(tmp))
            if accelerator.is_main_process and ema_state is not None:
                from safetensors.torch import save

                ema = save({k: v.detach().contiguous().cpu() for k, v in ema_state.items()})
                atomic_write_bytes(tmp / self.EMA_WEIGHTS, ema)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            atomic_write_text(
                tmp / self.TRAIN_STATE, json.dumps(train_state)
            )  # last: marks the folder complete
            shutil.rmtree(root / name, ignore_errors=True)
            os.replace(tmp, root / name)
            atomic_write_text(root / self.LATEST, name)
            done = sorted(p.name for p in root.iterdir() if _CHECKPOINT_NAME.fullmatch(p.name))
            kept = keep([d for d in done if "_step_" not in d]) | {name}
            for old in done:
                if old not in kept:
                    shutil.rmtree(root / old, ignore_errors=True)
        accelerator.wait_for_everyone()
        return root / name

    def load_checkpoint(self, accelerator, *, ema_module=None) -> tuple[Path, dict[str, Any]] | None:
        """Load the newest checkpoint that loads; a damaged one is skipped for the older complete one kept beside
        it. Returns ``(folder, train_state)``, or None when there is none.

        Raises:
            DataError: there are checkpoints and none of them loads.
        """
        failures = []
        for ckpt in self.complete_checkpoints():
            try:
                train_state = json.loads((ckpt / self.TRAIN_STATE).read_text())
                _check_train_state(train_state, ckpt)
            except (OSError, ValueError) as e:
                failures.append(f"{ckpt.name}: {type(e).__name__}: {e}")
                continue
            saved = train_state.get("num_processes") if isinstance(train_state, dict) else None
            if saved is not None and saved != accelerator.num_processes:
                from fixnorm_zoo.errors import RecipeError

                raise RecipeError(
                    f"--resume: {ckpt} was written by a run of {saved} processes, and this one has "
                    f"{accelerator.num_processes}: each process's data order, augmentation and RNG state would "
                    f"differ, so it would not continue that run. Launch {saved} processes (the global batch is "
                    "the recipe's either way), or start a new run"
                )
            try:
                accelerator.load_state(str(ckpt))
                if ema_module is not None:
                    from safetensors.torch import load_file

                    ema_module.load_state_dict(load_file(str(ckpt / self.EMA_WEIGHTS)))
            except Exception as e:  # noqa: BLE001 - any damage: fall back to the older checkpoint
                failures.append(f"{ckpt.name}: {type(e).__name__}: {e}")
                continue
            if failures:
                from accelerate.logging import get_logger

                get_logger(__name__).warning(f"skipped damaged checkpoint(s) {failures}")
            return ckpt, train_state
        if failures:
            raise DataError(f"--resume: no checkpoint under {self.checkpoints} could be loaded: {failures}")
        return None


def _check_train_state(state: Any, ckpt: Path) -> None:
    """``train_state.json`` must describe the checkpoint it sits in: a dict with the loop's counters as
    non-negative integers, as many history rows as epochs done, and the epoch (and update) count that the folder's
    name records. A hand-edited ``epoch: 99`` or ``{}`` would otherwise end, repeat or restart the run silently.

    Raises:
        ValueError: what does not fit, naming the file.
    """
    where = ckpt / RunDir.TRAIN_STATE
    if not isinstance(state, dict):
        raise ValueError(f"{where}: expected a JSON object")
    for key in ("epoch", "num_updates"):
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}: {key}={value!r} must be a non-negative integer")
    step = state.get("step_in_epoch", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"{where}: step_in_epoch={step!r} must be a non-negative integer")
    history = state.get("history")
    if not isinstance(history, list) or len(history) != state["epoch"]:
        raise ValueError(f"{where}: history must hold one row per finished epoch ({state['epoch']})")
    m = _CHECKPOINT_NAME.fullmatch(ckpt.name)
    if m is None or int(ckpt.name[6:10]) != state["epoch"]:
        raise ValueError(f"{where}: epoch={state['epoch']} is not the epoch its folder {ckpt.name} records")
    if m.group(1) and int(m.group(1)[6:]) != state["num_updates"]:
        raise ValueError(
            f"{where}: num_updates={state['num_updates']} is not the update count in {ckpt.name}"
        )
    if bool(m.group(1)) != (step > 0):  # a mid-epoch folder holds a batch count; an epoch's end holds none
        raise ValueError(
            f"{where}: step_in_epoch={step} does not fit {ckpt.name} (a step checkpoint is mid-epoch, >= 1; an "
            "epoch checkpoint is at the epoch's end, 0)"
        )
    sums = state.get("epoch_loss_sums", [])
    if not isinstance(sums, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in sums
    ):
        raise ValueError(
            f"{where}: epoch_loss_sums={sums!r} must be a list of finite numbers (one per process)"
        )
    best, best_epoch = state.get("best_top1", -1.0), state.get("best_epoch", -1)
    if isinstance(best, bool) or not isinstance(best, int | float) or not -1.0 <= best <= 100.0:
        raise ValueError(f"{where}: best_top1={best!r} must be a top-1 in percent (or -1 before any)")
    if (
        isinstance(best_epoch, bool)
        or not isinstance(best_epoch, int)
        or not -1 <= best_epoch <= state["epoch"]
    ):
        raise ValueError(f"{where}: best_epoch={best_epoch!r} must be an epoch done (or -1 before any)")
    for key in ("epoch_images", "train_time_s", "epoch_train_s"):
        value = state.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise ValueError(f"{where}: {key}={value!r} must be a non-negative number")
