"""Solver settings: time limit, parallelism, seed; copied into every result."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SolverSettings(BaseModel):
    """How CP-SAT runs. The same settings on the same input give the same answer."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    time_limit_s: float = Field(default=10.0, gt=0)
    """Wall-clock limit per CP-SAT solve, seconds. On time-out the best solution found is returned
    with its bound and gap (status FEASIBLE); with none found, SolverTimeoutError."""
    workers: int = Field(default=1, ge=1)
    """CP-SAT search workers. 1 is fastest on the small serving models and fully deterministic; with
    more, the search is interleaved (`interleave_search`) so results stay reproducible."""
    seed: int = Field(default=0, ge=0)
    """CP-SAT `random_seed`."""
    lexicographic_tolerance: float = Field(default=0.0, ge=0, lt=1)
    """Relative slack kept on an earlier objective while optimizing the next one (0: ties only)."""
    log_search: bool = False
    """Print CP-SAT's search log (debugging)."""
