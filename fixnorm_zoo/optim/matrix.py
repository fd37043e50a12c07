"""Run a matrix-only optimizer (``torch.optim.Muon``) on conv filters, with an element-wise optimizer for the rest.

Why: Muon orthogonalizes each update with Newton-Schulz iterations, so it only takes 2-D parameters ("Muon only
supports 2D parameters"). A conv filter of shape ``(out, in, kh, kw)`` is a matrix of ``out`` rows once its other
dimensions are flattened, which is how the CIFAR-10 speed record (airbench94_muon) trains its convs; biases,
normalization parameters and the classifier get SGD with Nesterov momentum there. That recipe also holds every
filter at a fixed norm with frozen BatchNorm weights and no weight decay on the filters: a FixNorm recipe, so
:class:`fixnorm_zoo.optim.fixnorm.FixNorm` builds this when its base optimizer is matrix-only.

Each matrix parameter gets a 2-D shadow tensor that the matrix optimizer owns: before its step the parameter and
its gradient are copied in (``reshape(out, -1)``, whatever the memory format, e.g. channels_last), after it the
result is copied back. Copies, not views: a view would silently detach when ``model.to(memory_format=...)`` or a
device move replaces a parameter's storage. The copies cost far less than the Newton-Schulz matmuls.

Needs only torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["MatrixOptimizer", "is_matrix_only"]

MATRIX_ONLY = ("Muon",)
"""Optimizer class names that refuse non-2-D parameters (torch's and timm's Muon)."""


def is_matrix_only(cls: type[torch.optim.Optimizer]) -> bool:
    """Whether ``cls`` accepts only 2-D parameters, so that conv filters must be flattened for it."""
    return cls.__name__ in MATRIX_ONLY


class MatrixOptimizer(torch.optim.Optimizer):
    """``matrix_cls`` on the >=2-D parameters of the groups flagged ``"matrix": True``, ``aux_cls`` on the rest.

    The outer ``param_groups`` hold the model's own parameters (so LR schedulers, gradient clipping and FixNorm's
    projection see the real tensors). Each step first copies every matrix group's ``lr`` (and ``lr_scale``-free
    fields a scheduler may change) into the matrix optimizer's group, so one schedule drives both.

    Args:
        groups: parameter groups; a group with ``"matrix": True`` goes to ``matrix_cls`` (all its tensors must have
            at least 2 dimensions), the others to ``aux_cls``.
        matrix_cls, matrix_kwargs: e.g. ``torch.optim.Muon`` and its arguments.
        aux_cls, aux_kwargs: e.g. ``torch.optim.SGD`` with ``momentum``/``nesterov``.

    Raises:
        ValueError: a matrix group holds a tensor with fewer than 2 dimensions.
    """

    SCHEDULED = ("lr",)

    def __init__(
        self,
        groups: list[dict[str, Any]],
        *,
        matrix_cls: type[torch.optim.Optimizer],
        matrix_kwargs: dict[str, Any],
        aux_cls: type[torch.optim.Optimizer],
        aux_kwargs: dict[str, Any],
    ) -> None:
        matrix_groups = [g for g in groups if g.get("matrix")]
        aux_groups = [g for g in groups if not g.get("matrix")]
        for g in matrix_groups:
            small = [tuple(p.shape) for p in g["params"] if p.ndim < 2]
            if small:
                raise ValueError(
                    f"{matrix_cls.__name__} takes only tensors of 2 or more dimensions; this group holds shapes "
                    f"{small}: put them in a group without 'matrix': True"
                )
        self.shadows: list[list[torch.Tensor]] = [
            [p.detach().reshape(p.shape[0], -1).clone() for p in g["params"]] for g in matrix_groups
        ]
        inner = [
            {"params": s, **{k: v for k, v in g.items() if k in self.SCHEDULED}}
            for s, g in zip(self.shadows, matrix_groups, strict=True)
        ]
        self.matrix_groups = matrix_groups
        self.matrix_optimizer = matrix_cls(inner, **matrix_kwargs) if inner else None
        self.aux_optimizer = aux_cls(aux_groups, **aux_kwargs) if aux_groups else None
        defaults = {**(self.aux_optimizer.defaults if self.aux_optimizer else {}), **matrix_kwargs}
        super().__init__(matrix_groups + aux_groups, defaults)
        # one group list, in the caller's order: the aux optimizer's groups are the very same dicts
        self.param_groups = [*matrix_groups, *(self.aux_optimizer.param_groups if self.aux_optimizer else [])]
        for g in matrix_groups:
            for k, v in defaults.items():
                g.setdefault(k, v)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.matrix_optimizer is not None:
            for group, inner, shadows in zip(
                self.matrix_groups, self.matrix_optimizer.param_groups, self.shadows, strict=True
            ):
                for k in self.SCHEDULED:
                    inner[k] = group[k]
                for p, s in zip(group["params"], shadows, strict=True):
                    s.copy_(p.reshape(s.shape))
                    s.grad = None if p.grad is None else p.grad.reshape(s.shape).to(s.dtype)
            self.matrix_optimizer.step()
            for group, shadows in zip(self.matrix_groups, self.shadows, strict=True):
                for p, s in zip(group["params"], shadows, strict=True):
                    if s.grad is not None:
                        p.copy_(s.view(p.shape))
                    s.grad = None
        if self.aux_optimizer is not None:
            self.aux_optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        """Both inner optimizers' states, plus the matrix groups' own fields (FixNorm's targets among them)."""
        return {
            "matrix": self.matrix_optimizer.state_dict() if self.matrix_optimizer else None,
            "aux": self.aux_optimizer.state_dict() if self.aux_optimizer else None,
            "matrix_groups": [{k: v for k, v in g.items() if k != "params"} for g in self.matrix_groups],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("matrix_groups", [])
        if len(saved) != len(self.matrix_groups) or (state_dict.get("aux") is None) != (
            self.aux_optimizer is None
        ):
            raise ValueError(
                "this optimizer state was saved for another parameter layout (matrix/aux groups differ); resume with "
                "the model and optimizer it was saved with"
            )
        if self.matrix_optimizer is not None:
            self.matrix_optimizer.load_state_dict(state_dict["matrix"])
        if self.aux_optimizer is not None:
            self.aux_optimizer.load_state_dict(state_dict["aux"])
        for group, fields in zip(self.matrix_groups, saved, strict=True):
            group.update(fields)
        self.param_groups = [
            *self.matrix_groups,
            *(self.aux_optimizer.param_groups if self.aux_optimizer else []),
        ]
