"""Stop a training run cleanly when the cluster (or the user) says so, at a step every process agrees on.

Why: SLURM sends SIGTERM (or the signal ``#SBATCH --signal`` names, often SIGUSR1) some seconds before it kills a
job; submitit and Lightning checkpoint on it and requeue. A handler here only sets a flag. The training loop asks
:func:`agree` after every optimizer update, which all-reduces the flags (a max over ranks), so every process takes
the same branch at the same step and none is left blocking in a collective that its peers never enter. The run then
saves a checkpoint through the run directory's atomic path and raises :class:`Preempted`; the CLI prints one line
(where the checkpoint is, how to resume) and exits with :data:`EXIT_PREEMPTED` (SIGINT: :data:`EXIT_INTERRUPTED`).

The standard library at import (recipes validate their signal names with it); torch inside :func:`agree`.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["EXIT_INTERRUPTED", "EXIT_PREEMPTED", "StopSignals", "agree", "signal_numbers"]

EXIT_PREEMPTED = 75
"""Exit status after a preemption signal (sysexits' EX_TEMPFAIL, "try again later"): what a requeue script tests."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (SIGINT), the shell's convention: the checkpoint is saved, nothing is requeued."""
DEFAULT_SIGNALS = ("SIGTERM", "SIGUSR1")


def signal_numbers(names: list[str] | tuple[str, ...]) -> list[int]:
    """``["SIGTERM", "SIGUSR1"]`` -> signal numbers; an unknown name is a ValueError that lists the valid ones."""
    numbers = []
    for name in names:
        number = getattr(signal, str(name).upper(), None)
        if not isinstance(number, signal.Signals) or number in (signal.SIGKILL, signal.SIGSTOP):
            catchable = sorted(
                s.name
                for s in signal.Signals
                if s not in (signal.SIGKILL, signal.SIGSTOP) and s.name.isupper()
            )
            raise ValueError(f"signal {name!r}: not a catchable signal; choose from {catchable}")
        numbers.append(int(number))
    return numbers


class StopSignals:
    """A context that turns ``signals`` and SIGINT into a stop request (:attr:`received`), and restores the previous
    handlers on exit. A second SIGINT while a stop is pending raises KeyboardInterrupt (a user who insists). Outside
    the main thread (where Python cannot install handlers) it does nothing."""

    def __init__(self, signals: list[int]) -> None:
        self.signals = sorted({*signals, int(signal.SIGINT)})
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is None or signum == signal.SIGINT:
            self.received = signum

    @property
    def name(self) -> str | None:
        return None if self.received is None else signal.Signals(self.received).name

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()


def agree(accelerator, *values: float) -> list[float]:
    """Each value's maximum over every process (one small all-reduce; none with one process), so that all
    processes stop or checkpoint at the same step, and all name the signal that one of them received."""
    if accelerator.num_processes == 1:
        return [float(v) for v in values]
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=accelerator.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()
