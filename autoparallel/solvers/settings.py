"""Solver settings: time limit, parallelism, seed; copied into every result."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field

from autoparallel.bounds import BOUNDS, UserInput, check_number, cpu_cores, revalidated
from autoparallel.errors import InputError, SolverTimeoutError

MIN_LEFT_S = 0.05
"""Less time than this left before a call's deadline: a later part of the call is not started."""


class SolverSettings(UserInput):
    """How CP-SAT runs. With one worker, the same settings on the same input give the same answer.

    Each number is bounded as `autoparallel.bounds.BOUNDS` bounds it (a seed CP-SAT's 32-bit
    `random_seed` holds, a finite time limit of at most a day, at most 4,096 workers), so that the
    constructor refuses what `create` refuses; only the lower end of `time_limit_s` is left open
    (any positive limit: the planners' own parts run on what a deadline leaves, `until`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    time_limit_s: float = Field(default=10.0, gt=0, le=BOUNDS["time_limit_s"].hi, allow_inf_nan=False)
    """Wall-clock limit of the whole planning call, seconds (`--time-limit`): CP-SAT's solves (the
    lexicographic levels, the runner-up, an explanation) share what the tables leave of it. On
    time-out the best solution found is returned with its bound and gap (status FEASIBLE); with none
    found, SolverTimeoutError. The cost model's tables stop at the limit too (`check_deadline`:
    before each serving entry, each training row), in the serving, deployment and training planners;
    a front (`pareto`) gives its tables and each of its queries the whole limit. `plan MODEL` holds
    one limit for the command: the sections after the plan get what it leaves (`until`)."""
    workers: int = Field(default=1, ge=BOUNDS["workers"].lo, le=BOUNDS["workers"].hi)
    """CP-SAT search workers. 1 (the default) is fully deterministic and, on these table-driven models,
    as fast as 2 on two cores (benchmarks/solver_workers.py). More run CP-SAT's parallel portfolio: a
    proven optimum has the same value, but which of several equally good plans is shown, and the plan
    found by a time limit, may vary from run to run. Models under `driver.PARALLEL_MIN_VARIABLES`
    variables (deployments, most training sub-models) run on one worker whatever this says."""
    seed: int = Field(default=0, ge=BOUNDS["seed"].lo, le=BOUNDS["seed"].hi)
    """CP-SAT `random_seed`."""
    lexicographic_tolerance: float = Field(default=0.0, ge=0, lt=1, allow_inf_nan=False)
    """Relative slack kept on an earlier objective while optimizing the next one (0: ties only)."""
    log_search: bool = False
    """Print CP-SAT's search log (debugging)."""

    def deadline(self) -> float:
        """The `time.perf_counter()` by which a planning call that starts now must end."""
        return time.perf_counter() + self.time_limit_s

    def until(self, deadline: float) -> SolverSettings | None:
        """These settings with the time left before `deadline` (a `time.perf_counter()`) as the limit,
        for a later part of the same call; None when under MIN_LEFT_S is left."""
        left = deadline - time.perf_counter()
        return self.model_copy(update={"time_limit_s": left}) if left > MIN_LEFT_S else None

    @classmethod
    def create(
        cls, *, time_limit_s: float | None = None, workers: int | None = None, seed: int = 0
    ) -> SolverSettings:
        """Settings with only the given fields changed from the defaults (None keeps a default); each is
        checked against its bound (`autoparallel.bounds.BOUNDS`), and `workers` is capped at the
        machine's CPU cores (more CP-SAT workers than cores only slow every worker down)."""
        seed = check_number("seed", seed)
        if time_limit_s is not None:
            time_limit_s = check_number("time_limit_s", time_limit_s, integer=False)
        if workers is not None:
            workers = min(check_number("workers", workers), cpu_cores())
        fields = {"seed": seed, "time_limit_s": time_limit_s, "workers": workers}
        return cls(**{k: v for k, v in fields.items() if v is not None})


def given_settings(settings: object) -> SolverSettings | None:
    """A public function's `settings` argument, once it is None or SolverSettings, validated again
    (`bounds.revalidated`: a copy's time limit of -1 s or 0 workers skipped the field bounds).

    Raises:
        InputError: anything else, or a field out of its bound.
    """
    if settings is None:
        return None
    if not isinstance(settings, SolverSettings):
        raise InputError(f"settings must come from SolverSettings.create(...), got {type(settings).__name__}")
    return revalidated(settings, "settings")


RAISE_LIMIT = "raise --time-limit, or SolverSettings' time_limit_s in Python"
"""What a time-out's message tells its reader to do, in the command line's words and the API's."""


def check_deadline(deadline: float | None) -> None:
    """Raise SolverTimeoutError when `deadline` (a `time.perf_counter()`; None: no limit) has passed
    while the cost model's tables were computed, before any CP-SAT call."""
    if deadline is not None and time.perf_counter() > deadline:
        raise SolverTimeoutError(
            "no feasible plan found within the time limit: it ran out while the cost model's "
            f"tables were computed, before CP-SAT could start ({RAISE_LIMIT})"
        )


class SolverStats(BaseModel):
    """How a solve went, with the settings that make it reproducible."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: str
    """OPTIMAL (proven), FEASIBLE (time limit hit: best found, see bound and gap) or ENUMERATED (oracle)."""
    wall_s: float
    """Wall time of the CP-SAT solves of this result (or of the enumeration), seconds."""
    objective_value: float
    """The primary objective in solver units (serving: milli-tokens/s, µs, µ$/Mtok or KiB;
    training: µs of step time, µs·GPUs or MiB)."""
    bound: float
    """CP-SAT's best bound on the primary objective, same units."""
    gap: float
    """Relative gap |value − bound| / max(1, |value|) of the primary objective (0 when optimal)."""
    solves: int
    """CP-SAT calls (lexicographic levels; a runner-up's not counted)."""
    seed: int
    """random_seed."""
    workers: int
    """num_workers."""
    time_limit_s: float
    """Per-solve time limit, seconds."""

    @classmethod
    def of(
        cls, *, status: str, wall_s: float, value: float, bound: float, solves: int, settings: SolverSettings
    ) -> SolverStats:
        """Statistics of a run under `settings`, the gap computed from the primary value and bound."""
        return cls(
            status=status,
            wall_s=wall_s,
            objective_value=value,
            bound=bound,
            gap=abs(value - bound) / max(1.0, abs(value)),
            solves=solves,
            seed=settings.seed,
            workers=settings.workers,
            time_limit_s=settings.time_limit_s,
        )
