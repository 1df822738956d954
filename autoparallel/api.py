"""solve / analyze / optimize / evaluate / pareto / sweep: thin orchestration over the layers below.

Usage:
    >>> import autoparallel as ap
    >>> plan = ap.solve("meta-llama/Llama-3.1-70B-Instruct", "1x8xH100", workload="chatbot")
    >>> plan.config.tp, plan.perf["output_tokens_per_s_per_gpu"]      # doctest: +SKIP
    >>> print(plan.vllm_command)                                        # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

from pydantic import BaseModel, ConfigDict, ValidationError

from autoparallel.bounds import check_number, cpu_cores, input_error
from autoparallel.configs import ServingConfig, TrainingConfig
from autoparallel.errors import InfeasibleError, InputError
from autoparallel.hardware import Cluster
from autoparallel.models import ModelSpec, load_model
from autoparallel.plan import ServingPlan, TrainingPlan
from autoparallel.validation import (
    require_cluster,
    require_serving,
    require_training,
    require_training_job,
)
from autoparallel.workload import Serving, Training

if TYPE_CHECKING:
    from autoparallel.solvers.serving_space import ServingOptions
    from autoparallel.solvers.settings import SolverSettings as _Settings
    from autoparallel.solvers.training_space import TrainingOptions

Plan = ServingPlan | TrainingPlan


class SolverSettings:
    """Factory for the solver's settings that keeps ortools off the import path of `autoparallel`."""

    @staticmethod
    def create(*, time_limit_s: float | None = None, workers: int | None = None, seed: int = 0) -> _Settings:
        """Settings with only the given fields changed from the defaults; each is checked against its
        bound (`autoparallel.bounds.BOUNDS`), and `workers` is capped at the machine's CPU cores (more
        CP-SAT workers than cores only slow every worker down)."""
        from autoparallel.solvers.settings import SolverSettings as Settings

        check_number("seed", seed)
        fields: dict[str, Any] = {"seed": seed}
        if time_limit_s is not None:
            check_number("time_limit_s", time_limit_s, integer=False)
            fields["time_limit_s"] = time_limit_s
        if workers is not None:
            check_number("workers", workers)
            fields["workers"] = min(workers, cpu_cores())
        return Settings(**fields)


def _check_call(
    *, objective: Any = "throughput", settings: Any = None, options: Any = None, training: bool = False
) -> None:
    """The API's argument types, checked before any work so a wrong type is an InputError, not a crash."""
    from autoparallel.solvers.settings import SolverSettings as Settings

    names = [objective] if isinstance(objective, str) else objective
    if isinstance(objective, dict):
        ok = all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in objective.items())
    else:
        ok = isinstance(names, (list, tuple)) and bool(names) and all(isinstance(n, str) for n in names)
    if not ok:
        raise InputError(
            f"objective={objective!r:.80}: must be a name such as 'throughput', a tuple of names "
            "(lexicographic) or a dict of weights"
        )
    if settings is not None and not isinstance(settings, Settings):
        raise InputError(f"settings must come from SolverSettings.create(...), got {type(settings).__name__}")
    if options is not None:
        if training:
            from autoparallel.solvers.training_space import TrainingOptions as Options
        else:
            from autoparallel.solvers.serving_space import ServingOptions as Options  # type: ignore[assignment]
        if not isinstance(options, Options):
            raise InputError(f"options must be a {Options.__name__}, got {type(options).__name__}")


def _model(model: Any) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else load_model(model)


def served_id(source: Any, model: ModelSpec) -> str:
    """The id to hand to the engine: the zoo id or alias the user named (its published spelling, so
    `...-Instruct` stays instruct), a local path as given, else the model's canonical id."""
    from pathlib import Path

    from autoparallel.models.zoo import find_entry

    if isinstance(source, Path):
        return str(source)
    if not isinstance(source, str):
        return model.name
    entry = find_entry(source)
    if entry is None:
        return source
    for name in (entry.id, *entry.aliases):
        if name.lower() == source.strip().lower():
            return name
    return entry.id


def _cluster(cluster: Cluster | str) -> Cluster:
    if not isinstance(cluster, (Cluster, str)):
        raise InputError(
            f"cluster must be a Cluster or a spec string like '2x8xH100', got {type(cluster).__name__}"
        )
    return require_cluster(cluster if isinstance(cluster, Cluster) else Cluster.parse(cluster))


def _workload(workload: Serving | Training | str) -> Serving | Training:
    if isinstance(workload, str):
        return Serving.preset(workload)
    if isinstance(workload, (Serving, Training)):
        return workload
    raise InputError(f"workload must be a preset name, Serving or Training, got {type(workload).__name__}")


# ----- serving ---------------------------------------------------------------------------------------
def _serving_plan(
    model: ModelSpec, cluster: Cluster, workload: Serving, solution: Any, model_id: str = ""
) -> ServingPlan:
    est = solution.estimate
    runner = None
    if solution.runner_up is not None:
        ru = solution.runner_up
        runner = {
            "config": ru.config.model_dump(),
            "why_lost": ru.why_lost,
            "perf": ru.estimate.perf.model_dump(),
        }
    return ServingPlan(
        model=model,
        model_id=model_id,
        cluster=cluster,
        workload=workload,
        objective=str(solution.objective),
        config=solution.config,
        memory=est.memory.to_dict(),
        perf=est.perf.model_dump(),
        fits=est.fits,
        problems=(*est.problems, *est.slo_violations),
        solver=_solver_dict(solution.solver, solution.objective_value),
        binding=solution.binding,
        runner_up=runner,
    )


def _solve_serving(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving,
    objective: Any,
    settings: _Settings | None,
    options: ServingOptions | None,
    model_id: str = "",
) -> ServingPlan:
    from autoparallel.solvers.serving import solve_serving

    sol = solve_serving(model, cluster, workload, objective=objective, settings=settings, options=options)
    return _serving_plan(model, cluster, workload, sol, model_id)


# ----- training --------------------------------------------------------------------------------------
def _training_plan(
    model: ModelSpec, cluster: Cluster, workload: Training, solution: Any, objective: str, model_id: str = ""
) -> TrainingPlan:
    runner = None
    if solution.runner_up is not None:
        ru = solution.runner_up
        runner = {
            "config": ru.config.model_dump(mode="json"),
            "step_time_s": ru.step_time_s,
            "why_lost": ru.reason,
        }
    return TrainingPlan(
        model=model,
        model_id=model_id,
        cluster=cluster,
        workload=workload,
        objective=objective,
        config=solution.config,
        memory=solution.memory.model_dump(mode="json"),
        perf=solution.perf.model_dump(mode="json"),
        fits=solution.memory.fits,
        problems=tuple(solution.memory.problems),
        solver=_solver_dict(solution.stats, None),
        binding=tuple(solution.binding),
        runner_up=runner,
    )


def _solve_training(
    model: ModelSpec,
    cluster: Cluster,
    workload: Training,
    objective: str,
    settings: _Settings | None,
    options: TrainingOptions | None,
    model_id: str = "",
) -> TrainingPlan:
    from autoparallel.solvers.training import solve_training

    sol = solve_training(model, cluster, workload, objective=objective, settings=settings, options=options)
    return _training_plan(model, cluster, workload, sol, objective, model_id)


def _solver_dict(stats: Any, objective_value: float | None) -> dict[str, Any]:
    """Solver statistics for users: the objective and bound in the solver's scaled integer units are
    named as such; `objective_value` (serving) is the float model's value in real units."""
    d = dict(stats.model_dump(mode="json"))
    d["objective_scaled"] = d.pop("objective_value")
    d["bound_scaled"] = d.pop("bound")
    if objective_value is not None:
        d["objective_value"] = objective_value
    return d


# ----- public API ------------------------------------------------------------------------------------
@overload
def solve(
    model: Any,
    cluster: Cluster | str,
    workload: Training,
    objective: str = ...,
    *,
    settings: _Settings | None = ...,
    options: Any = ...,
) -> TrainingPlan: ...
@overload
def solve(
    model: Any,
    cluster: Cluster | str,
    workload: Serving | str = ...,
    objective: Any = ...,
    *,
    settings: _Settings | None = ...,
    options: Any = ...,
) -> ServingPlan: ...
def solve(
    model: Any,
    cluster: Cluster | str,
    workload: Serving | Training | str = "chatbot",
    objective: Any = "throughput",
    *,
    settings: _Settings | None = None,
    options: Any = None,
) -> Plan:
    """The best configuration of `model` on `cluster` for `workload`, proven optimal by CP-SAT.

    Args:
        model: zoo id, config.json path or folder, config dict, PretrainedConfig or ModelSpec.
        cluster: a Cluster or a spec string ("2x8xH100").
        workload: a serving preset name, a `Serving` profile or a `Training` job.
        objective: serving: throughput, ttft, tpot, cost, memory (or a tuple: lexicographic; a dict:
            weighted); training: throughput, mfu, cost, headroom.
        settings: solver time limit, workers and seed (`SolverSettings.create(...)`).
        options: `ServingOptions` / `TrainingOptions`: the values each knob may take.

    Raises:
        InputError: bad model, cluster, workload or option.
        InfeasibleError: nothing fits; the message names the conflicting constraints with numbers.
        SolverTimeoutError: no plan found within the time limit.
    """
    m, c, w = _model(model), _cluster(cluster), _workload(workload)
    _check_call(objective=objective, settings=settings, options=options, training=isinstance(w, Training))
    mid = served_id(model, m)
    if isinstance(w, Training):
        require_training_job(c, w.precision)
        return _solve_training(m, c, w, str(objective), settings, options, mid)
    return _solve_serving(m, c, w, objective, settings, options, mid)


optimize = solve
"""The seed's name for `solve`: the best plan with its deployment commands."""


def solve_top(
    model: Any,
    cluster: Cluster | str,
    workload: Serving | Training | str = "chatbot",
    objective: Any = "throughput",
    *,
    settings: _Settings | None = None,
    options: Any = None,
    top: int = 1,
) -> list[Plan]:
    """The `top` best plans of different shapes (best first): the optimum, then its runners-up."""
    best = solve(model, cluster, workload, objective, settings=settings, options=options)
    if top <= 1 or not isinstance(best, ServingPlan):
        return [best]
    from autoparallel.solvers.serving_space import ServingOptions

    base = options or ServingOptions()
    seen = {(best.config.tp, best.config.pp, best.config.enable_expert_parallel)}
    plans: list[Plan] = [best]
    m, c = best.model, best.cluster
    for tp in sorted({1, 2, 4, 8, 16, c.gpus_per_node} & set(range(1, c.gpus_per_node + 1))):
        for pp in (1, 2, 4, 8):
            if (tp, pp, False) in seen and (tp, pp, True) in seen:
                continue
            opts = base.model_copy(update={"tp_values": (tp,), "pp_values": (pp,)})
            try:
                plan = _solve_serving(m, c, best.workload, objective, settings, opts, best.model_id)
            except (InfeasibleError, InputError):
                continue
            key = (plan.config.tp, plan.config.pp, plan.config.enable_expert_parallel)
            if key not in seen:
                seen.add(key)
                plans.append(plan)
    ranked = [
        plans[0],
        *sorted(
            plans[1:],
            key=lambda p: (
                -float(p.solver.get("objective_value", 0.0))
                if str(objective) in ("throughput",)
                else float(p.solver.get("objective_value", 0.0))
            ),
        ),
    ]
    return ranked[:top]


class Analysis(BaseModel):
    """Which tensor/pipeline shapes can start the model on the cluster, with vLLM's memory for each."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    """Model id."""
    cluster: str
    """Cluster spec."""
    weights_gib_total: float
    """All weights of the model, GiB."""
    rows: tuple[dict[str, Any], ...]
    """One row per (tp, pp): tp, pp, fits, weights_gib, kv_cache_gib, max_concurrency, problems."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return self.model_dump()


def analyze(model: Any, cluster: Cluster | str, *, max_model_len: int | None = None) -> Analysis:
    """Fit and memory without a workload: every valid (tp, pp) on the cluster, as vLLM would start it."""
    from autoparallel.memory.serving import vllm_memory

    m, c = _model(model), _cluster(cluster)
    rows: list[dict[str, Any]] = []
    tps = [t for t in (1, 2, 4, 8, 16, 32, 64) if t <= c.gpus_per_node and not m.tp_violations(t)]
    for tp in tps:
        for pp in (1, 2, 4, 8, 16):
            if tp * pp > c.world_size or m.pp_violations(pp):
                continue
            r = vllm_memory(m, c.gpu, tp=tp, pp=pp, max_model_len=max_model_len)
            rows.append(
                {
                    "tp": tp,
                    "pp": pp,
                    "gpus": tp * pp,
                    "fits": r.fits,
                    "weights_gib": r.weights_gib,
                    "kv_cache_gib": r.kv_cache_gib,
                    "kv_cache_tokens": r.kv_cache_tokens,
                    "max_concurrency": r.max_concurrency,
                    "problems": list(r.problems),
                }
            )
    return Analysis(
        model=m.name, cluster=c.spec, weights_gib_total=m.weight_bytes() / 2**30, rows=tuple(rows)
    )


def pareto(
    model: Any,
    cluster: Cluster | str,
    objectives: tuple[str, str] = ("throughput", "tpot"),
    *,
    workload: Serving | str = "chatbot",
    points: int = 8,
    settings: _Settings | None = None,
    options: ServingOptions | None = None,
) -> list[ServingPlan]:
    """The trade-off front between two serving objectives (ε-constraint), best first on the first."""
    from autoparallel.solvers.pareto import pareto_serving

    if (
        not isinstance(objectives, (tuple, list))
        or len(objectives) != 2
        or not all(isinstance(o, str) for o in objectives)
    ):
        raise InputError(f"objectives={objectives!r:.80}: must be two names, e.g. ('throughput', 'tpot')")
    if isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= 64:
        raise InputError(f"points={points!r:.40}: must be an integer in [2, 64]")
    _check_call(settings=settings, options=options)
    m, c, w = _model(model), _cluster(cluster), _workload(workload)
    if not isinstance(w, Serving):
        raise InputError("pareto fronts are for serving workloads")
    front = pareto_serving(m, c, w, objectives=objectives, points=points, settings=settings, options=options)
    mid = served_id(model, m)
    return [_serving_plan(m, c, w, sol, mid) for sol in front]


class SweepRow(BaseModel):
    """One what-if: a model on a cluster under a workload, and the best plan's headline numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    cluster: str
    workload: str
    status: str
    """`ok`, `infeasible` or `error`."""
    config: dict[str, Any] | None = None
    perf: dict[str, Any] | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return self.model_dump()


def sweep(
    *,
    models: list[Any],
    clusters: list[Cluster | str],
    workloads: list[Serving | str],
    objective: str = "throughput",
    settings: _Settings | None = None,
) -> list[SweepRow]:
    """Best plan for every model × cluster × workload; infeasible combinations are rows, not errors."""
    from autoparallel.errors import AutoParallelError

    for arg, value in (("models", models), ("clusters", clusters), ("workloads", workloads)):
        if not isinstance(value, (list, tuple)) or not value:
            raise InputError(f"{arg} must be a non-empty list (e.g. {arg}=[...]), got {value!r:.80}")
    _check_call(objective=objective, settings=settings)
    rows: list[SweepRow] = []
    specs = [_model(m) for m in models]
    for m in specs:
        for cl in clusters:
            c = _cluster(cl)
            for wl in workloads:
                w = _workload(wl)
                name = w.name if isinstance(w, Serving) else "training"
                try:
                    plan = solve(m, c, w, objective, settings=settings)
                except AutoParallelError as exc:
                    status = "infeasible" if isinstance(exc, InfeasibleError) else "error"
                    rows.append(
                        SweepRow(
                            model=m.name,
                            cluster=c.spec,
                            workload=name,
                            status=status,
                            reason=str(exc).splitlines()[0],
                        )
                    )
                    continue
                rows.append(
                    SweepRow(
                        model=m.name,
                        cluster=c.spec,
                        workload=name,
                        status="ok",
                        config=plan.config.model_dump(mode="json"),
                        perf=plan.perf,
                    )
                )
    return rows


# ----- evaluate a user's configuration ---------------------------------------------------------------
def evaluate(
    model: Any,
    cluster: Cluster | str,
    config: ServingConfig | TrainingConfig,
    workload: Serving | Training | str = "chatbot",
    *,
    compare: bool = True,
) -> Plan:
    """The cost model's verdict on a configuration the user runs today, and how far it is from the optimum.

    The result is a plan with solver status `EVALUATED`; `solver["optimum"]` holds the optimum's
    headline numbers and `solver["gap_to_optimum"]` the relative shortfall (when `compare`).
    """
    if not isinstance(config, (ServingConfig, TrainingConfig)):
        raise InputError(
            f"config must be a ServingConfig or a TrainingConfig, got {type(config).__name__} "
            "(e.g. ServingConfig(tp=4) or TrainingConfig(tp=8, dp=4, global_batch=256))"
        )
    m, c, w = _model(model), _cluster(cluster), _workload(workload)
    mid = served_id(model, m)
    if isinstance(config, TrainingConfig):
        if not isinstance(w, Training):
            w = Training(seq_len=config.seq_len, global_batch=config.global_batch, precision=config.precision)
        return _evaluate_training(m, c, config, w, compare, mid)
    if not isinstance(w, Serving):
        raise InputError("a ServingConfig needs a serving workload")
    return _evaluate_serving(m, c, config, w, compare, mid)


def _evaluate_serving(
    m: ModelSpec, c: Cluster, config: ServingConfig, w: Serving, compare: bool, model_id: str = ""
) -> ServingPlan:
    from autoparallel.perf.serving import evaluate_serving

    require_serving(m, c, config, w)
    est = evaluate_serving(m, c, config, w)
    solver: dict[str, Any] = {"status": "EVALUATED"}
    if compare:
        mine = est.perf.output_tokens_per_s if est.fits else 0.0
        solver.update(_optimum_serving(m, c, w, config, mine, model_id))
    return ServingPlan(
        model=m,
        model_id=model_id,
        cluster=c,
        workload=w,
        objective="evaluate",
        config=config,
        memory=est.memory.to_dict(),
        perf=est.perf.model_dump(),
        fits=est.fits,
        problems=(*est.problems, *est.slo_violations),
        solver=solver,
    )


def _optimum_serving(
    m: ModelSpec, c: Cluster, w: Serving, config: ServingConfig, mine: float, model_id: str
) -> dict[str, Any]:
    """The planner's best throughput, allowed the same runtime choices the user's config makes
    (quantization, KV-cache dtype, memory utilization) besides vLLM's defaults, so the comparison is fair."""
    from autoparallel.errors import AutoParallelError
    from autoparallel.solvers.serving_space import ServingOptions

    defaults = ServingOptions()
    options = defaults.model_copy(
        update={
            "kv_cache_dtypes": tuple(dict.fromkeys((*defaults.kv_cache_dtypes, config.kv_cache_dtype))),
            "quantizations": tuple(dict.fromkeys((*defaults.quantizations, config.quantization))),
            "gpu_memory_utilizations": tuple(
                dict.fromkeys((*defaults.gpu_memory_utilizations, config.gpu_memory_utilization))
            ),
        }
    )
    try:
        best = _solve_serving(m, c, w, "throughput", None, options, model_id)
    except AutoParallelError as exc:
        return {"optimum": None, "optimum_error": str(exc).splitlines()[0]}
    top = float(best.perf["output_tokens_per_s"])
    return {
        "optimum": {
            "config": best.config.model_dump(),
            "output_tokens_per_s": top,
            "vllm_command": best.vllm_command,
        },
        "gap_to_optimum": (top - mine) / top if top > 0 else 0.0,
    }


def _evaluate_training(
    m: ModelSpec, c: Cluster, config: TrainingConfig, w: Training, compare: bool, model_id: str = ""
) -> TrainingPlan:
    from autoparallel.memory.training import training_memory
    from autoparallel.perf.training import training_perf

    require_training(m, c, config)
    mem = training_memory(m, c.gpu, config)
    perf = training_perf(m, c, config)
    solver: dict[str, Any] = {"status": "EVALUATED"}
    if compare:
        from autoparallel.errors import AutoParallelError

        try:
            best = _solve_training(m, c, w, "throughput", None, None)
            top = float(best.perf["tokens_per_s"])
            mine = perf.tokens_per_s if mem.fits else 0.0
            solver["optimum"] = {
                "config": best.config.model_dump(mode="json"),
                "tokens_per_s": top,
                "mfu": best.perf.get("mfu"),
            }
            solver["gap_to_optimum"] = (top - mine) / top if top > 0 else 0.0
        except AutoParallelError as exc:
            solver["optimum"] = None
            solver["optimum_error"] = str(exc).splitlines()[0]
    return TrainingPlan(
        model=m,
        model_id=model_id,
        cluster=c,
        workload=w,
        objective="evaluate",
        config=config,
        memory=mem.model_dump(mode="json"),
        perf=perf.model_dump(mode="json"),
        fits=mem.fits,
        problems=tuple(mem.problems),
        solver=solver,
    )


def evaluate_serving_args(args: Any, workload: Serving) -> ServingPlan:
    """`autoparallel evaluate` (serving) from parsed command-line options."""
    c = _cluster(args.cluster)
    m = _model(args.model)
    if args.engine != "vllm":
        raise InputError(
            f"--engine {args.engine}: only vllm's memory accounting and speed are modelled; "
            "sglang and trtllm are not calibrated yet"
        )
    replicas = args.dp or max(1, c.world_size // (args.tp * args.pp))
    fields: dict[str, Any] = {
        "tp": args.tp,
        "pp": args.pp,
        "replicas": replicas,
        "enable_expert_parallel": args.enable_expert_parallel,
        "max_num_seqs": args.max_num_seqs,
        "max_model_len": args.max_model_len or workload.deploy_len(m.max_position_embeddings),
        "max_num_batched_tokens": args.max_num_batched_tokens,
        "kv_cache_dtype": args.kv_cache_dtype,
        "quantization": args.quantization,
        "enforce_eager": args.enforce_eager,
    }
    if args.gpu_memory_utilization is not None:
        fields["gpu_memory_utilization"] = args.gpu_memory_utilization
    try:
        config = ServingConfig(**fields)
    except ValidationError as exc:
        raise input_error(exc, "invalid configuration") from None
    return _evaluate_serving(m, c, config, workload, True, served_id(args.model, m))


def evaluate_training_args(args: Any, workload: Training) -> TrainingPlan:
    """`autoparallel evaluate --train` from parsed command-line options."""
    from autoparallel.configs import Recompute, ZeroStage

    c = _cluster(args.cluster)
    m = _model(args.model)
    used = args.tp * args.pp * args.cp
    dp = args.dp or max(1, c.world_size // used)
    if workload.global_batch % (args.micro_batch * dp):
        raise InputError(
            f"--global-batch {workload.global_batch} is not a multiple of micro-batch × dp = "
            f"{args.micro_batch} × {dp}"
        )
    config = _training_config(
        tp=args.tp,
        pp=args.pp,
        dp=dp,
        cp=args.cp,
        ep=args.ep,
        vp=args.vp,
        micro_batch=args.micro_batch,
        global_batch=workload.global_batch,
        seq_len=workload.seq_len,
        zero=ZeroStage(args.zero),
        recompute=Recompute(args.recompute),
        precision=workload.precision,
    )
    if config.world_size > c.world_size:
        raise InputError(f"tp × pp × dp × cp = {config.world_size} GPUs, but the cluster has {c.world_size}")
    return _evaluate_training(m, c, config, workload, True, served_id(args.model, m))


def _training_config(**fields: Any) -> TrainingConfig:
    try:
        return TrainingConfig(**fields)
    except ValidationError as exc:
        raise input_error(exc, "invalid configuration") from None


def format_front(front: list[ServingPlan], objectives: tuple[str, ...]) -> str:
    """The Pareto front as a table."""
    from autoparallel.explain import front_table

    return front_table(front, objectives)


def format_sweep(rows: list[SweepRow]) -> str:
    """Sweep results as a table."""
    from autoparallel.explain import sweep_table

    return sweep_table(rows)


class AutoParallel:
    """Advanced settings in one place: solver limits, allowed knobs, vLLM release.

    >>> ap = AutoParallel(time_limit_s=5, workers=2)                    # doctest: +SKIP
    >>> ap.solve("Qwen/Qwen3-32B", "1x8xH100", workload="rag")          # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        time_limit_s: float = 10.0,
        workers: int = 1,
        seed: int = 0,
        serving_options: ServingOptions | None = None,
        training_options: TrainingOptions | None = None,
    ) -> None:
        self.settings = SolverSettings.create(time_limit_s=time_limit_s, workers=workers, seed=seed)
        self.serving_options = serving_options
        self.training_options = training_options

    def solve(
        self,
        model: Any,
        cluster: Cluster | str,
        workload: Serving | Training | str = "chatbot",
        objective: Any = "throughput",
    ) -> Plan:
        """`solve` with this object's settings."""
        w = _workload(workload)
        opts = self.training_options if isinstance(w, Training) else self.serving_options
        return solve(model, cluster, w, objective, settings=self.settings, options=opts)

    def pareto(
        self,
        model: Any,
        cluster: Cluster | str,
        objectives: tuple[str, str] = ("throughput", "tpot"),
        workload: Serving | str = "chatbot",
        points: int = 8,
    ) -> list[ServingPlan]:
        """`pareto` with this object's settings."""
        return pareto(
            model,
            cluster,
            objectives,
            workload=workload,
            points=points,
            settings=self.settings,
            options=self.serving_options,
        )

    def evaluate(
        self,
        model: Any,
        cluster: Cluster | str,
        config: ServingConfig | TrainingConfig,
        workload: Serving | Training | str = "chatbot",
    ) -> Plan:
        """`evaluate` (no settings involved; for symmetry)."""
        return evaluate(model, cluster, config, workload)


Objective = Literal["throughput", "ttft", "tpot", "cost", "memory", "mfu", "headroom"]
