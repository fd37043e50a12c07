"""Tuning: search strategies over a knob lattice and the runner that scores them on real trials.

Modules::

    strategies.py pure search strategies over a knob lattice (ours, grid, random, TPE)
    runner.py     tune(): the strategies run on real trials, with a resumable trial log
"""

from fixnorm_zoo._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "tune": "runner",
        "run_search": "strategies",
        "SEARCHES": "strategies",
    },
)
