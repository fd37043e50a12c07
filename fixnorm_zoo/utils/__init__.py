"""Shared plumbing below everything else: atomic and locked file writes, package data, provenance, preemption.

Modules::

    atomic.py     atomic and locked file writes, one locked CSV append, fault points for the fault tests
    resources.py  the package's folders and the root folders shipped as package data (recipes/, model_cards/)
    provenance.py code revision, library versions and CPU/GPU of a result
    preemption.py stop on SIGTERM/SIGUSR1/SIGINT at a step all processes agree on; exit codes 75 / 130
    names.py      the one rule for run, zoo and file names
"""

from fixnorm_zoo._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "atomic_write_bytes": "atomic",
        "atomic_write_text": "atomic",
        "append_csv_rows": "atomic",
        "file_lock": "atomic",
        "package_data_dir": "resources",
        "StopSignals": "preemption",
        "EXIT_PREEMPTED": "preemption",
        "EXIT_INTERRUPTED": "preemption",
        "NAME": "names",
        "NAME_RULE": "names",
    },
)
