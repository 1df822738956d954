"""Run scenarios on any `concurrent.futures.Executor`, one result row per scenario.

    workers = 1            in this process, one after the other
    default                a local process pool with one worker per core (`pool_size`: never more
                           processes than cores or scenarios to run)
    "dask://host:8786"     a Dask distributed scheduler (`Client.get_executor()`); its workers need
                           autoparallel installed
    an Executor instance   used as given (not shut down here)

Each worker calls the public `autoparallel.solve` with one CP-SAT search worker (the parallelism is
across scenarios). A failure of any kind becomes that scenario's row (status `infeasible`, `timeout`,
`error` or `internal`, with the message): the sweep goes on. Rows are appended to a journal next to
`out` as they finish, so a killed run loses nothing it had finished; see `results.ResultStore`.

A local process pool's workers ignore SIGINT: a Ctrl-C reaches the sweep's own process, which ends
them (`stop_pools`, which the CLI calls before it exits 130). A worker that dies (the kernel's
out-of-memory killer, a crash) breaks the pool: the scenario it was running becomes an `error` row
naming the death, and the scenarios not finished yet run again on a fresh pool (`_SweepPool`).
A Dask cluster that goes away mid-run (its scheduler killed) writes nothing for the scenarios it had
not finished; the sweep stops with one line, exit 1, and a rerun with the same `out` solves them
(`_run_chunks`). A Dask address is checked to answer as a scheduler within the connect timeout
(`_check_scheduler`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoparallel.errors import AutoParallelError, InputError
from autoparallel.sweeps.scenario import Scenario
from autoparallel.workload import Serving, Training, rps_text

if TYPE_CHECKING:
    from autoparallel.sweeps.results import SweepResult

DASK_CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a Dask scheduler before giving up with an input error."""
MAX_BLIND_REBUILDS = 2
"""Process pools a sweep rebuilds in a row after a worker died with no scenario to blame (it died
idle, or of a SIGTERM, which the pool itself sends its other workers); after that the scenarios left
are neither run nor written (a resume runs them) and the sweep stops with an error."""
STOP_GRACE_S = 2.0
"""How long a stopped pool's workers get to end on SIGTERM before they are sent SIGKILL."""


def solve_scenario(scenario: Scenario, time_limit_s: float = 10.0) -> dict[str, Any]:
    """One result row: the scenario's inputs, then the plan's headline numbers or the failure. A
    nearest fix credits a service limit to the scenario's preset or workload file only where the
    scenario's row did not write it itself (`Scenario.given_limits`, `remedies.GIVEN_LIMITS`, as
    `plan --ttft-ms` over a file); a `Serving` object's own limits are its preset's or its own, as
    `autoparallel.solve` credits them."""
    from autoparallel.solvers.serving.remedies import GIVEN_LIMITS

    given = GIVEN_LIMITS.set(scenario.given_limits)
    try:
        return _solve_scenario(scenario, time_limit_s)
    finally:
        GIVEN_LIMITS.reset(given)


def _solve_scenario(scenario: Scenario, time_limit_s: float) -> dict[str, Any]:
    """`solve_scenario`'s row."""
    from autoparallel.api import cost_at_a_rate, solve, with_benchmark
    from autoparallel.errors import AutoParallelError, InfeasibleError, InternalError, SolverTimeoutError
    from autoparallel.plan import ServingPlan
    from autoparallel.solvers.settings import SolverSettings

    start = time.perf_counter()
    row = input_row(scenario)
    try:
        settings = SolverSettings.create(time_limit_s=time_limit_s, workers=1)
        workload = scenario.to_workload()
        rated_cost = (
            scenario.disagg is None
            and isinstance(workload, Serving)
            and cost_at_a_rate(workload, scenario.objective)
        )
        if rated_cost and scenario.engine != "vllm":
            assert isinstance(workload, Serving)
            raise InputError(cost_at_a_rate_row(scenario, workload))  # as `solve` refuses it, in sweep terms
        if scenario.disagg is not None or rated_cost:
            # cost at a rate on vLLM: the deployment sized to the rate, as `plan MODEL --objective cost
            # --request-rate R` plans it (`disagg off`: the aggregated deployment alone), its $ per
            # million tokens at the rate `usd_per_million_tokens_at_rate` (`disagg_columns`)
            planned = (
                scenario if scenario.disagg is not None else scenario.model_copy(update={"disagg": "off"})
            )
            row.update(disagg_columns(planned, settings))
            row["wall_s"] = time.perf_counter() - start
            row["version"] = _version()
            return row
        plan = solve(
            scenario.load_model(),
            scenario.load_cluster(),
            workload,
            scenario.objective,
            settings=settings,
            options=planner_options(scenario),
        )
        if isinstance(plan, ServingPlan):  # N prompts at once: what `vllm bench serve` measures
            plan = with_benchmark(plan)
        row.update(plan_columns(plan))
        if isinstance(plan, ServingPlan):
            row.update(mode="aggregated", pd_ratio="")
        row["engine"] = scenario.engine  # the scenario's choice (auto stays auto); plan_engine runs it
        row["status"] = "ok" if plan.fits else "error"
        row["message"] = "" if plan.fits else "; ".join(plan.problems)[:500]
    except InternalError as exc:  # an AutoParallelError too, but our bug, not the scenario's input
        row.update(status="internal", message=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
    except AutoParallelError as exc:
        kind = (
            "infeasible"
            if isinstance(exc, InfeasibleError)
            else "timeout"
            if isinstance(exc, SolverTimeoutError)
            else "error"
        )
        row.update(status=kind, message=failure_message(exc))
    except Exception as exc:
        row.update(status="internal", message=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
    row["wall_s"] = time.perf_counter() - start
    row["version"] = _version()
    return row


def cost_at_a_rate_row(scenario: Scenario, workload: Serving) -> str:
    """The row error of an SGLang, TensorRT-LLM or auto row whose objective is cost at a request rate
    (`api.cost_at_a_rate`: the $/hour that sustains the rate, which the single-engine planner does not
    plan; a vLLM row gets it from the deployment planner, `disagg_columns`): what gives it, and what
    dropping the rate ranks."""
    rate = workload.request_rate
    assert rate is not None
    return (
        f"objective cost at request_rate={rate:g} req/s asks for the $/hour that sustains the rate, which "
        "a sweep plans for vllm rows only (the deployment sized to the rate); `autoparallel plan MODEL "
        f"--engine {scenario.engine} --objective cost --request-rate {rate:g}` plans it for "
        f"{scenario.engine}, or drop request_rate for $ per million tokens at full load"
    )


def failure_message(exc: Exception) -> str:
    """One line for a failed row: an infeasible request's binding constraints with their numbers, and
    its nearest feasible change (the headline's model, cluster and workload are the row's columns);
    else the error's first line."""
    from autoparallel.errors import InfeasibleError

    if isinstance(exc, InfeasibleError) and exc.reasons:
        fix = f"; nearest feasible change: {exc.fixes[0]}" if exc.fixes else ""
        text = "; ".join(exc.reasons) + fix
    elif isinstance(exc, InfeasibleError):  # the deployment planner's: its numbers on the lines below
        text = "; ".join(line.strip().removeprefix("- ") for line in str(exc).splitlines() if line.strip())
    else:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:500]


def planner_options(scenario: Scenario) -> Any:
    """The planner's options for the scenario's engine: serving, the engine(s) (auto: vLLM, SGLang and
    TensorRT-LLM compared); training, `Scenario.training_options` (the framework, and
    `grad_reduce_in_bf16` where the scenario sets it); None for the planner's defaults (vLLM,
    Megatron)."""
    if scenario.kind == "training":
        return scenario.training_options()
    if scenario.engine == "vllm":
        return None
    from autoparallel.solvers.serving.space import ServingOptions

    engines = ("vllm", "sglang", "trtllm") if scenario.engine == "auto" else (scenario.engine,)
    return ServingOptions(engines=engines)


def input_row(scenario: Scenario) -> dict[str, Any]:
    """The input columns of a scenario's row."""
    from autoparallel.sweeps.results import input_columns

    return {
        "scenario_id": scenario.id,
        "label": scenario.label,
        **input_columns(scenario.inputs),
        "workload": scenario.workload_label,
    }


def _version() -> str:
    from autoparallel.sweeps.scenario import package_version

    return package_version()


def plan_columns(plan: Any) -> dict[str, Any]:
    """Flat output columns of a serving or training plan."""
    from autoparallel.plan import ServingPlan
    from autoparallel.sweeps.front import plan_columns as shape_and_figures

    c, p = plan.config, plan.perf
    out: dict[str, Any] = {
        "solver_status": plan.solver.status,
        "solver_wall_s": plan.solver.wall_s,
        **shape_and_figures(plan),
    }
    if isinstance(plan, ServingPlan):
        out.pop("engine")
        out.update(
            plan_engine=plan.engine,
            enable_expert_parallel=c.enable_expert_parallel,
            throughput_tok_s_per_gpu=p.output_tokens_per_s_per_gpu,
            requests_per_s=p.requests_per_s,
        )
        return out
    out["throughput_tok_s_per_gpu"] = p.tokens_per_s_per_gpu
    if plan.workload.tokens:
        from autoparallel.perf.training import TrainingPerf, cost_to_tokens

        cost = cost_to_tokens(
            plan.model, plan.cluster, c, plan.workload.tokens, perf=TrainingPerf.model_validate(p)
        )
        out.update(usd_to_train=cost.usd, hours_to_train=cost.time_s / 3600.0)
    return out


def disagg_columns(scenario: Scenario, settings: Any) -> dict[str, Any]:
    """The `plan --disagg` comparison of a serving scenario as columns: the winner's mode, P:D ratio,
    engines and figures, and both sides' tokens/s/GPU (empty when a side has no deployment). The
    scenario's objective is planned as `plan --objective` plans its deployments
    (`objectives.deployment_objective`: cost is $/hour at the rate), and a request rate is a demand,
    as in `plan`: a winner that cannot carry it makes the row `infeasible`, with the numbers.

    The figures mean what a plan row's do: `throughput_tok_s` (and per GPU), `usd_per_million_tokens`,
    `ttft_ms` and `tpot_ms` at the winner's capacity within the SLOs, `usd_per_hour` of its GPUs. What it
    serves of the rate is `goodput_tok_s` (the throughput without a rate), and with a rate what that costs is
    `usd_per_million_tokens_at_rate`: the deployment's own $ per million tokens, its $/hour over
    `goodput_tok_s`, the figure `plan MODEL --request-rate R` prints for it. A
    disaggregated winner's TTFT at a rate below its capacity is `ttft_ms_at_rate` (its prefill queues at that
    load; `ttft_ms` is then empty: the deployment is not priced at capacity). `agg_tok_s_per_gpu` /
    `disagg_tok_s_per_gpu` are both sides' tokens/s per GPU as the objective counts them (`disagg.MEASURES`):
    goodput (up to the rate) where goodput is compared, capacity at the SLOs otherwise; `disagg_why` states
    the numbers the verdict compared. An objective the deployments are not planned at (ttft, headroom) is said
    in the row's message (`objectives.deployment_objective_note`, as `plan` prints it); a deployment objective
    (gpus, cost_per_mtok, goodput) is planned as `plan --disagg --objective` plans it
    (`scenario.scenario_objective`).

    Raises:
        AutoParallelError: what `compare_disagg` raises (no deployment; `on` and no disaggregated one).
    """
    from autoparallel.disagg import _agg_summary, _capacity_rps, _disagg_summary, compare_disagg
    from autoparallel.objectives import deployment_objective, deployment_objective_note
    from autoparallel.sweeps.scenario import scenario_objective

    w = scenario.to_workload()
    assert not isinstance(w, Training)
    has_rate = w.request_rate is not None
    # the registry name (`Cost` is cost, `GPUS` gpus): a serving one's, else the deployment planner's
    name = scenario_objective(scenario.objective, "serving", disagg=True)
    comp = compare_disagg(
        scenario.load_model(),
        w,
        scenario.load_cluster(),
        mode=scenario.disagg or "auto",
        objective=deployment_objective(name, has_rate),
        settings=settings,
    )
    note = deployment_objective_note(name, has_rate)
    agg, dis = _agg_summary(comp.aggregated), _disagg_summary(comp.disaggregated)
    win = dis if comp.mode == "disaggregated" else agg
    assert win is not None
    per_gpu = "tokens_per_s_per_gpu" if comp.measure == "goodput" else "capacity_tokens_per_s_per_gpu"
    capacity_rps = _capacity_rps(comp.aggregated, comp.disaggregated, comp.mode)
    capacity = capacity_rps * w.osl
    if comp.mode == "disaggregated":
        usd_per_hour = comp.disaggregated.usd_per_hour
        below_capacity = comp.disaggregated.served_rps < capacity_rps * (1 - 1e-9)
    else:
        assert comp.aggregated is not None
        usd_per_hour, below_capacity = comp.aggregated.deployment.usd_per_hour, False
    out: dict[str, Any] = {
        "mode": comp.mode,
        "pd_ratio": win.get("ratio", ""),
        "engines": win["layout"],
        "gpus": win["gpus_used"],
        "throughput_tok_s": capacity,
        "throughput_tok_s_per_gpu": capacity / win["gpus_used"] if win["gpus_used"] else 0.0,
        "goodput_tok_s": win["goodput_tokens_per_s"],
        "ttft_ms": None if below_capacity else win["ttft_ms"],
        "tpot_ms": win["tpot_ms"],
        "usd_per_hour": usd_per_hour,
        "usd_per_million_tokens": usd_per_hour / (capacity * 3600.0) * 1e6 if capacity else math.inf,
        # what `plan` prints for the deployment: its $/hour over the tokens/s it serves of the rate
        **({"usd_per_million_tokens_at_rate": win["usd_per_million_tokens"]} if has_rate else {}),
        **({"ttft_ms_at_rate": win["ttft_ms"]} if below_capacity else {}),
        "solver_status": win["solver_status"],
        "solver_wall_s": (agg or {}).get("wall_s", 0.0) + (dis or {}).get("wall_s", 0.0),
        "agg_tok_s_per_gpu": agg[per_gpu] if agg else None,
        "disagg_tok_s_per_gpu": dis[per_gpu] if dis else None,
        "disagg_why": comp.why[:500],
        "status": "ok",
        "message": note[:500],
    }
    if comp.unmet_rps > 0:
        carried = (w.request_rate or 0.0) - comp.unmet_rps
        out.update(
            status="infeasible",
            message=(
                f"request_rate: {w.request_rate:g} requests/s arrive; the best {comp.mode} deployment "
                f"({win['layout']}) carries {rps_text(carried)}/s at the SLOs" + (f"; {note}" if note else "")
            )[:500],
        )
    return out


_MARKS_DIR: str | None = None
"""In a pool worker: the folder where it writes the id of the scenario it is running (`_SweepPool`)."""


PARENT_POLL_S = 1.0
"""How often a pool worker checks that the sweep's process is still its parent (`_worker_init`)."""


def _worker_init(marks_dir: str, sweep_pid: int) -> None:
    """A pool worker's start: SIGINT ignored (the sweep's process ends its workers on Ctrl-C, where a
    worker's own KeyboardInterrupt left it waiting on the pool's queue for ever once the parent had
    gone), where to mark the scenario it runs, and a watch on its parent: a sweep's process killed
    outright (SIGKILL, as the out-of-memory killer sends: no handler runs, `stop_pools` neither) left
    its workers re-parented and waiting on the pool's queue for ever, and its marks folder behind; each
    now removes the folder and exits within `PARENT_POLL_S` of the death of the sweep's process
    (`sweep_pid`) or of the parent it started with (the sweep's process under fork and spawn, the fork
    server under forkserver, Python 3.14's default on Linux, which outlives the sweep's process while
    it has workers: a worker comparing its parent with `sweep_pid` ended at once there)."""
    global _MARKS_DIR
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _MARKS_DIR = marks_dir
    parent_pid = os.getppid()

    def watch() -> None:
        while os.getppid() == parent_pid and _alive(sweep_pid):
            time.sleep(PARENT_POLL_S)
        shutil.rmtree(marks_dir, ignore_errors=True)  # the parent's `discard_marks` never ran
        os._exit(1)

    threading.Thread(target=watch, name="autoparallel-sweep-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _solve_marked(scenario: Scenario, time_limit_s: float) -> dict[str, Any]:
    """`solve_scenario` in a pool worker, which first writes the scenario's id to a file named by its
    pid, so that a worker that dies is matched to the scenario it was running (`_SweepPool.blame`)."""
    if _MARKS_DIR is not None:
        with contextlib.suppress(OSError):  # the folder went away: nothing to blame then
            Path(_MARKS_DIR, str(os.getpid())).write_text(scenario.id)
    return solve_scenario(scenario, time_limit_s)


class _SweepPool(ProcessPoolExecutor):
    """The local process pool of a sweep: its workers ignore SIGINT and mark the scenario they run, it
    can be stopped from another thread (`stop_pools`), and after a worker's death it says which
    scenario that worker was running."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.stopped = False
        self.stopping: list[Any] | None = None
        """The workers `stop` ends, as its first call found them (the pool forgets them at shutdown)."""
        self.marks = tempfile.mkdtemp(prefix="autoparallel-sweep-")
        super().__init__(max_workers=size, initializer=_worker_init, initargs=(self.marks, os.getpid()))

    def workers(self) -> list[Any]:
        """The worker processes (multiprocessing.Process) started so far."""
        for _ in range(3):  # the pool's own thread may change the mapping while it is read
            try:
                return list(dict(getattr(self, "_processes", None) or {}).values())
            except RuntimeError:  # pragma: no cover - "dictionary changed size during iteration"
                continue
        return []  # pragma: no cover

    def stop(self) -> None:
        """Drop the queued scenarios and end the workers (SIGTERM, then SIGKILL after `STOP_GRACE_S`).
        Called again (a second Ctrl-C broke into the first call's joins, `cli._interrupted`), it ends the
        workers the first call found: `shutdown` has forgotten them by then."""
        self.stopped = True
        if self.stopping is None:
            self.stopping = self.workers()
        procs = self.stopping
        self.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(OSError, ValueError):  # already gone
                p.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for p in procs:
            try:
                p.join(max(deadline - time.monotonic(), 0.0))
                if p.is_alive():
                    p.kill()
                    p.join(1.0)
            except (OSError, ValueError, AssertionError):  # pragma: no cover - already gone
                pass
        self.discard_marks()  # the CLI's `os._exit` follows: no `_process_pool` exit to remove them

    def blame(self, lost: Sequence[Scenario], procs: Sequence[Any]) -> dict[str, str]:
        """{scenario id: how its worker died} for the unfinished scenarios (`lost`) that a dead worker of
        `procs` (`workers()` before the shutdown, which forgets them) was running; call after
        `shutdown(wait=True)`, when the workers are joined. A worker ended by SIGTERM is not blamed: the
        pool sends it to the workers left when one dies."""
        ids = {s.id for s in lost}
        out: dict[str, str] = {}
        for p in procs:
            code = p.exitcode
            if code is None or code == -signal.SIGTERM or p.pid is None:
                continue
            try:
                running = Path(self.marks, str(p.pid)).read_text().strip()
            except OSError:
                continue
            if running in ids:
                out[running] = f"pid {p.pid}, {_death(code)}"
        return out

    def discard_marks(self) -> None:
        shutil.rmtree(self.marks, ignore_errors=True)


def _death(code: int) -> str:
    """A worker's exit code in words: `killed by SIGKILL (...)`, `exited with status 1`."""
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hint = ", as the kernel's out-of-memory killer ends a process" if -code == signal.SIGKILL else ""
    return f"killed by {name}{hint}"


_LIVE_POOLS: set[_SweepPool] = set()
"""The process pools of the sweeps running in this process (`stop_pools`)."""


def stop_pools() -> None:
    """End every sweep process pool of this process: queued scenarios dropped, workers terminated, the
    running sweeps stopped without writing rows for them. The CLI calls it on Ctrl-C before its
    `os._exit`, which would otherwise leave the workers behind, re-parented and waiting for ever."""
    for pool in list(_LIVE_POOLS):
        pool.stop()


@contextmanager
def _process_pool(size: int) -> Iterator[_SweepPool]:
    """A fresh `_SweepPool`, registered for `stop_pools`; stopped on an exception (Ctrl-C: the queue
    dropped, what finished kept), else shut down when its scenarios are done."""
    pool = _SweepPool(size)
    _LIVE_POOLS.add(pool)
    try:
        try:
            yield pool
        except BaseException:
            pool.stop()
            raise
        pool.shutdown(wait=True)
    finally:
        _LIVE_POOLS.discard(pool)
        pool.discard_marks()


def pool_size(workers: int | None, tasks: int | None = None) -> int:
    """Processes of a sweep's local pool: `workers` (None: one per core), at most the CPU cores this
    process may run on (`bounds.cpu_cores`, the bound `BOUNDS["workers"]` states and `plan --workers`
    keeps to) and at most the `tasks` (scenarios) to run; at least 1. A pool on the fork start method
    starts every worker up front: `sweep --workers 4096` of one scenario on 2 cores spent minutes
    forking, and 160 s to act on a Ctrl-C, for 4,095 idle processes."""
    from autoparallel.bounds import cpu_cores

    size = min(workers or cpu_cores(), cpu_cores())
    if tasks is not None:
        size = min(size, tasks)
    return max(1, size)


@contextmanager
def open_executor(
    executor: Executor | str | None,
    workers: int | None,
    connect_timeout_s: float | None = None,
    tasks: int | None = None,
) -> Iterator[Executor | None]:
    """The executor to run on (None: in this process). A local process pool has `pool_size(workers,
    tasks)` processes; `workers` above the cores is said on stderr, as `plan --workers` says it. A
    Dask cluster runs on its own workers (`sweep --workers` is refused with it).

    Raises:
        InputError: an unknown executor spec or an unreachable Dask scheduler.
    """
    if isinstance(executor, Executor):
        yield executor
        return
    spec = (executor or "process").strip()
    import multiprocessing

    # A daemonic process (a worker of someone else's pool) may not start children: run serially there.
    daemon = multiprocessing.current_process().daemon
    if (spec == "process" and (workers == 1 or daemon or tasks == 0)) or spec == "serial":
        yield None
        return
    if spec == "process":
        # Python's default start method (fork on Linux before 3.14): scripts need no __main__ guard there.
        # This process starts no threads of its own before the pool forks (see `progress_bar`).
        size = pool_size(workers, tasks)
        cores = pool_size(None)
        if workers is not None and workers > cores:
            print(
                f"note: {workers} workers capped at this machine's {cores} CPU cores; running "
                f"{size} process{'' if size == 1 else 'es'}",
                file=sys.stderr,
            )
        with _process_pool(size) as pool:
            yield pool
        return
    if spec.startswith(("dask://", "tcp://")):
        address = _dask_address(spec)
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - a declared dependency
            raise InputError("--executor dask://...: the `distributed` package is not installed") from None
        timeout = connect_timeout_s or DASK_CONNECT_TIMEOUT_S
        _check_scheduler(address, timeout)  # a port that is no scheduler's: one line, within `timeout`
        try:
            client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"cannot reach the Dask scheduler at {address}: {first}") from None
        quiet = _QuietWhenGone(client)
        loggers = [logging.getLogger(name) for name in _DASK_LOGGERS]
        for logger in loggers:
            logger.addFilter(quiet)
        try:
            yield client.get_executor()
        finally:
            try:
                client.close()
            finally:
                for logger in loggers:
                    logger.removeFilter(quiet)
        return
    raise InputError(f"unknown executor {spec!r}; use process, serial or dask://HOST:PORT")


_DASK_LOGGERS = ("distributed.client", "distributed.core", "distributed.comm", "distributed.utils")
"""Dask's loggers that report a lost scheduler (`_QuietWhenGone`)."""


class _QuietWhenGone(logging.Filter):
    """Drops Dask's log records once its client no longer runs (the scheduler went away: its reconnect
    attempts, "Failed to reconnect", the traceback of the reconnect cancelled by `close`): the sweep
    says it in one line (`_run_chunks`)."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(self.client, "status", "running") in ("running", "newly-created")


def _check_scheduler(address: str, timeout: float) -> None:
    """Check that a Dask scheduler answers at `address` (`tcp://HOST:PORT`) within `timeout` seconds,
    before a `Client` is made: a port that accepts connections but is no scheduler's (its dashboard,
    an HTTP server, a silent listener) hung a `Client` for minutes (Dask's handshake read has no
    timeout), or failed after 20 s with `MemoryError: Unable to allocate 3.07 EiB` (an HTTP reply read
    as a frame length) and a traceback from the half-made client's `__del__`. The TCP port is tried
    until the deadline (a scheduler still starting), then Dask's handshake and an `identity` request
    run on their own event loop in a daemon thread that is waited for no longer than the deadline.

    Raises:
        InputError: nothing listens there (`cannot reach the Dask scheduler`), or what answers is no
            Dask scheduler, or nothing answered in time (`no Dask scheduler answered at`).
    """
    import asyncio
    import socket

    deadline = time.monotonic() + timeout
    parts = urllib.parse.urlsplit(address)
    while True:
        try:
            socket.create_connection(
                (parts.hostname, parts.port), timeout=max(deadline - time.monotonic(), 0.05)
            ).close()
            break
        except OSError as exc:
            if time.monotonic() + 0.2 >= deadline:
                why = (str(exc) or type(exc).__name__).splitlines()[0]
                raise InputError(
                    f"cannot reach the Dask scheduler at {address}: {why} (tried for {timeout:g} s)"
                ) from None
            time.sleep(0.2)

    async def identity() -> Any:
        from distributed.comm import connect

        comm = await connect(address, timeout=max(deadline - time.monotonic(), 0.05))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    answer: dict[str, Any] = {}

    def probe() -> None:
        try:
            left = max(deadline - time.monotonic(), 0.05)
            answer["reply"] = asyncio.run(asyncio.wait_for(identity(), left))
        except BaseException as exc:  # a bogus frame's MemoryError too: said below, never raised here
            answer["error"] = exc

    thread = threading.Thread(target=probe, name="autoparallel-dask-probe", daemon=True)
    thread.start()
    thread.join(max(deadline - time.monotonic(), 0.0) + 1.0)
    reply, failure = answer.get("reply"), answer.get("error")
    if isinstance(reply, dict) and reply.get("type") == "Scheduler":
        return
    if isinstance(reply, dict) and reply.get("type"):
        why = f"a Dask {reply['type']} answered; give the scheduler's address"
    elif thread.is_alive() or isinstance(failure, TimeoutError | asyncio.TimeoutError):
        why = "the port accepts connections but nothing answered as a Dask scheduler (a dashboard?)"
    elif failure is not None:
        first = str(failure).splitlines()[0][:200] if str(failure) else ""
        why = f"what answered is no Dask scheduler ({type(failure).__name__}{': ' + first if first else ''})"
    else:
        why = f"what answered is no Dask scheduler (it replied {str(reply)[:100]!r})"
    raise InputError(f"no Dask scheduler answered at {address} within {timeout:g} s: {why}")


def _dask_address(spec: str) -> str:
    """The scheduler address `tcp://HOST:PORT` of `dask://HOST:PORT`, checked before a `Client` is
    made: a client built on a malformed address fails, then its finalizer spends 20 s closing and
    prints a traceback at exit.

    Raises:
        InputError: no host, no port, or a port outside 1-65535.
    """
    address = "tcp://" + spec.split("://", 1)[1]
    try:
        parts = urllib.parse.urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # "[::1" (an unclosed IPv6 bracket), port 99999
        raise InputError(f"--executor {spec!r}: {exc}; use dask://HOST:PORT") from None
    if not host or port is None or port == 0:
        raise InputError(f"--executor {spec!r}: use dask://HOST:PORT (the scheduler's port, 8786 by default)")
    return address


def progress_bar(total: int | None, show: bool | None, unit: str = "scenario") -> Any:
    """A tqdm bar on stderr (`total` None: a count without an end), shown when `show` says so, by default
    when stderr is a terminal (the sweep's scenarios, a front's points)."""
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: the process pool may fork after the bar starts
    visible = sys.stderr.isatty() if show is None else show
    return tqdm(
        total=total, file=sys.stderr, disable=not visible, unit=unit, smoothing=0.1, dynamic_ncols=True
    )


def distinct_scenarios(scenarios: Sequence[Scenario]) -> list[Scenario]:
    """Each scenario once (by `Scenario.id`: one scenario written two ways, `1x2xH100` and
    `1x2xH100-SXM`, `chatbot` and `{preset: chatbot}`, has one id), in order, under its first spelling
    (the first row's cluster string is the one its row shows; the last one's was)."""
    first: dict[str, Scenario] = {}
    for s in scenarios:
        first.setdefault(s.id, s)
    return list(first.values())


def run_scenarios(
    scenarios: Sequence[Scenario],
    *,
    executor: Executor | str | None = None,
    workers: int | None = None,
    out: str | Path | None = None,
    progress: bool | None = None,
    time_limit_s: float = 10.0,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Solve every scenario; with `out`, skip those already in it (resume) and save every row.

    Args:
        executor: an Executor, "process" (default), "serial" or "dask://HOST:PORT".
        workers: process-pool size (default: one per core; 1 runs in this process), capped at the
            cores and at the scenarios to run (`pool_size`).
        out: results file (.parquet, .csv or .jsonl), read first and rewritten at the end.
        progress: show a progress bar on stderr (default: only when stderr is a terminal).
        on_row: called with each finished row (in completion order).

    Raises:
        InputError: bad executor or results file; nothing already in `out` is lost.
    """
    from autoparallel.sweeps.results import ResultStore, SweepResult

    store = ResultStore(out) if out is not None else None
    done = store.load() if store else []
    done_ids = {r["scenario_id"] for r in done}
    unique = distinct_scenarios(scenarios)
    todo = [s for s in unique if s.id not in done_ids]
    wanted = {s.id for s in unique}
    rows: list[dict[str, Any]] = [r for r in done if r["scenario_id"] in wanted]

    def record(row: dict[str, Any]) -> None:
        rows.append(row)
        if store:
            store.append(row)
        if on_row:
            on_row(row)
        bar.update(1)

    try:
        with (
            open_executor(executor, workers, tasks=len(todo)) as pool,
            progress_bar(len(todo), progress) as bar,
        ):
            if pool is None:
                for s in todo:
                    record(solve_scenario(s, time_limit_s))
            else:
                _run_pooled(pool, todo, time_limit_s, record)
    finally:
        if store:
            store.commit([s.id for s in unique])
    order = {s.id: n for n, s in enumerate(unique)}
    rows.sort(key=lambda r: order[r["scenario_id"]])
    return SweepResult(rows, skipped=len(unique) - len(todo))


def _run_pooled(
    pool: Executor, todo: Sequence[Scenario], time_limit_s: float, record: Callable[[dict[str, Any]], None]
) -> None:
    """Run `todo` on `pool`, recording each row as it finishes. A worker's death breaks a process pool:
    the scenario it was running is recorded as an `error` row that says so, and the scenarios not
    finished run again on a fresh pool of the same size; they are never written as failed.

    Raises:
        KeyboardInterrupt: the pool was stopped (`stop_pools`).
        AutoParallelError: a pool broke `MAX_BLIND_REBUILDS` + 1 times in a row with no scenario to
            blame, or a caller's own process pool broke (it cannot be rebuilt here); the scenarios left
            are not written, so a resume runs them.
    """
    lost, blamed = _run_round(pool, todo, time_limit_s, record)
    size = pool.size if isinstance(pool, _SweepPool) else 0
    blind = 0
    while lost:
        for s in lost:
            if s.id in blamed:
                record(
                    {
                        **input_row(s),
                        "status": "error",
                        "message": f"the worker process running this scenario died ({blamed[s.id]})",
                        "version": _version(),
                    }
                )
        left = [s for s in lost if s.id not in blamed]
        if not left:
            return
        blind = 0 if blamed else blind + 1
        if not size or blind > MAX_BLIND_REBUILDS:
            why = (
                f"died with none of them running, {blind} pools in a row"
                if size
                else "died, and a pool passed in is not rebuilt here"
            )
            raise AutoParallelError(
                f"{len(left)} scenarios not run: a worker of the process pool {why}; what finished is "
                "kept, and running the sweep again with the same results file runs the rest"
            )
        with _process_pool(size) as fresh:
            lost, blamed = _run_round(fresh, left, time_limit_s, record)


CHUNK_MAX = 16
"""Most scenarios one task of a Dask (or caller's) executor solves (`_chunks`): a cheap scenario takes
about 10 ms, as long as Dask's own cost per task, and 2,000 of them ran slower on 2 Dask workers than
serially (49-79 s vs 36-57 s). The rows of a chunk are recorded when it ends."""
CHUNKS_PER_THREAD = 8
"""Chunks per worker thread at least, where the scenarios allow (an even finish: a slow chunk is short)."""


def _threads(pool: Executor) -> int | None:
    """The worker threads of a Dask cluster's executor (`Client.nthreads`, through the executor's client),
    None for another executor (its scenarios go one per task)."""
    nthreads = getattr(getattr(pool, "_client", None), "nthreads", None)
    return sum(nthreads().values()) if callable(nthreads) else None


def _chunks(todo: Sequence[Scenario], threads: int | None) -> list[list[Scenario]]:
    """`todo` in order, in chunks of up to CHUNK_MAX scenarios, CHUNKS_PER_THREAD chunks or more for each
    of `threads` (None or a few scenarios: one scenario a chunk)."""
    size = 1 if not threads else max(1, min(CHUNK_MAX, len(todo) // (CHUNKS_PER_THREAD * threads)))
    return [list(todo[i : i + size]) for i in range(0, len(todo), size)]


def solve_chunk(chunk: Sequence[Scenario], time_limit_s: float) -> list[dict[str, Any]]:
    """`solve_scenario`'s rows of `chunk`, in order: one task of a Dask executor (`_chunks`)."""
    return [solve_scenario(s, time_limit_s) for s in chunk]


def _run_chunks(
    pool: Executor,
    chunks: list[list[Scenario]],
    time_limit_s: float,
    record: Callable[[dict[str, Any]], None],
) -> list[Scenario]:
    """Solve `chunks` on a Dask (or caller's) executor, recording each row: the scenarios of a chunk
    whose task failed (its worker died: Dask's KilledWorker) run again one a task, so that only the one
    that fails alone is an `internal` row; its chunk mates were written as failed, and a resume skipped
    them. Returns the scenarios a caller's broken process pool did not run (`_run_pooled` says so).

    A task that failed because the cluster went away (`_cluster_gone`: the scheduler killed, its
    connection lost, the client closed, the futures cancelled) writes nothing for its scenarios: they
    were written as `internal` rows (every message `CancelledError: `), and a resume skipped them.

    Raises:
        AutoParallelError: the cluster went away; what finished is kept, the scenarios not solved are
            not written, so a resume runs them (as a process pool's lost scenarios, exit 1).
    """
    gone: list[Scenario] = []
    whys: list[str] = []
    broken = _run_chunks_once(pool, chunks, time_limit_s, record, gone, whys)
    if gone:
        why = whys[0].removesuffix(": ")
        raise AutoParallelError(
            f"{len(gone)} scenario{'s' if len(gone) != 1 else ''} not solved: the Dask cluster went away "
            f"({why}); what finished is kept, and running the sweep again with the same results file "
            "solves the rest"
        )
    return broken


def _run_chunks_once(
    pool: Executor,
    chunks: list[list[Scenario]],
    time_limit_s: float,
    record: Callable[[dict[str, Any]], None],
    gone: list[Scenario],
    whys: list[str],
) -> list[Scenario]:
    """`_run_chunks`' rounds: the scenarios of the cluster that went away are added to `gone` (with
    why to `whys`), not recorded, and not run again."""
    futures: dict[Any, list[Scenario]] = {}
    for n, c in enumerate(chunks):
        try:
            futures[pool.submit(solve_chunk, c, time_limit_s)] = c
        except Exception as exc:
            if not _cluster_gone(exc, pool):
                raise
            whys.append(_why(exc))
            gone.extend(s for rest in chunks[n:] for s in rest)
            break
    broken: list[Scenario] = []
    again: list[list[Scenario]] = []
    for fut in as_completed(futures):
        try:
            rows = fut.result()
        except BrokenProcessPool:
            broken += futures[fut]
            continue
        except Exception as exc:
            if _cluster_gone(exc, pool):
                whys.append(_why(exc))
                gone.extend(futures[fut])
                continue
            if len(futures[fut]) > 1:
                again += [[s] for s in futures[fut]]
                continue
            rows = [
                {**input_row(s), "status": "internal", "message": _why(exc), "version": _version()}
                for s in futures[fut]
            ]
        for row in rows:
            record(row)
    if gone:  # not run again on a cluster that is gone
        gone.extend(s for c in again for s in c)
        return broken
    return broken + (_run_chunks_once(pool, again, time_limit_s, record, gone, whys) if again else [])


def _why(exc: BaseException) -> str:
    """An exception's first line, `Type: message`, at most 500 characters."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


def _cluster_gone(exc: BaseException, pool: Executor) -> bool:
    """Whether a task failed because its Dask cluster went away, not because of its scenario: the
    futures cancelled (the client cancels them when it closes after losing the scheduler), a
    connection error (Dask's CommClosedError is an OSError), a timeout, the client closed; or any
    failure once the executor's client no longer runs. A scenario that raises on a healthy worker
    is a row already (`solve_scenario` catches it), so only a worker's death (KilledWorker) remains."""
    from concurrent.futures import CancelledError

    if isinstance(exc, CancelledError | OSError | TimeoutError):
        return True
    if type(exc).__name__ in ("ClosedClientError", "CommClosedError", "RPCClosed"):
        return True
    status = getattr(getattr(pool, "_client", None), "status", "running")
    return status not in ("running", "newly-created")


def _run_round(
    pool: Executor, todo: Sequence[Scenario], time_limit_s: float, record: Callable[[dict[str, Any]], None]
) -> tuple[list[Scenario], dict[str, str]]:
    """Submit `todo` to `pool` and record each row as it finishes: ([the scenarios a broken process
    pool lost], {scenario id: how the worker running it died}).

    Raises:
        KeyboardInterrupt: the pool was stopped (`stop_pools`): nothing more is recorded.
    """
    if not isinstance(pool, _SweepPool):
        return _run_chunks(pool, _chunks(todo, _threads(pool)), time_limit_s, record), {}
    tasks = {pool.submit(_solve_marked, s, time_limit_s): s for s in todo}
    lost: list[Scenario] = []
    for done in as_completed(tasks):
        if pool.stopped:
            raise KeyboardInterrupt
        s = tasks[done]
        try:
            row = done.result()
        except BrokenProcessPool:  # a worker died: which scenario it ran is known once the pool is down
            lost.append(s)
            continue
        except Exception as exc:
            row = {
                **input_row(s),
                "status": "internal",
                "message": f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
            }
        record(row)
    if not lost:
        return lost, {}
    procs = pool.workers()
    pool.shutdown(wait=True)  # the workers joined: their exit codes tell which one died
    if pool.stopped:
        raise KeyboardInterrupt
    order = {s.id: n for n, s in enumerate(todo)}
    lost.sort(key=lambda s: order[s.id])
    return lost, pool.blame(lost, procs)
