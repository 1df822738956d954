"""`python -m autoparallel`."""

import sys

from autoparallel.cli import main

sys.exit(main())
