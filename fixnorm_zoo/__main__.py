"""``python -m fixnorm_zoo``: the ``fixnorm-zoo`` command."""

import sys

from fixnorm_zoo.cli import main

sys.exit(main())
