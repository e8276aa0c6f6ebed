"""``python -m vqgen.cli``: the ``vqgen`` command."""

import sys

from vqgen.cli import main

sys.exit(main())
