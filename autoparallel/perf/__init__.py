"""autoparallel.perf."""
