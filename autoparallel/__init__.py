"""autoparallel."""
