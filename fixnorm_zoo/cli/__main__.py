"""``python -m fixnorm_zoo.cli``: the same as the ``fixnorm-zoo`` command."""

import sys

from fixnorm_zoo.cli import main

sys.exit(main())
