"""Optimizers: FixNorm (a torch.optim.Optimizer) with its parameter roles, Muon for matrices, a recipe's optimizer.

Modules::

    fixnorm.py FixNorm and the parameter roles it acts on; imports only torch
    matrix.py  Muon (matrix-only) on conv filters flattened to out x rest, SGD on the rest; imports only torch
    factory.py a recipe's optimizer (FixNorm or the weight-decay twin) and schedule, through timm's factories
"""

from fixnorm_zoo._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "FixNorm": "fixnorm",
        "param_roles": "fixnorm",
        "norm_diagnostics": "fixnorm",
        "MatrixOptimizer": "matrix",
        "build_optimizer": "factory",
        "build_scheduler": "factory",
    },
)
