"""What-if sweeps: scenarios as data (`scenario`), run on any Executor (`execute`), results as tables
(`results`), trade-off fronts as tables and plots (`front`).

    >>> import autoparallel as ap
    >>> res = ap.sweep(models=["meta-llama/Llama-3.1-8B"], clusters=["1x8xH100", "1x8xA100-80G"],
    ...                workloads=["chatbot", {"isl": 4096, "osl": 512}], out="r.parquet")  # doctest: +SKIP
    >>> res.to_pandas().groupby("cluster").usd_per_million_tokens.min()                  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoparallel.bounds import check_number
from autoparallel.errors import InputError
from autoparallel.hardware import GPU, Cluster
from autoparallel.models import ModelSpec
from autoparallel.sweeps.scenario import (
    Hardware,
    Scenario,
    check_sweep_size,
    from_rows,
    grid,
    load_scenarios,
    make_scenario,
)
from autoparallel.workload import Serving, Training

if TYPE_CHECKING:
    from autoparallel.sweeps.results import SweepResult

__all__ = ["Scenario", "grid", "load_scenarios", "make_scenario", "sweep"]


def sweep(
    scenarios: Sequence[Scenario | Mapping[str, Any]] | str | Path | None = None,
    *,
    models: Sequence[str | ModelSpec] | str | ModelSpec = (),
    clusters: Sequence[str | Cluster] | str | Cluster = (),
    workloads: Sequence[str | Mapping[str, Any] | Serving | Training] | str | Serving | Training = (
        "chatbot",
    ),
    objectives: Sequence[str] | str = (),
    objective: str = "throughput",
    engines: Sequence[str | None] | str = (None,),
    disagg: Sequence[str | bool | None] | str = (None,),
    executor: Executor | str | None = None,
    workers: int | None = None,
    out: str | Path | None = None,
    progress: bool | None = None,
    time_limit_s: float = 10.0,
    gpus: Sequence[GPU] | str | Path = (),
    prices: Mapping[str, float] | str | None = None,
) -> SweepResult:
    """Best plan for every scenario: the given list, a scenario file, or the grid models × clusters ×
    workloads × objectives × engines. Failures are rows (status and message), never exceptions.

    Args:
        scenarios: Scenario objects or row mappings (the keys of a scenario file's row, e.g.
            {"model": ..., "cluster": ..., "isl": 4096}), or the path of a YAML / CSV scenario file
            (see `scenario`).
        models, clusters, workloads, objectives, engines: the grid, when `scenarios` is not given
            (a lone item is a one-item list; given with `scenarios`, an InputError, as `autoparallel
            sweep` refuses a scenario file with --models/--clusters); a model is an id, a path or a
            ModelSpec, a cluster a spec string or a Cluster, a workload a preset name, a mapping of
            serving or training fields, or a Serving / Training object. Objects travel with their
            scenarios, so workers plan exactly what was passed. A training mapping may set
            `grad_reduce_in_bf16: True` (Megatron's ZeRO 0-3, `TrainingOptions.grad_reduce_in_bf16`).
        disagg: the grid's disaggregation modes ("auto", "on", "off"; None: the single-engine plan);
            a serving row with a mode records the winner's `mode`, `pd_ratio` and both sides'
            tokens/s/GPU (`plan --disagg`).
        objective: the single objective when `objectives` is empty.
        executor: "process" (default: a local pool), "serial", "dask://HOST:PORT" or an Executor.
        workers: local pool size (default: one per core; 1: in this process).
        out: results file (.parquet, .csv, .jsonl); finished scenarios in it are not solved again.
        progress: progress bar on stderr (default: when stderr is a terminal).
        time_limit_s: CP-SAT time limit per solve.
        gpus, prices: custom GPU types (GPU objects or a GPU file's path) and US$ per GPU-hour (a
            mapping or "H100=2.49,..."), as `autoparallel sweep --gpus-file / --price` take them:
            cluster specs of the grid, of a scenario file and of row mappings are read with them,
            each cluster taking the prices of its own GPUs; a price no cluster has is refused.

    Raises:
        InputError: bad scenarios, grid, executor, workers, time limit or results file (before
            anything is solved).
    """
    from autoparallel.sweeps.execute import run_scenarios

    if workers is not None:
        workers = check_number("workers", workers)
    time_limit_s = check_number("time_limit_s", time_limit_s, integer=False)
    if executor is not None and not isinstance(executor, str | Executor):
        raise InputError(
            "executor must be 'process', 'serial', 'dask://HOST:PORT' or an Executor, got "
            f"{type(executor).__name__}"
        )
    if out is not None and not isinstance(out, str | PathLike):
        raise InputError(f"out must be a results file's path, got {type(out).__name__}")
    if progress is not None and not isinstance(progress, bool):
        raise InputError(f"progress must be True, False or None, got {type(progress).__name__}")
    given = _grid_given(
        models=models,
        clusters=clusters,
        workloads=workloads,
        objectives=objectives,
        objective=objective,
        engines=engines,
        disagg=disagg,
    )
    if scenarios is not None and given:
        raise InputError(
            "give either scenarios or the grid (models, clusters, ...), not both: scenarios were "
            f"given with {', '.join(given)}, which the sweep would ignore"
        )
    hardware = Hardware.of(gpus, prices)
    if scenarios is None:
        todo = grid(
            _axis(models, "models", (ModelSpec,), "a model id, a path or a ModelSpec"),
            [
                hardware.cluster(c) if isinstance(c, str) else c
                for c in _axis(
                    clusters, "clusters", (Cluster,), "a cluster string like '2x8xH100' or a Cluster"
                )
            ],
            _axis(
                workloads,
                "workloads",
                (Mapping, Serving, Training),
                "a preset name, a mapping of workload fields, Serving or Training",
            ),
            _axis(objectives, "objectives", (), "an objective name", empty=[objective]),
            _axis(engines, "engines", (type(None),), "an engine name or None"),
            _axis(disagg, "disagg", (bool, type(None)), "auto, on, off or None"),
        )
    elif isinstance(scenarios, (str, Path)):
        todo = load_scenarios(scenarios, hardware)
    elif isinstance(scenarios, Sequence) and not isinstance(scenarios, bytes):
        check_sweep_size(len(scenarios), "scenarios")
        todo = [_scenario(item, n, hardware) for n, item in enumerate(scenarios, 1)]
    else:
        kind = type(scenarios).__name__
        raise InputError(f"scenarios must be a list or a scenario file's path, got {kind}")
    hardware.check_used(todo)
    return run_scenarios(
        todo, executor=executor, workers=workers, out=out, progress=progress, time_limit_s=time_limit_s
    )


def _grid_given(**axes: Any) -> list[str]:
    """The grid arguments of `sweep` given other than at their defaults (its signature's; a list equal
    to a default tuple is the default), by name."""
    defaults = inspect.signature(sweep).parameters
    given = []
    for name, value in axes.items():
        default = defaults[name].default
        if isinstance(value, list | tuple):
            value = tuple(value)
        try:
            same = bool(value == default) if type(value) is type(default) else False
        except (TypeError, ValueError):  # an object whose == is not a truth value
            same = False
        if not same:
            given.append(name)
    return given


def _axis(
    value: Any, name: str, kinds: tuple[type, ...], what: str, empty: list[Any] | None = None
) -> list[Any]:
    """A grid axis as a list: a lone string or `kinds` instance is one item (not its characters);
    else a non-empty list of them (`empty`: what an empty one means, where it means something).

    Raises:
        InputError: not such a list, or an item of another type (named by its index).
    """
    if isinstance(value, (str, *kinds)):
        return [value]
    if isinstance(value, bytes | Mapping) or not isinstance(value, Iterable):
        raise InputError(f"{name} must be a list of {what}, got {type(value).__name__}")
    items = list(value)
    if not items:
        if empty is not None:
            return empty
        raise InputError(f"{name} must be a non-empty list (e.g. {name}=[...]), got []")
    for n, item in enumerate(items):
        if not isinstance(item, (str, *kinds)):
            raise InputError(f"{name}[{n}] must be {what}, got {type(item).__name__}")
    return items


def _scenario(item: object, n: int, hardware: Hardware) -> Scenario:
    """The `n`-th item of `sweep`'s scenario list as a Scenario (a mapping is a scenario file's row,
    its cluster read with `hardware`)."""
    if isinstance(item, Scenario):
        return item
    if not isinstance(item, Mapping):
        raise InputError(f"scenarios: scenario {n} ({type(item).__name__}) is not a Scenario or a mapping")
    return from_rows([item], "scenarios", first=n, hardware=hardware)[0]
