"""autoparallel.solvers."""
