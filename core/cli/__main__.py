"""``python -m loc2.core.cli COMMAND``: the ``loc2`` command line (``make demo`` runs it so)."""

import sys

from loc2.core.cli import main

sys.exit(main())
