"""The training engine: one recipe, one run directory, from one CPU process to many GPUs and nodes (Accelerate).

Run directory layout (``RUN_DIR``):
    recipe.yaml              the resolved recipe
    log.jsonl                one row per epoch (loss, top-1/5, LR, FixNorm diagnostics, throughput)
    checkpoints/epoch_NNNN/  accelerate save_state (model, optimizer, RNG, train state, EMA); written atomically
    checkpoints/latest       name of the newest complete checkpoint
    weights.safetensors      final weights (weights_ema.safetensors too when EMA is on)
    summary.json             final metrics, eval setting, wall time; curves.png: the curves
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fixnorm_zoo.atomic import atomic_write_text, fault_point
from fixnorm_zoo.errors import DataError, RecipeError, TrainingDiverged
from fixnorm_zoo.evaluate import accuracy_counts
from fixnorm_zoo.models import create_model, eval_config
from fixnorm_zoo.recipe import Recipe

CHECKPOINTS = "checkpoints"
LATEST = "latest"
WEIGHTS = "weights.safetensors"
WEIGHTS_EMA = "weights_ema.safetensors"
SUMMARY = "summary.json"
LOG = "log.jsonl"


TRAIN_STATE = "train_state.json"
EMA_WEIGHTS = "ema.safetensors"
RESUME_MAY_CHANGE = ("data_dir", "workers", "log_every", "keep_last", "log_with")
"""Recipe fields a resumed run may change without naming them: where the data lives and how the run reports. Any
other change must be named (``resume_changes``; the CLI names the ``--set`` keys) and is logged per epoch."""
_CHECKPOINT_NAME = re.compile(r"epoch_\d{4}")


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

    def state_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def build_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    """FixNorm around the recipe's base optimizer, or the weight-decay twin through timm's optimizer factory (no
    decay on biases and norm affines, as timm's and torchvision's recipes do)."""
    import timm.optim

    from fixnorm_zoo.fixnorm import FixNorm

    kwargs: dict[str, Any] = {"lr": recipe.lr}
    if recipe.optimizer == "sgd":
        kwargs.update(momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0)
    elif recipe.optimizer == "rmsproptf":
        kwargs.update(
            alpha=0.9, momentum=recipe.momentum, eps=recipe.opt_eps or 1e-3
        )  # EfficientNet's TF RMSprop
    if recipe.optimizer == "adamw" and recipe.opt_eps:
        kwargs["eps"] = recipe.opt_eps
    if recipe.method == "fixnorm":
        example = _example_input(recipe, model)
        return FixNorm(model, recipe.optimizer, fc_norm=recipe.fc_norm, invariant_norm=recipe.invariant_norm,
                       fc_norm_mode=recipe.fc_norm_mode, example_input=example, **kwargs)  # fmt: skip
    return timm.optim.create_optimizer_v2(
        model, opt=recipe.optimizer, weight_decay=recipe.weight_decay, **kwargs
    )


def build_scheduler(recipe: Recipe, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """timm's per-update schedule: warmup then cosine (to min_lr) or step decay, sized in optimizer updates."""
    import timm.scheduler

    total = recipe.epochs * steps_per_epoch
    warmup = int(recipe.warmup_epochs * steps_per_epoch)
    if recipe.sched == "cosine":
        return timm.scheduler.CosineLRScheduler(
            optimizer, t_initial=max(1, total - warmup), lr_min=recipe.min_lr, warmup_t=warmup,
            warmup_lr_init=recipe.warmup_lr, warmup_prefix=True, t_in_epochs=False,
        )  # fmt: skip
    return timm.scheduler.StepLRScheduler(
        optimizer, decay_t=max(1, int(recipe.decay_epochs * steps_per_epoch)), decay_rate=recipe.decay_rate,
        warmup_t=warmup, warmup_lr_init=recipe.warmup_lr, t_in_epochs=False,
    )  # fmt: skip


def build_loaders(recipe: Recipe, accelerator, per_process_batch: int):
    """The recipe's train and eval batches for this process: Fashion-MNIST in memory, else image folders or a
    Hugging Face dataset; returns ``(train, test, disjoint_shards)``."""
    if recipe.dataset == "fashion_mnist":
        from fixnorm_zoo.data import BatchAugment, InMemoryLoader, load_fashion_mnist

        if recipe.in_chans != 1 or recipe.input_size[1:] != [28, 28]:
            raise DataError(
                f"Fashion-MNIST images are 1x28x28 grayscale; the recipe's input_size is {recipe.input_size}"
            )
        xtr, ytr = load_fashion_mnist(split="train", data_dir=recipe.data_dir)
        xte, yte = load_fashion_mnist(split="test", data_dir=recipe.data_dir)
        if recipe.holdout:
            if recipe.holdout >= len(xtr):
                raise DataError(
                    f"holdout={recipe.holdout} leaves no training images (the split has {len(xtr)})"
                )
            xtr, ytr, xte, yte = (
                xtr[: -recipe.holdout],
                ytr[: -recipe.holdout],
                xtr[-recipe.holdout :],
                ytr[-recipe.holdout :],
            )
        if recipe.train_subset:
            xtr, ytr = xtr[: recipe.train_subset], ytr[: recipe.train_subset]
        common = dict(mean=tuple(recipe.mean), std=tuple(recipe.std), seed=recipe.seed,
                      rank=accelerator.process_index, world_size=accelerator.num_processes)  # fmt: skip
        train = InMemoryLoader(xtr, ytr, batch_size=per_process_batch, train=True, random_erasing=recipe.reprob,
                               augment=BatchAugment(pad=recipe.crop_pad, hflip=recipe.hflip), **common)  # fmt: skip
        test = InMemoryLoader(xte, yte, batch_size=max(per_process_batch, 256), train=False, **common)
        return train, test, True
    from fixnorm_zoo.imagenet import build_imagenet_loaders

    train, test, needs_prepare = build_imagenet_loaders(recipe, per_process_batch=per_process_batch,
                                                        rank=accelerator.process_index,
                                                        world_size=accelerator.num_processes)  # fmt: skip
    if not needs_prepare:  # streams: each process already reads its own disjoint part
        return train, test, True
    train, test = accelerator.prepare(train, test)
    return train, test, False


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None. The ``latest`` pointer must name a checkpoint folder in this run
    (``epoch_NNNN``); an empty, foreign or dangling pointer is ignored for the newest complete folder."""
    candidates = _complete_checkpoints(run_dir)
    return candidates[0] if candidates else None


def _complete_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint folders, the one ``latest`` names first, then the others newest first."""
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    done = sorted((p for p in root.iterdir() if _CHECKPOINT_NAME.fullmatch(p.name) and (p / TRAIN_STATE).is_file()),
                  reverse=True)  # fmt: skip
    pointer = root / LATEST
    named = pointer.read_text().strip() if pointer.is_file() else ""
    if _CHECKPOINT_NAME.fullmatch(named) and (root / named) in done:
        done.remove(root / named)
        done.insert(0, root / named)
    return done


def _load_checkpoint(accelerator, run_dir: Path, state: TrainState, ema) -> Path | None:
    """Load the newest checkpoint that loads; a damaged one is skipped for the older complete one kept beside it.
    Returns the folder loaded, or None when there is none."""
    from safetensors.torch import load_file

    failures = []
    for ckpt in _complete_checkpoints(run_dir):
        try:
            accelerator.load_state(str(ckpt))
            state.load_state_dict(json.loads((ckpt / TRAIN_STATE).read_text()))
            if ema is not None:
                ema.module.load_state_dict(load_file(str(ckpt / EMA_WEIGHTS)))
        except Exception as e:  # noqa: BLE001 - any damage: fall back to the older checkpoint
            failures.append(f"{ckpt.name}: {type(e).__name__}: {e}")
            continue
        if failures:
            accelerator.print(f"warning: skipped damaged checkpoint(s) {failures}")
        return ckpt
    if failures:
        raise DataError(f"--resume: no checkpoint under {run_dir / CHECKPOINTS} could be loaded: {failures}")
    return None


def _save_checkpoint(accelerator, run_dir: Path, state: TrainState, keep_last: int, ema) -> Path:
    """save_state into a temporary folder, then rename: a crash mid-write never leaves a broken ``latest``. The
    train state is JSON and the EMA weights safetensors (nothing of ours is pickled)."""
    from safetensors.torch import save_file

    root = run_dir / CHECKPOINTS
    name = f"epoch_{state.epoch:04d}"
    tmp = root / (name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if ema is not None:
            save_file({k: v.detach().contiguous().cpu() for k, v in ema.module.state_dict().items()},
                      str(tmp / EMA_WEIGHTS))  # fmt: skip
        atomic_write_text(
            tmp / TRAIN_STATE, json.dumps(state.state_dict())
        )  # last: marks the folder complete
        shutil.rmtree(root / name, ignore_errors=True)
        os.replace(tmp, root / name)
        atomic_write_text(root / LATEST, name)
        keep = {name, f"epoch_{state.best_epoch:04d}"}
        done = sorted(p.name for p in root.iterdir() if _CHECKPOINT_NAME.fullmatch(p.name))
        keep.update(done[-keep_last:])
        for old in done:
            if old not in keep:
                shutil.rmtree(root / old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return root / name


def _recipe_changes(recipe: Recipe, run_dir: Path, named: tuple[str, ...]) -> dict[str, list[Any]]:
    """Fields where ``recipe`` differs from the run's saved ``recipe.yaml``: ``{field: [was, now]}``.

    Raises:
        RecipeError: a changed field that is neither named nor in :data:`RESUME_MAY_CHANGE`.
    """
    from fixnorm_zoo.recipe import load_recipe

    saved_path = run_dir / "recipe.yaml"
    if not saved_path.is_file():
        return {}
    saved = load_recipe(str(saved_path)).to_dict()
    now = recipe.to_dict()
    changes = {k: [saved[k], now[k]] for k in now if saved.get(k) != now[k]}
    unnamed = sorted(k for k in changes if k not in named and k not in RESUME_MAY_CHANGE)
    if unnamed:
        said = ", ".join(f"{k}: {changes[k][0]!r} -> {changes[k][1]!r}" for k in unnamed)
        raise RecipeError(
            f"--resume {run_dir}: the recipe differs from the run's recipe.yaml ({said}). Resume with the run's own "
            f"settings (fixnorm-zoo train {saved_path} --resume --output {run_dir}), or name each change with --set "
            "(it is logged with the epoch it starts at; recipe.yaml keeps the run's original)"
        )
    return changes


def _save_weights(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)


def train(
    recipe: Recipe,
    *,
    output_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    resume_changes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Train ``recipe`` into ``output_dir`` and return its summary (also written to ``summary.json``).

    Args:
        recipe: a validated recipe.
        output_dir: the run directory; created if missing.
        resume: continue from the newest complete checkpoint in ``output_dir`` (exactly as an uninterrupted run);
            a run that died before its first checkpoint starts again.
        resume_changes: recipe fields this resume may change from the run's saved recipe (e.g. ``("lr",)`` after
            a divergence); each change is logged with the epoch it starts at.
        progress: show a progress bar on the main process.

    Raises:
        TrainingDiverged: the loss became NaN/inf; the last good checkpoint is kept and named.
        DataError: the data is missing or does not fit the model.
        FileExistsError: ``output_dir`` holds a run and ``resume`` is False.
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, GradientAccumulationPlugin, set_seed
    from tqdm.auto import tqdm

    run_dir = Path(output_dir)
    if not resume and (latest_checkpoint(run_dir) is not None or (run_dir / SUMMARY).exists()):
        raise FileExistsError(
            f"{run_dir} already holds a run: pass --resume to continue it, or another --output"
        )
    changes = _recipe_changes(recipe, run_dir, tuple(resume_changes)) if resume else {}
    # On a CPU-only machine Accelerator() under torchrun would train each rank independently: cpu=True makes the
    # processes all-reduce over gloo.
    # amp / grad_accum_steps left unset (None) in the recipe follow `accelerate launch` and `accelerate config`;
    # a value the recipe sets wins (a plugin, since a plain gradient_accumulation_steps= yields to the launcher's).
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=recipe.amp,
        gradient_accumulation_plugin=None
        if recipe.grad_accum_steps is None
        else GradientAccumulationPlugin(num_steps=recipe.grad_accum_steps),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),  # same shuffle after --resume
        log_with=None if recipe.log_with == "none" else recipe.log_with,
        project_dir=str(run_dir),
    )
    if recipe.log_with != "none":
        accelerator.init_trackers(recipe.name, config={k: str(v) for k, v in recipe.to_dict().items()})
    set_seed(recipe.seed)
    if accelerator.is_local_main_process:
        _warn_if_oversubscribed(accelerator)
    accum = accelerator.gradient_accumulation_steps
    per_process = recipe.batch_size // accum // accelerator.num_processes
    if per_process < 1 or per_process * accelerator.num_processes * accum != recipe.batch_size:
        raise RecipeError(
            f"batch_size={recipe.batch_size} does not split over {accelerator.num_processes} processes x "
            f"{accum} accumulation steps: make it a multiple of {accelerator.num_processes * accum}"
        )
    train_loader, test_loader, disjoint = build_loaders(recipe, accelerator, per_process)
    if len(train_loader) < accum:
        raise DataError(
            f"the training set holds fewer images than one batch of {recipe.batch_size} (train_subset="
            f"{recipe.train_subset}): training would make no update. Lower batch_size or raise train_subset"
        )

    model = create_model(recipe).to(accelerator.device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if recipe.sync_bn and accelerator.num_processes > 1:
        if accelerator.device.type != "cuda":
            raise RecipeError(
                "sync_bn: torch's SyncBatchNorm works on GPUs only; use --set sync_bn=false on CPU"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = build_optimizer(recipe, model)
    steps_per_epoch = max(1, len(train_loader) // accum)
    scheduler = build_scheduler(recipe, optimizer, steps_per_epoch)
    ema = None
    if recipe.model_ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=recipe.model_ema_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    state = TrainState()

    mixup_fn, criterion = _loss_and_mixup(recipe)
    ckpt = _load_checkpoint(accelerator, run_dir, state, ema) if resume else None
    if ckpt is not None:
        accelerator.print(f"resumed from {ckpt} (epoch {state.epoch}, {state.num_updates} updates)")
        if changes:
            state.resume_changes.append({"from_epoch": state.epoch + 1, "changes": changes})
    elif resume:
        accelerator.print(
            f"--resume: no complete checkpoint under {run_dir / CHECKPOINTS}; starting from epoch 1"
        )
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CHECKPOINTS).mkdir(exist_ok=True)
        if ckpt is None:  # a resumed run keeps the recipe it was started with
            atomic_write_text(run_dir / "recipe.yaml", recipe.to_yaml())

    inner_opt = getattr(optimizer, "optimizer", optimizer)
    roles = (
        None if recipe.method == "fixnorm" else _roles_for_logging(recipe, accelerator.unwrap_model(model))
    )
    total_steps = recipe.epochs * len(train_loader)
    bar = tqdm(total=total_steps, initial=state.epoch * len(train_loader), disable=not (progress and accelerator.is_main_process),
               desc=f"{recipe.name}", unit="batch", dynamic_ncols=True)  # fmt: skip
    while state.epoch < recipe.epochs:
        epoch = state.epoch
        train_loader.set_epoch(epoch)
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
        n_batches, images, t0 = 0, 0, time.perf_counter()
        for x, y in train_loader:
            x, y = x.to(accelerator.device, non_blocking=True), y.to(accelerator.device, non_blocking=True)
            if recipe.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if mixup_fn is not None:
                x, y = mixup_fn(x, y)
            with accelerator.accumulate(model):
                loss = criterion(model(x), y)
                accelerator.backward(loss)
                if accelerator.sync_gradients and recipe.clip_grad:
                    accelerator.clip_grad_norm_(model.parameters(), recipe.clip_grad)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            if accelerator.sync_gradients:
                state.num_updates += 1
                scheduler.step_update(state.num_updates)
                if ema is not None:
                    ema.update(accelerator.unwrap_model(model), step=state.num_updates)
            loss_sum += loss.detach().double()
            n_batches += 1
            images += x.shape[0]
            bar.update(1)
            if n_batches % recipe.log_every == 0:
                mean = float(loss_sum) / n_batches
                _check_finite(mean, epoch, run_dir)
                bar.set_postfix(loss=f"{mean:.4f}", lr=f"{inner_opt.param_groups[0]['lr']:.3g}")
        train_s = time.perf_counter() - t0
        mean_loss = float(accelerator.reduce(loss_sum, reduction="mean")) / max(1, n_batches)
        _check_finite(mean_loss, epoch, run_dir)
        metrics = accuracy_counts(model, test_loader, accelerator=accelerator, disjoint_shards=disjoint,
                                  channels_last=recipe.channels_last)  # fmt: skip
        row: dict[str, Any] = {
            "epoch": epoch + 1, "updates": state.num_updates, "train_loss": mean_loss,
            "lr": inner_opt.param_groups[0]["lr"], "top1": metrics["top1"], "top5": metrics["top5"],
            "epoch_train_s": round(train_s, 2), "img_per_s": round(images * accelerator.num_processes / train_s, 1),
        }  # fmt: skip
        if ema is not None:
            ema_metrics = accuracy_counts(
                ema.module, test_loader, accelerator=accelerator, disjoint_shards=disjoint
            )
            row.update(top1_ema=ema_metrics["top1"], top5_ema=ema_metrics["top5"])
        row.update(_diagnostics(inner_opt, accelerator.unwrap_model(model), roles))
        score = row.get("top1_ema", row["top1"])
        state.epoch = epoch + 1
        state.train_time_s += train_s
        if score > state.best_top1:
            state.best_top1, state.best_epoch = score, state.epoch
        if state.resume_changes and state.resume_changes[-1]["from_epoch"] == state.epoch:
            row["resume_changes"] = state.resume_changes[-1]["changes"]
        state.history.append(row)
        if recipe.log_with != "none":
            accelerator.log({k: v for k, v in row.items() if isinstance(v, int | float)}, step=state.epoch)
        _save_checkpoint(accelerator, run_dir, state, recipe.keep_last, ema)
        fault_point(f"train:checkpoint_{state.epoch}")
        if accelerator.is_main_process:
            # rewritten from the checkpointed history: after a kill and --resume it holds each epoch once
            atomic_write_text(run_dir / LOG, "".join(json.dumps(r) + "\n" for r in state.history))
            bar.write(f"epoch {state.epoch}/{recipe.epochs}: loss {mean_loss:.4f} top1 {row['top1']:.2f}"
                      + (f" (EMA {row['top1_ema']:.2f})" if ema is not None else "") + f" {row['img_per_s']} img/s")  # fmt: skip
    bar.close()
    summary = _finish(recipe, accelerator, model, ema, state, run_dir)
    if recipe.log_with != "none":
        accelerator.end_training()  # closes the trackers (and tears the process group down): last, after _finish
    return summary


def _warn_if_oversubscribed(accelerator) -> None:
    """Two torch jobs that each use every core slow each other down up to 10x (measured here: 0.4 s -> 3.5 s a
    batch). Warn when other processes are busy on the cores right now (0.3 s of system CPU use, psutil) and this run
    would add more threads than are left."""
    if accelerator.device.type != "cpu":
        return
    import psutil  # an accelerate dependency

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = torch.get_num_threads() * accelerator.num_processes
    busy = psutil.cpu_percent(interval=0.3) / 100 * (psutil.cpu_count() or cores)
    if busy >= 0.75 and busy + threads > cores + 0.5:
        import warnings

        warnings.warn(
            f"{busy:.1f} of the {cores} cores are busy with other work and this run adds {threads} threads: the "
            f"jobs will slow each other down several-fold. Set OMP_NUM_THREADS so the total stays within {cores} "
            "cores, or run one job at a time.",
            RuntimeWarning,
            stacklevel=3,
        )


def _roles_for_logging(recipe: Recipe, model: nn.Module) -> dict[str, str]:
    from fixnorm_zoo.fixnorm import param_roles

    return param_roles(model, example_input=_example_input(recipe, model))


def _example_input(recipe: Recipe, model: nn.Module) -> torch.Tensor:
    """Two random images for the role probe, from a private generator: drawing them from the global RNG would
    shift the stream training uses, and a resumed run (which probes after restoring the RNG) would diverge."""
    x = torch.randn(2, *recipe.input_size, generator=torch.Generator().manual_seed(recipe.seed))
    return x.to(next(model.parameters()).device)


def _diagnostics(optimizer, model: nn.Module, roles: dict[str, str] | None) -> dict[str, float]:
    """Effective LR of the invariant weights and classifier norm, for FixNorm and weight-decay runs alike."""
    from fixnorm_zoo.fixnorm import FixNorm, norm_diagnostics

    if isinstance(optimizer, FixNorm):
        return optimizer.diagnostics()
    by_role: dict[str, list[torch.Tensor]] = {}
    for name, p in model.named_parameters():
        by_role.setdefault((roles or {}).get(name, "free"), []).append(p)
    return norm_diagnostics(by_role, lr=optimizer.param_groups[0]["lr"])


def _check_finite(loss: float, epoch: int, run_dir: Path) -> None:
    if not math.isfinite(loss):
        last = latest_checkpoint(run_dir)
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint had been written yet"
        raise TrainingDiverged(
            f"training loss became {loss} in epoch {epoch + 1}; {kept}. Lower the LR (or fc_norm) and resume "
            "with --resume --set lr=..."
        )


def _loss_and_mixup(recipe: Recipe):
    if recipe.mixup > 0 or recipe.cutmix > 0:
        from timm.data import Mixup
        from timm.loss import SoftTargetCrossEntropy

        mixup = Mixup(mixup_alpha=recipe.mixup, cutmix_alpha=recipe.cutmix, label_smoothing=recipe.label_smoothing,
                      num_classes=recipe.num_classes)  # fmt: skip
        return mixup, SoftTargetCrossEntropy()
    return None, nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)


def _eval_split(recipe: Recipe) -> str:
    if recipe.dataset != "fashion_mnist":
        return "validation"
    return f"train[-{recipe.holdout}:]" if recipe.holdout else "test"


def _finish(recipe: Recipe, accelerator, model, ema, state: TrainState, run_dir: Path) -> dict[str, Any]:
    last = state.history[-1]
    final_key = "top1_ema" if ema is not None else "top1"
    summary = {
        "name": recipe.name,
        "model": recipe.model,
        "model_args": recipe.model_args,
        "method": recipe.method,
        "epochs": recipe.epochs,
        "top1": last[final_key],
        "top5": last["top5_ema" if ema is not None else "top5"],
        "eval_weights": WEIGHTS_EMA if ema is not None else WEIGHTS,
        "eval_split": _eval_split(recipe),
        "eval_setting": {k: v for k, v in eval_config(recipe).items() if k != "num_classes"},
        "best_top1": state.best_top1,
        "best_epoch": state.best_epoch,
        "train_time_s": round(state.train_time_s, 1),
        "num_processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "grad_accum_steps": accelerator.gradient_accumulation_steps,
        "param_count": sum(p.numel() for p in accelerator.unwrap_model(model).parameters()),
    }
    if accelerator.is_main_process:
        _save_weights(accelerator.unwrap_model(model), run_dir / WEIGHTS)
        if ema is not None:
            _save_weights(ema.module, run_dir / WEIGHTS_EMA)
        atomic_write_text(run_dir / SUMMARY, json.dumps(summary, indent=2))
        from fixnorm_zoo.plots import plot_curves

        plot_curves(state.history, run_dir / "curves.png", title=f"{recipe.name} ({recipe.method})")
    accelerator.wait_for_everyone()
    return summary
