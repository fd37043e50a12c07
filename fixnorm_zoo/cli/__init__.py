"""``fixnorm-zoo``: the command line (``python -m fixnorm_zoo.cli`` too).

Each subcommand's options sit beside its handler (huggingface_hub's habit); the recipe options train and tune share
are declared once, in ``options``. Modules::

    app.py      main(): the parser, one ``error:`` line per user mistake, exit codes, logging to stdout
    options.py  the options and helpers several commands share (recipe options, registry help, rank 0)
    train.py    fixnorm-zoo train          tune.py     fixnorm-zoo tune
    eval.py     fixnorm-zoo eval           list.py     fixnorm-zoo list / info
    publish.py  fixnorm-zoo publish / push demo.py     fixnorm-zoo demo
"""

from fixnorm_zoo.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
