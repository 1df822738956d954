"""autoparallel.models."""
