"""The optimizer and LR schedule of a recipe: FixNorm around a base optimizer, or the weight-decay twin, both
through timm's optimizer registry; timm's per-update schedulers."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fixnorm_zoo.recipe import Recipe


def build_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    """FixNorm around the recipe's base optimizer, or the weight-decay twin through timm's optimizer factory (no
    decay on biases and norm affines, as timm's and torchvision's recipes do)."""
    import timm.optim

    from fixnorm_zoo.optim.fixnorm import FixNorm

    kwargs: dict[str, Any] = {"lr": recipe.lr}
    if recipe.optimizer in ("sgd", "sgdc"):
        kwargs.update(momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0)
    elif recipe.optimizer == "rmsproptf":
        kwargs.update(
            alpha=0.9, momentum=recipe.momentum, eps=recipe.opt_eps or 1e-3
        )  # EfficientNet's TF RMSprop
    if recipe.optimizer == "adamw" and recipe.opt_eps:
        kwargs["eps"] = recipe.opt_eps
    if recipe.optimizer == "muon":
        return _build_muon(recipe, model)
    if recipe.method == "fixnorm":
        example = example_input(recipe, model)
        optimizer = FixNorm(
            model,
            recipe.optimizer,
            fc_norm=recipe.fc_norm,
            invariant_norm=recipe.invariant_norm,
            fc_norm_mode=recipe.fc_norm_mode,
            example_input=example,
            **kwargs,
        )
    else:
        params = model if recipe.wd_exclude == "norm_bias" else decay_groups(model, recipe.weight_decay)
        optimizer = timm.optim.create_optimizer_v2(
            params, opt=recipe.optimizer, weight_decay=recipe.weight_decay, **kwargs
        )
    if recipe.bn_bias_lr_scale != 1.0:
        separate_bn_biases(optimizer, model=model, lr_scale=recipe.bn_bias_lr_scale)
    return optimizer


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Parameter groups for ``wd_exclude: norm_bias_depthwise``: no decay on 1-D parameters (norm affines), biases
    (timm's own exclusions) or depthwise conv filters (``groups == in_channels > 1``); ``weight_decay`` on the rest."""
    depthwise = {
        id(m.weight)
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
    }
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or name.endswith(".bias") or id(p) in depthwise
        (no_decay if skip else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def separate_bn_biases(optimizer: torch.optim.Optimizer, *, model: nn.Module, lr_scale: float) -> int:
    """Move every trainable BatchNorm bias into a group of its own at ``lr_scale`` times its group's LR (the
    group's other settings kept), before any step and before the scheduler reads the groups' initial LRs: timm's
    schedulers then scale each group from its own start, so the ratio holds through warm-up and decay.

    Returns the number of biases moved.
    """
    from fixnorm_zoo.models.build import batchnorm_layers

    biases = {id(bn.bias) for bn in batchnorm_layers(model) if bn.bias is not None and bn.bias.requires_grad}
    moved = 0
    for group in list(optimizer.param_groups):
        picked = {i for i, p in enumerate(group["params"]) if id(p) in biases}
        if not picked:
            continue
        new = {
            k: v for k, v in group.items() if k not in ("params", "fixnorm_targets")
        }  # FixNorm sets its own
        new["lr"] = group["lr"] * lr_scale
        new["params"] = [p for i, p in enumerate(group["params"]) if i in picked]
        for key in ("params", "fixnorm_targets"):
            if key in group:
                group[key] = [v for i, v in enumerate(group[key]) if i not in picked]
        optimizer.add_param_group(new)
        moved += len(picked)
    return moved


def _build_muon(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    """Muon on the filters and SGD on the rest, for both methods: FixNorm holds the filter and classifier norms;
    its twin decays the filters (Muon's decoupled decay) and the classifier (SGD's), not biases or norm affines.
    The SGD groups start at ``lr * aux_lr_scale`` and carry no ``lr_scale``: timm's schedulers scale each group from
    its own initial LR, so an ``lr_scale`` of ``aux_lr_scale`` on top would apply the ratio twice (it did, before
    session 13: the aux LR ran at ``lr * aux_lr_scale**2``)."""
    from fixnorm_zoo.optim.fixnorm import FixNorm
    from fixnorm_zoo.optim.matrix import MatrixOptimizer

    momentum = {"momentum": recipe.momentum, "nesterov": recipe.nesterov and recipe.momentum > 0}
    aux = {"lr": recipe.lr * recipe.aux_lr_scale, **momentum}
    if recipe.method == "fixnorm":
        opt = FixNorm(
            model,
            torch.optim.Muon,
            fc_norm=recipe.fc_norm,
            invariant_norm=recipe.invariant_norm,
            fc_norm_mode=recipe.fc_norm_mode,
            example_input=example_input(recipe, model),
            aux_kwargs=aux,
            lr=recipe.lr,
            **momentum,
        )
        return opt
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    head_weight = getattr(head, "weight", None)
    named = [p for p in model.parameters() if p.requires_grad]
    filters = [p for p in named if p.ndim >= 2 and p is not head_weight]
    decayed = [p for p in named if p.ndim >= 2 and p is head_weight]
    rest = [p for p in named if p.ndim < 2]
    groups = [
        {"params": filters, "matrix": True},
        *([{"params": decayed, "weight_decay": recipe.weight_decay}] if decayed else []),
        {"params": rest, "weight_decay": 0.0},
    ]
    return MatrixOptimizer(
        groups,
        matrix_cls=torch.optim.Muon,
        matrix_kwargs={"lr": recipe.lr, "weight_decay": recipe.weight_decay, **momentum},
        aux_cls=torch.optim.SGD,
        aux_kwargs=aux,
    )


def build_scheduler(recipe: Recipe, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """timm's per-update schedule: warmup then cosine (to min_lr) or step decay, sized in optimizer updates."""
    import timm.scheduler

    total = recipe.epochs * steps_per_epoch
    warmup = int(recipe.warmup_epochs * steps_per_epoch)
    if recipe.sched == "cosine":
        return timm.scheduler.CosineLRScheduler(
            optimizer,
            t_initial=max(1, total - warmup),
            lr_min=recipe.min_lr,
            warmup_t=warmup,
            warmup_lr_init=recipe.warmup_lr,
            warmup_prefix=True,
            t_in_epochs=False,
        )
    return timm.scheduler.StepLRScheduler(
        optimizer,
        decay_t=max(1, int(recipe.decay_epochs * steps_per_epoch)),
        decay_rate=recipe.decay_rate,
        warmup_t=warmup,
        warmup_lr_init=recipe.warmup_lr,
        t_in_epochs=False,
    )


def example_input(recipe: Recipe, model: nn.Module) -> torch.Tensor:
    """Two random images for the role probe, from a private generator: drawing them from the global RNG would
    shift the stream training uses, and a resumed run (which probes after restoring the RNG) would diverge."""
    x = torch.randn(2, *recipe.input_size, generator=torch.Generator().manual_seed(recipe.seed))
    return x.to(next(model.parameters()).device)
