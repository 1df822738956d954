"""autoparallel.memory."""
