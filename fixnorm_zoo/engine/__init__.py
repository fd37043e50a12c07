"""The training engine: train(recipe) under Accelerate, its run directory and its metrics.

Modules::

    metrics.py top-1/top-5 counted once across processes; rows in timm's results-CSV columns
    rundir.py  RunDir: a run directory's file names, checkpoints and `latest`, summary, log, weights
    train.py   train(recipe, output_dir=, accelerator=): setup, train_one_epoch, evaluate_epoch, end_epoch, finish
"""

from fixnorm_zoo._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "RunDir": "rundir",
        "accuracy_counts": "metrics",
        "append_results_row": "metrics",
    },
)
