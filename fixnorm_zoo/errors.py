"""Every error a user can cause, in one place. Each subclasses the builtin that fits, and its message says what to
do about it."""

from __future__ import annotations


class FixNormZooError(Exception):
    """Base class of the package's errors."""


class RecipeError(FixNormZooError, ValueError):
    """A recipe field is unknown, ill-typed or out of range: the message names the field, the value and what is
    allowed."""


class UsageError(FixNormZooError, ValueError):
    """An argument's value cannot work (a batch size of 0, an unknown mode, a malformed repo id): the message names
    the argument, the value and what to give instead."""


class RegistryError(FixNormZooError, ValueError):
    """A registry file (``zoo.json``) or one of its entries is malformed, or a name in it is taken: the message
    names the file or the entry."""


class RegistryNotFound(RegistryError, FileNotFoundError):
    """The registry file named does not exist."""


class OutputError(FixNormZooError, ValueError):
    """A file or folder named for a command's output cannot be used as asked (a results CSV with other columns, a
    folder this command did not make, a trial log written for other settings): nothing was written to it."""


class CorruptFile(FixNormZooError, ValueError):
    """A file the package wrote and reads back (a trial log) is damaged or was edited: the message names the file,
    the line and how to recover."""


class MissingExtra(FixNormZooError, ModuleNotFoundError):
    """A feature needs an optional dependency that is not installed: the message gives the ``pip install`` line."""


class DataError(FixNormZooError, ValueError):
    """Training or evaluation data does not fit the model or the recipe, or cannot be read."""


class DataNotFound(DataError, FileNotFoundError):
    """Training or evaluation data is not where the recipe or ``--data-dir`` says (a file, folder or split missing)."""


class TrainingDiverged(FixNormZooError, FloatingPointError):
    """The loss became NaN or inf; the last good checkpoint is kept and named in the message."""


class UnknownModelError(FixNormZooError, LookupError):
    """A zoo name that does not exist; the message lists close matches."""


class WeightsUnavailable(FixNormZooError, LookupError):
    """A zoo entry's weights cannot be had from here: not published, not pushed, not in the mirror or the cache."""


class IntegrityError(FixNormZooError, ValueError):
    """A weights file's sha256 differs from the registry's: the file is refused, never loaded."""


class PublishRefused(FixNormZooError, RuntimeError):
    """The re-evaluation does not confirm the run's claim, the run cannot be re-evaluated as recorded, or a release
    folder holds what the zoo never uploads (pickles)."""


class ResultsNotSaved(FixNormZooError, OSError):
    """An evaluation finished but its row could not be written (a full disk, say): the message carries the
    measured numbers, so the work is not lost."""


class Preempted(FixNormZooError):
    """Training stopped on a signal (cluster preemption or Ctrl-C) after saving a checkpoint to resume from.

    Attributes:
        checkpoint: the checkpoint folder written at the stop.
        signal_name: e.g. ``"SIGTERM"``.
        exit_code: what the command exits with (``fixnorm_zoo.utils.preemption.EXIT_PREEMPTED`` or ``EXIT_INTERRUPTED``).
    """

    def __init__(self, message: str, *, checkpoint: str, signal_name: str, exit_code: int) -> None:
        super().__init__(message)
        self.checkpoint, self.signal_name, self.exit_code = checkpoint, signal_name, exit_code
