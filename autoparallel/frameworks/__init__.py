"""autoparallel.frameworks."""
