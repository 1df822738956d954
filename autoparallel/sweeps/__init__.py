"""What-if sweeps: scenarios as data (`scenario`), run on any Executor (`execute`), results as tables
(`results`), trade-off fronts as tables and plots (`front`).

    >>> import autoparallel as ap
    >>> res = ap.sweep(models=["meta-llama/Llama-3.1-8B"], clusters=["1x8xH100", "1x8xA100-80G"],
    ...                workloads=["chatbot", {"isl": 4096, "osl": 512}], out="r.parquet")  # doctest: +SKIP
    >>> res.to_pandas().groupby("cluster").usd_per_million_tokens.min()                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoparallel.errors import InputError
from autoparallel.sweeps.scenario import (
    Scenario,
    check_sweep_size,
    from_rows,
    grid,
    load_scenarios,
    make_scenario,
)

if TYPE_CHECKING:
    from autoparallel.sweeps.results import SweepResult

__all__ = ["Scenario", "grid", "load_scenarios", "make_scenario", "sweep"]


def sweep(
    scenarios: Sequence[Scenario | Mapping[str, Any]] | str | Path | None = None,
    *,
    models: Sequence[Any] = (),
    clusters: Sequence[Any] = (),
    workloads: Sequence[str | Mapping[str, Any]] = ("chatbot",),
    objectives: Sequence[str] = (),
    objective: str = "throughput",
    engines: Sequence[str | None] = (None,),
    disagg: Sequence[str | None] = (None,),
    executor: Executor | str | None = None,
    workers: int | None = None,
    out: str | Path | None = None,
    progress: bool | None = None,
    time_limit_s: float = 10.0,
) -> SweepResult:
    """Best plan for every scenario: the given list, a scenario file, or the grid models × clusters ×
    workloads × objectives × engines. Failures are rows (status and message), never exceptions.

    Args:
        scenarios: Scenario objects or row mappings (the keys of a scenario file's row, e.g.
            {"model": ..., "cluster": ..., "isl": 4096}), or the path of a YAML / CSV scenario file
            (see `scenario`).
        models, clusters, workloads, objectives, engines: the grid, when `scenarios` is not given;
            a workload is a preset name or a mapping of serving or training fields.
        disagg: the grid's disaggregation modes ("auto", "on", "off"; None: the single-engine plan);
            a serving row with a mode records the winner's `mode`, `pd_ratio` and both sides'
            tokens/s/GPU (`plan --disagg`).
        objective: the single objective when `objectives` is empty.
        executor: "process" (default: a local pool), "serial", "dask://HOST:PORT" or an Executor.
        workers: local pool size (default: one per core; 1: in this process).
        out: results file (.parquet, .csv, .jsonl); finished scenarios in it are not solved again.
        progress: progress bar on stderr (default: when stderr is a terminal).
        time_limit_s: CP-SAT time limit per solve.

    Raises:
        InputError: bad scenarios, executor or results file (before anything is solved).
    """
    from autoparallel.sweeps.execute import run_scenarios

    if scenarios is None:
        for arg, value in (("models", models), ("clusters", clusters), ("workloads", workloads)):
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
                raise InputError(f"{arg} must be a non-empty list (e.g. {arg}=[...]), got {value!r:.80}")
        names = [m if isinstance(m, str) else str(getattr(m, "name", m)) for m in models]
        todo = grid(
            names,
            [str(c) if isinstance(c, str) else c.spec for c in clusters],
            list(workloads),
            list(objectives) or [objective],
            list(engines),
            list(disagg) if not isinstance(disagg, str) else [disagg],
        )
    elif isinstance(scenarios, (str, Path)):
        todo = load_scenarios(scenarios)
    elif isinstance(scenarios, Sequence) and not isinstance(scenarios, bytes):
        check_sweep_size(len(scenarios), "scenarios")
        todo = [_scenario(item, n) for n, item in enumerate(scenarios, 1)]
    else:
        kind = type(scenarios).__name__
        raise InputError(f"scenarios must be a list or a scenario file's path, got {kind}")
    return run_scenarios(
        todo, executor=executor, workers=workers, out=out, progress=progress, time_limit_s=time_limit_s
    )


def _scenario(item: object, n: int) -> Scenario:
    """The `n`-th item of `sweep`'s scenario list as a Scenario (a mapping is a scenario file's row)."""
    if isinstance(item, Scenario):
        return item
    if not isinstance(item, Mapping):
        raise InputError(f"scenarios: scenario {n} ({type(item).__name__}) is not a Scenario or a mapping")
    return from_rows([item], "scenarios", first=n)[0]
