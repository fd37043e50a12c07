"""The training engine: one recipe, one run directory (``rundir.RunDir``), from one CPU process to many GPUs and
nodes (Accelerate).

``train`` reads top to bottom as torchvision's references and nanoGPT do: set up (accelerator, data, model,
optimizer, resume), then per epoch ``train_one_epoch``, ``evaluate_epoch`` and ``end_epoch`` (log, checkpoint),
then ``finish`` (weights, summary, curves).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate.logging import get_logger
from torch import nn

from fixnorm_zoo.data.loaders import build_loaders
from fixnorm_zoo.data.transforms import eval_config
from fixnorm_zoo.engine.metrics import accuracy_counts
from fixnorm_zoo.engine.rundir import RunDir
from fixnorm_zoo.errors import DataError, Preempted, RecipeError, TrainingDiverged
from fixnorm_zoo.models.build import configure_batchnorm, model_from_recipe, whiten_stem
from fixnorm_zoo.optim.factory import build_optimizer, build_scheduler, example_input
from fixnorm_zoo.optim.fixnorm import FixNorm, norm_diagnostics, param_roles
from fixnorm_zoo.recipe import Recipe, recipe_changes
from fixnorm_zoo.utils.atomic import fault_point
from fixnorm_zoo.utils.preemption import EXIT_INTERRUPTED, EXIT_PREEMPTED, StopSignals, agree, signal_numbers
from fixnorm_zoo.utils.provenance import provenance

logger = get_logger(__name__)  # accelerate's: rank 0 only by default; `fixnorm-zoo` shows INFO on stdout

WHITENING_IMAGES = 5000
"""Training images whose patches set a whitened stem (``whiten_stem``): airbench's CIFAR-10 count."""

RESUME_MAY_CHANGE = (
    "data_dir",
    "workers",
    "log_every",
    "keep_last",
    "log_with",
    "checkpoint_every_steps",
    "checkpoint_every_minutes",
    "preempt_signals",
)
"""Recipe fields a resumed run may change without naming them: where the data lives and how the run reports. Any
other change must be named (``resume_changes``; the CLI names the ``--set`` keys) and is logged per epoch."""


@dataclass
class TrainState:
    """What the loop needs to resume besides model/optimizer/RNG. Saved as JSON beside accelerate's checkpoint
    files (``train_state.json``), so resuming never unpickles it."""

    epoch: int = 0  # epochs completed
    num_updates: int = 0
    best_top1: float = -1.0
    best_epoch: int = -1
    train_time_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    resume_changes: list[dict[str, Any]] = field(
        default_factory=list
    )  # named recipe changes, with their epoch
    num_processes: int | None = None  # of the run that wrote the checkpoint (a resume must match it)
    # an epoch in progress at a mid-epoch checkpoint: its batches done and partial sums (all 0 at an epoch's end)
    step_in_epoch: int = 0
    epoch_loss_sums: list[float] = field(
        default_factory=list
    )  # one per process: each rank's partial loss sum
    epoch_images: int = 0
    epoch_train_s: float = 0.0

    def state_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


@dataclass
class Parts:
    """What one run trains with, built once by :func:`setup` (model and optimizer already prepared)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    ema: Any
    train_loader: Any
    test_loader: Any
    disjoint: bool
    criterion: nn.Module
    mixup: Any
    roles: dict[str, str] | None

    @property
    def inner_optimizer(self) -> torch.optim.Optimizer:
        return getattr(self.optimizer, "optimizer", self.optimizer)


def make_accelerator(recipe: Recipe, *, run_dir: str | Path):
    """The Accelerator a recipe asks for. On a CPU-only machine ``Accelerator()`` under torchrun would train each
    rank independently: ``cpu=True`` makes the processes all-reduce over gloo. ``amp`` / ``grad_accum_steps`` left
    unset (None) follow ``accelerate launch`` and ``accelerate config``; a value the recipe sets wins (a plugin,
    since a plain ``gradient_accumulation_steps=`` yields to the launcher's)."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, GradientAccumulationPlugin

    plugin = (
        None
        if recipe.grad_accum_steps is None
        else GradientAccumulationPlugin(num_steps=recipe.grad_accum_steps)
    )
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=recipe.amp,
        gradient_accumulation_plugin=plugin,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),  # same shuffle after --resume
        log_with=None if recipe.log_with == "none" else recipe.log_with,
        project_dir=str(run_dir),
    )


def check_accelerator(recipe: Recipe, accelerator) -> int:
    """The per-process batch size; refuses a recipe whose settings the accelerator does not have.

    Raises:
        RecipeError: ``amp`` or ``grad_accum_steps`` set in the recipe differ from the accelerator's, or the batch
            does not split over the processes and accumulation steps.
    """
    if recipe.amp is not None and recipe.amp != accelerator.mixed_precision:
        raise RecipeError(
            f"the recipe sets amp={recipe.amp!r} but the accelerator given uses {accelerator.mixed_precision!r}: "
            "build it with make_accelerator(recipe, ...) or unset amp"
        )
    accum = accelerator.gradient_accumulation_steps
    if recipe.grad_accum_steps is not None and recipe.grad_accum_steps != accum:
        raise RecipeError(
            f"the recipe sets grad_accum_steps={recipe.grad_accum_steps} but the accelerator given accumulates "
            f"{accum}: build it with make_accelerator(recipe, ...) or unset grad_accum_steps"
        )
    per_process = recipe.batch_size // accum // accelerator.num_processes
    if per_process < 1 or per_process * accelerator.num_processes * accum != recipe.batch_size:
        raise RecipeError(
            f"batch_size={recipe.batch_size} does not split over {accelerator.num_processes} processes x "
            f"{accum} accumulation steps: make it a multiple of {accelerator.num_processes * accum}"
        )
    return per_process


def setup(recipe: Recipe, accelerator, *, per_process_batch: int) -> Parts:
    """Data, model (channels-last, SyncBN where asked), optimizer, schedule, EMA and loss, prepared."""
    train_loader, test_loader, disjoint = build_loaders(recipe, accelerator, per_process_batch)
    accum = accelerator.gradient_accumulation_steps
    if len(train_loader) < accum:
        raise DataError(
            f"the training set holds fewer images than one batch of {recipe.batch_size} (train_subset="
            f"{recipe.train_subset}): training would make no update. Lower batch_size or raise train_subset"
        )
    model = model_from_recipe(recipe).to(accelerator.device)
    configure_batchnorm(model, momentum=recipe.bn_momentum, freeze_scale=recipe.freeze_bn_scale)
    if recipe.whiten_stem:
        whiten_stem(model, train_loader.first_images(WHITENING_IMAGES).to(accelerator.device))
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if recipe.sync_bn and accelerator.num_processes > 1:
        if accelerator.device.type != "cuda":
            raise RecipeError(
                "sync_bn: torch's SyncBatchNorm works on GPUs only; use --set sync_bn=false on CPU"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = build_optimizer(recipe, model)
    scheduler = build_scheduler(recipe, optimizer, max(1, len(train_loader) // accum))
    ema = None
    if recipe.model_ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=recipe.model_ema_decay, use_warmup=recipe.model_ema_warmup)
    roles = (
        None if recipe.method == "fixnorm" else param_roles(model, example_input=example_input(recipe, model))
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    mixup, criterion = _loss_and_mixup(recipe)
    return Parts(
        model, optimizer, scheduler, ema, train_loader, test_loader, disjoint, criterion, mixup, roles
    )


def resume_from(
    run: RunDir, accelerator, parts: Parts, state: TrainState, changes: dict[str, list[Any]]
) -> Path | None:
    """Restore the newest loadable checkpoint into ``parts`` and ``state``; None when there is none."""
    found = run.load_checkpoint(accelerator, ema_module=parts.ema.module if parts.ema is not None else None)
    if found is None:
        logger.info(f"--resume: no complete checkpoint under {run.checkpoints}; starting from epoch 1")
        return None
    ckpt, train_state = found
    state.load_state_dict(train_state)
    if (
        state.step_in_epoch and not changes
    ):  # mid-epoch: the batch count must fit this epoch and the update count
        try:
            batches = len(parts.train_loader)
        except TypeError:  # a stream without a length: nothing to check against
            batches = None
        accum = max(1, accelerator.gradient_accumulation_steps)
        expected = state.epoch * (batches // accum) + state.step_in_epoch // accum if batches else None
        if batches is not None and (state.step_in_epoch >= batches or state.num_updates != expected):
            raise DataError(
                f"--resume: {ckpt / run.TRAIN_STATE} says batch {state.step_in_epoch} of epoch {state.epoch + 1} "
                f"after {state.num_updates} updates, which does not fit this run's {batches} batches per epoch: "
                "the file was edited or is from another run; restore it, or resume from an epoch checkpoint"
            )
    within = f", batch {state.step_in_epoch} of epoch {state.epoch + 1}" if state.step_in_epoch else ""
    logger.info(f"resumed from {ckpt} (epoch {state.epoch}, {state.num_updates} updates{within})")
    if changes:
        state.resume_changes.append({"from_epoch": state.epoch + 1, "changes": changes})
    return ckpt


def train_one_epoch(
    recipe: Recipe, accelerator, parts: Parts, state: TrainState, *, run: RunDir, bar, stop: StopSignals
) -> dict[str, Any]:
    """One pass over the training set (the rest of it after a mid-epoch resume); returns the epoch's mean loss,
    training seconds and images seen.

    After every optimizer update the processes agree (:func:`fixnorm_zoo.utils.preemption.agree`) on whether to write a
    mid-epoch checkpoint (``checkpoint_every_steps`` / ``_minutes``) or to stop on a signal, which saves one and
    raises :class:`Preempted`.

    Raises:
        Preempted: a stop signal arrived; the checkpoint to resume from is saved.
    """
    model, optimizer = parts.model, parts.optimizer
    parts.train_loader.set_epoch(state.epoch)
    model.train()
    partial = state.epoch_loss_sums[accelerator.process_index] if state.epoch_loss_sums else 0.0
    loss_sum = torch.tensor(partial, dtype=torch.float64, device=accelerator.device)
    n_batches, images = state.step_in_epoch, state.epoch_images
    loader = _skip_batches(parts.train_loader, n_batches, accelerator)
    every_steps, every_s = recipe.checkpoint_every_steps, (recipe.checkpoint_every_minutes or 0) * 60
    done_s, t0 = state.epoch_train_s, time.perf_counter()
    last_save = t0
    for x, y in loader:
        x, y = x.to(accelerator.device, non_blocking=True), y.to(accelerator.device, non_blocking=True)
        if recipe.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if parts.mixup is not None:
            x, y = parts.mixup(x, y)
        with accelerator.accumulate(model):
            loss = parts.criterion(model(x), y)
            accelerator.backward(loss)
            if accelerator.sync_gradients and recipe.clip_grad:
                accelerator.clip_grad_norm_(model.parameters(), recipe.clip_grad)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        loss_sum += loss.detach().double()
        n_batches += 1
        images += x.shape[0]
        bar.update(1)
        if accelerator.sync_gradients:
            state.num_updates += 1
            parts.scheduler.step_update(state.num_updates)
            if parts.ema is not None:
                parts.ema.update(accelerator.unwrap_model(model), step=state.num_updates)
            fault_point(f"train:update_{state.num_updates}")
            now = time.perf_counter()
            due = bool(every_steps and state.num_updates % every_steps == 0) or bool(
                every_s and now - last_save >= every_s
            )
            received, due = agree(accelerator, stop.received or 0, due)
            must_stop = received > 0
            if must_stop:
                stop.received = int(received)  # the signal one process received, named by all
            if (must_stop or due) and n_batches < len(parts.train_loader):
                state.step_in_epoch, state.epoch_images = n_batches, images
                state.epoch_loss_sums = accelerator.gather(loss_sum.reshape(1)).tolist()  # every rank's
                state.epoch_train_s = done_s + now - t0
                ckpt = _save(recipe, accelerator, parts, state, run=run, mid_epoch=True)
                t0, done_s, last_save = time.perf_counter(), state.epoch_train_s, time.perf_counter()
                if must_stop:
                    bar.close()
                    raise _preempted(recipe, accelerator, state, ckpt, run=run, stop=stop)
        if n_batches % recipe.log_every == 0:
            mean = float(loss_sum) / n_batches
            _check_finite(mean, state.epoch, run)
            bar.set_postfix(loss=f"{mean:.4f}", lr=f"{parts.inner_optimizer.param_groups[0]['lr']:.3g}")
    train_s = done_s + time.perf_counter() - t0
    mean_loss = float(accelerator.reduce(loss_sum, reduction="mean")) / max(1, n_batches)
    _check_finite(mean_loss, state.epoch, run)
    state.step_in_epoch, state.epoch_images, state.epoch_loss_sums, state.epoch_train_s = 0, 0, [], 0.0
    return {"train_loss": mean_loss, "train_s": train_s, "images": images * accelerator.num_processes}


def _skip_batches(loader, batches: int, accelerator):
    """``loader`` from its ``batches``-th batch on: Fashion-MNIST's in-memory loader replays only its augmentation
    draws; a DataLoader goes through accelerate's ``skip_first_batches`` (same remaining batches)."""
    if batches == 0:
        return loader
    if hasattr(loader, "skip_first"):
        loader.skip_first(batches)
        return loader
    return accelerator.skip_first_batches(loader, batches)


def _save(
    recipe: Recipe, accelerator, parts: Parts, state: TrainState, *, run: RunDir, mid_epoch: bool
) -> Path:
    """A checkpoint of everything a resume needs (accelerate's state, EMA, the train state as JSON)."""

    def keep(names: list[str]) -> set[str]:
        return {f"epoch_{state.best_epoch:04d}", *names[-recipe.keep_last :]}

    state.num_processes = accelerator.num_processes
    ema_state = parts.ema.module.state_dict() if parts.ema is not None else None
    return run.save_checkpoint(
        accelerator,
        epoch=state.epoch,
        train_state=state.state_dict(),
        ema_state=ema_state,
        keep=keep,
        step=state.num_updates if mid_epoch else None,
    )


def _preempted(
    recipe: Recipe, accelerator, state: TrainState, ckpt: Path, *, run: RunDir, stop: StopSignals
) -> Preempted:
    """The stop's one line (printed once) and marker file ``PREEMPTED`` (for requeue scripts whose launcher hides
    the exit status), as the exception to raise."""
    name = stop.name or "a stop request"
    code = EXIT_INTERRUPTED if stop.received == signal.SIGINT else EXIT_PREEMPTED
    if accelerator.is_main_process:
        run.write_preempted({"signal": name, "checkpoint": str(ckpt), "exit_code": code})
    return Preempted(
        f"stopped by {name} at epoch {state.epoch + 1}/{recipe.epochs}, batch {state.step_in_epoch} "
        f"({state.num_updates} updates); checkpoint {ckpt}. Resume with the same command and --resume "
        f"(fixnorm-zoo train ... --output {run.path} --resume)",
        checkpoint=str(ckpt),
        signal_name=name,
        exit_code=code,
    )


def evaluate_epoch(
    recipe: Recipe, accelerator, parts: Parts, state: TrainState, epoch: dict[str, Any]
) -> dict[str, Any]:
    """The epoch's log row: loss, LR, test top-1/5 (and the EMA's), throughput, FixNorm diagnostics."""
    metrics = accuracy_counts(
        parts.model,
        parts.test_loader,
        accelerator=accelerator,
        disjoint_shards=parts.disjoint,
        channels_last=recipe.channels_last,
    )
    row: dict[str, Any] = {
        "epoch": state.epoch + 1,
        "updates": state.num_updates,
        "train_loss": epoch["train_loss"],
        "lr": parts.inner_optimizer.param_groups[0]["lr"],
        "top1": metrics["top1"],
        "top5": metrics["top5"],
        "epoch_train_s": round(epoch["train_s"], 2),
        "img_per_s": round(epoch["images"] / epoch["train_s"], 1),
    }
    if parts.ema is not None:
        ema = accuracy_counts(
            parts.ema.module, parts.test_loader, accelerator=accelerator, disjoint_shards=parts.disjoint
        )
        row.update(top1_ema=ema["top1"], top5_ema=ema["top5"])
    row.update(_diagnostics(parts.inner_optimizer, accelerator.unwrap_model(parts.model), parts.roles))
    return row


def end_epoch(
    recipe: Recipe, accelerator, parts: Parts, state: TrainState, row: dict[str, Any], *, run: RunDir, bar
) -> None:
    """Count the epoch, keep its row, log it to the trackers, write the checkpoint and the log."""
    score = row.get("top1_ema", row["top1"])
    state.epoch = row["epoch"]
    state.train_time_s += row["epoch_train_s"]
    if score > state.best_top1:
        state.best_top1, state.best_epoch = score, state.epoch
    if state.resume_changes and state.resume_changes[-1]["from_epoch"] == state.epoch:
        row["resume_changes"] = state.resume_changes[-1]["changes"]
    state.history.append(row)
    if accelerator.trackers:
        accelerator.log({k: v for k, v in row.items() if isinstance(v, int | float)}, step=state.epoch)

    _save(recipe, accelerator, parts, state, run=run, mid_epoch=False)
    fault_point(f"train:checkpoint_{state.epoch}")
    if accelerator.is_main_process:
        run.write_history(state.history)
        ema_note = f" (EMA {row['top1_ema']:.2f})" if parts.ema is not None else ""
        logger.info(
            f"epoch {state.epoch}/{recipe.epochs}: loss {row['train_loss']:.4f} top1 {row['top1']:.2f}"
            f"{ema_note} {row['img_per_s']} img/s"
        )


def finish(recipe: Recipe, accelerator, parts: Parts, state: TrainState, *, run: RunDir) -> dict[str, Any]:
    """Final weights (and the EMA's), ``summary.json`` and the curves; returns the summary."""
    last = state.history[-1]
    ema = parts.ema
    model = accelerator.unwrap_model(parts.model)
    summary = {
        "name": recipe.name,
        "model": recipe.model,
        "model_args": recipe.model_args,
        "method": recipe.method,
        "epochs": recipe.epochs,
        "top1": last["top1_ema" if ema is not None else "top1"],
        "top5": last["top5_ema" if ema is not None else "top5"],
        "eval_weights": RunDir.WEIGHTS_EMA if ema is not None else RunDir.WEIGHTS,
        "eval_split": _eval_split(recipe),
        "eval_setting": {k: v for k, v in eval_config(recipe).items() if k != "num_classes"},
        "best_top1": state.best_top1,
        "best_epoch": state.best_epoch,
        "train_time_s": round(state.train_time_s, 1),
        "num_processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "grad_accum_steps": accelerator.gradient_accumulation_steps,
        "param_count": sum(p.numel() for p in model.parameters()),
        "ranks_agree": _ranks_agree(accelerator, model),
        "threads": torch.get_num_threads(),
        "provenance": provenance(),  # code revision, library versions, CPU/GPU: what the numbers ran on
    }
    if accelerator.is_main_process:
        run.save_weights(model.state_dict())
        if ema is not None:
            run.save_weights(ema.module.state_dict(), ema=True)
        run.write_summary(summary)
        from fixnorm_zoo.plots import plot_curves

        plot_curves(state.history, run.curves_file, title=f"{recipe.name} ({recipe.method})")
    accelerator.wait_for_everyone()
    return summary


def train(
    recipe: Recipe,
    *,
    output_dir: str | Path,
    accelerator=None,
    resume: bool = False,
    progress: bool = True,
    resume_changes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Train ``recipe`` into ``output_dir`` and return its summary (also written to ``summary.json``).

    Args:
        recipe: a validated recipe.
        output_dir: the run directory; created if missing.
        accelerator: an ``accelerate.Accelerator`` to train with (e.g. one shared by a tuner's trials); its
            owner ends it. Default: one built from the recipe (:func:`make_accelerator`), ended here.
        resume: continue from the newest complete checkpoint in ``output_dir`` (exactly as an uninterrupted run);
            a run that died before its first checkpoint starts again.
        resume_changes: recipe fields this resume may change from the run's saved recipe (e.g. ``("lr",)`` after
            a divergence); each change is logged with the epoch it starts at.
        progress: show a progress bar on the main process.

    Raises:
        TrainingDiverged: the loss became NaN/inf; the last good checkpoint is kept and named.
        DataError: the data is missing or does not fit the model.
        RecipeError: the recipe does not fit the accelerator (batch split, amp, accumulation).
        FileExistsError: ``output_dir`` holds a run and ``resume`` is False.
    """

    run = RunDir(output_dir)
    run.refuse_symlinks()  # before reading a checkpoint through one, or pruning another run's folders
    if not resume and run.holds_run():
        raise FileExistsError(f"{run} already holds a run: pass --resume to continue it, or another --output")
    foreign = run.foreign_outputs()
    if not resume and foreign:
        raise FileExistsError(
            f"{run} holds {foreign} but no run to resume: a new run would overwrite them; pick another --output "
            "(or move them away)"
        )
    changes = (
        recipe_changes(recipe, run.recipe_file, named=(*resume_changes, *RESUME_MAY_CHANGE), run_dir=run.path)
        if resume
        else {}
    )
    owned = accelerator is None
    if owned:
        accelerator = make_accelerator(recipe, run_dir=run.path)
        if recipe.log_with != "none":
            accelerator.init_trackers(recipe.name, config={k: str(v) for k, v in recipe.to_dict().items()})
    per_process = check_accelerator(recipe, accelerator)
    # the main process owns the folder while it trains into it: a second training into it is refused
    with run.lock() if accelerator.is_main_process else contextlib.nullcontext():
        summary = _train_locked(
            recipe,
            accelerator,
            run,
            per_process=per_process,
            resume=resume,
            changes=changes,
            progress=progress,
        )
    if owned and recipe.log_with != "none":
        accelerator.end_training()  # closes the trackers (and tears the process group down): last, after finish
    return summary


def _train_locked(
    recipe: Recipe, accelerator, run: RunDir, *, per_process: int, resume: bool, changes, progress: bool
) -> dict[str, Any]:
    """The body of :func:`train`, once the run directory is this process's."""
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    set_seed(recipe.seed)
    if accelerator.is_local_main_process:
        _warn_if_oversubscribed(accelerator)
    parts = setup(recipe, accelerator, per_process_batch=per_process)
    state = TrainState()
    ckpt = resume_from(run, accelerator, parts, state, changes) if resume else None
    if accelerator.is_main_process and ckpt is None:  # a resumed run keeps the recipe it was started with
        run.write_recipe(recipe.to_yaml())

    steps = len(parts.train_loader)
    bar = tqdm(
        total=recipe.epochs * steps,
        initial=state.epoch * steps + state.step_in_epoch,
        desc=recipe.name,
        unit="batch",
        disable=not (progress and accelerator.is_main_process),
        dynamic_ncols=True,
    )
    if accelerator.is_main_process:
        run.clear_preempted()
    with StopSignals(signal_numbers(recipe.preempt_signals)) as stop:
        while state.epoch < recipe.epochs:
            epoch = train_one_epoch(recipe, accelerator, parts, state, run=run, bar=bar, stop=stop)
            row = evaluate_epoch(recipe, accelerator, parts, state, epoch)
            end_epoch(recipe, accelerator, parts, state, row, run=run, bar=bar)
    bar.close()
    return finish(recipe, accelerator, parts, state, run=run)


@torch.no_grad()
def _ranks_agree(accelerator, model: nn.Module) -> bool:
    """Whether every process ends with the same weights (each tensor's norm, compared across ranks): DDP keeps them
    equal, so a False here means a rank trained something the others did not (and FixNorm's norms would differ)."""
    norms = torch.stack([p.detach().double().norm() for p in model.parameters()]).to(accelerator.device)
    if accelerator.num_processes == 1:
        return True
    every = accelerator.gather(norms.unsqueeze(0))
    return bool((every == every[0]).all())


def _warn_if_oversubscribed(accelerator) -> None:
    """Two torch jobs that each use every core slow each other down up to 10x (measured here: 0.4 s -> 3.5 s a
    batch). Warn when other processes are busy on the cores right now (0.3 s of system CPU use, psutil) and this run
    would add more threads than are left."""
    if accelerator.device.type != "cpu":
        return
    import psutil  # an accelerate dependency (lazy: only CPU runs need it)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = torch.get_num_threads() * accelerator.num_processes
    busy = psutil.cpu_percent(interval=0.3) / 100 * (psutil.cpu_count() or cores)
    if busy >= 0.75 and busy + threads > cores + 0.5:
        warnings.warn(
            f"{busy:.1f} of the {cores} cores are busy with other work and this run adds {threads} threads: the "
            f"jobs will slow each other down several-fold. Set OMP_NUM_THREADS so the total stays within {cores} "
            "cores, or run one job at a time.",
            RuntimeWarning,
            stacklevel=3,
        )


def _diagnostics(optimizer, model: nn.Module, roles: dict[str, str] | None) -> dict[str, float]:
    """Effective LR of the invariant weights and classifier norm, for FixNorm and weight-decay runs alike."""
    if isinstance(optimizer, FixNorm):
        return optimizer.diagnostics()
    by_role: dict[str, list[torch.Tensor]] = {}
    for name, p in model.named_parameters():
        by_role.setdefault((roles or {}).get(name, "free"), []).append(p)
    return norm_diagnostics(by_role, lr=optimizer.param_groups[0]["lr"])


def _check_finite(loss: float, epoch: int, run: RunDir) -> None:
    if not math.isfinite(loss):
        last = run.latest_checkpoint()
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint had been written yet"
        raise TrainingDiverged(
            f"training loss became {loss} in epoch {epoch + 1}; {kept}. Lower the LR (or fc_norm) and resume "
            "with --resume --set lr=..."
        )


def _loss_and_mixup(recipe: Recipe):
    if recipe.mixup > 0 or recipe.cutmix > 0:
        from timm.data import Mixup
        from timm.loss import SoftTargetCrossEntropy

        mixup = Mixup(
            mixup_alpha=recipe.mixup,
            cutmix_alpha=recipe.cutmix,
            label_smoothing=recipe.label_smoothing,
            num_classes=recipe.num_classes,
        )
        return mixup, SoftTargetCrossEntropy()
    return None, nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)


def _eval_split(recipe: Recipe) -> str:
    if recipe.dataset != "fashion_mnist":
        return "validation"
    return f"train[-{recipe.holdout}:]" if recipe.holdout else "test"
