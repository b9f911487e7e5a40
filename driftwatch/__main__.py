"""``python -m driftwatch``: the same command as the ``driftwatch`` script (benchmarks run it
with the interpreter they were started with)."""

import sys

from driftwatch.cli import main

sys.exit(main())
