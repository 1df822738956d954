"""`python -m autoparallel`."""

from autoparallel.cli import entry

entry()
