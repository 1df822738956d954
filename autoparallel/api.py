"""The public facade: validate the arguments, call a planner, adapt its result into a plan.

>>> import autoparallel as ap
>>> plan = ap.solve("meta-llama/Llama-3.1-70B-Instruct", "1x8xH100", workload="chatbot")  # doctest: +SKIP
>>> plan.config.tp, plan.perf.output_tokens_per_s_per_gpu                                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from pydantic import BaseModel, ConfigDict

from autoparallel.bounds import BOUNDS, check_number, clean_text, revalidated
from autoparallel.configs import ServingConfig, TrainingConfig, config_dict, precision_problem
from autoparallel.errors import AutoParallelError, InputError
from autoparallel.hardware import GPU, Cluster, get_gpu
from autoparallel.memory.serving import vllm_memory
from autoparallel.models import ModelSpec, load_model
from autoparallel.models.loader import served_id
from autoparallel.objectives import canonical_objective, parse_objective, plan_label
from autoparallel.perf.serving_engines import at_request_rate, memory_knob_problem
from autoparallel.plan import EngineBest, RunnerUp, ServingPlan, SolverReport, TrainingPlan
from autoparallel.solvers.serving.space import ServingOptions, given_memory_knob
from autoparallel.solvers.settings import SolverSettings, given_settings
from autoparallel.solvers.training.space import TrainingOptions
from autoparallel.validation import (
    TrainingFramework,
    job_precision,
    require_cluster,
    require_serving,
    require_training,
    require_training_job,
)
from autoparallel.workload import Serving, Training

if TYPE_CHECKING:
    from autoparallel.memory.margins import MemoryConfig
    from autoparallel.memory.training import TrainingMemoryReport
    from autoparallel.sweeps.deployment_front import DeploymentFront
    from autoparallel.sweeps.front import Front

Plan = ServingPlan | TrainingPlan
_Checked = TypeVar("_Checked", bound=BaseModel)
Objective = Literal["throughput", "ttft", "tpot", "cost", "memory", "mfu", "headroom"]


# ----- validate ----------------------------------------------------------------------------------
def _model(model: Any) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else load_model(model)


def _cluster(cluster: Any) -> Cluster:
    """A cluster argument: a spec string, parsed, or a Cluster, validated again with its pools and GPUs
    (`bounds.revalidated`: a pool copied to 9 H100s per node or to 0 nodes, a GPU copied to 0 TFLOP/s)."""
    if not isinstance(cluster, (Cluster, str)):
        raise InputError(
            f"cluster must be a Cluster or a spec string like '2x8xH100', got {type(cluster).__name__}"
        )
    c = revalidated(cluster, "cluster") if isinstance(cluster, Cluster) else Cluster.parse(cluster)
    return require_cluster(c)


def _config(config: _Checked) -> _Checked:
    """A configuration argument validated again, a TrainingConfig's precision among those the model
    prices (`configs.precision_problem`).

    Raises:
        InputError: the first broken rule.
    """
    config = revalidated(config, "config")
    if isinstance(config, TrainingConfig) and (problem := precision_problem(config.precision)):
        raise InputError(f"config: {problem}")
    return config


def _workload(workload: Any) -> Serving | Training:
    if isinstance(workload, str):
        return Serving.preset(workload)
    if isinstance(workload, (Serving, Training)):
        return revalidated(workload, "workload")
    raise InputError(f"workload must be a preset name, Serving or Training, got {type(workload).__name__}")


def _options(options: Any, workload: Serving | Training) -> Any:
    kind, cls = (
        (TrainingOptions, "TrainingOptions")
        if isinstance(workload, Training)
        else (ServingOptions, "ServingOptions")
    )
    if options is None:
        return None
    if not isinstance(options, kind):
        raise InputError(f"options for this workload must be {cls}, got {type(options).__name__}")
    options = revalidated(options, "options")
    if isinstance(options, ServingOptions):
        given_memory_knob(options)
    return options


def _callback(value: Any, name: str) -> Any:
    """A callback argument: None or callable."""
    if value is not None and not callable(value):
        raise InputError(f"{name} must be a function (or None), got {type(value).__name__}")
    return value


# ----- adapt -------------------------------------------------------------------------------------
def _serving_plan(m: ModelSpec, c: Cluster, w: Serving, sol: Any, model_id: str) -> ServingPlan:
    est, ru = sol.estimate, sol.runner_up
    runner = (
        None
        if ru is None
        else RunnerUp(
            config=ru.config,
            why_lost=ru.why_lost,
            perf=ru.estimate.perf,
            engine=None if ru.engine == "vllm" and sol.engine == "vllm" else ru.engine,
        )
    )
    engines = tuple(
        EngineBest(
            engine=b.engine,
            plan=None if b.solution is None else _serving_plan(m, c, w, b.solution, model_id),
            note=b.note,
        )
        for b in sol.engines
    )
    kv = sol.engine_eval.memory if sol.engine_eval is not None else None
    return ServingPlan(
        at_request_rate=at_request_rate(m, c, sol.config, w, est.perf, sol.engine, kv) if est.fits else None,
        engine=sol.engine,
        engine_eval=sol.engine_eval,
        engines=engines,
        model=m,
        model_id=model_id,
        cluster=c,
        workload=w,
        # Canonical, never the caller's spelling ("TTFT", "headroom"): a name as its registry spells it, a
        # chain or weights (a front's query) as `throughput>tpot`, as a training plan names its own.
        objective=plan_label(sol.objective, "serving"),
        config=sol.config,
        memory=est.memory,
        perf=est.perf,
        fits=est.fits,
        problems=(*est.problems, *est.slo_violations),
        solver=SolverReport.of(sol.solver, sol.objective_value),
        binding=sol.binding,
        runner_up=runner,
    )


def _training_plan(
    m: ModelSpec, c: Cluster, w: Training, sol: Any, model_id: str, opts: TrainingOptions | None = None
) -> TrainingPlan:
    ru = sol.runner_up
    runner = (
        None if ru is None else RunnerUp(config=ru.config, why_lost=ru.reason, step_time_s=ru.step_time_s)
    )
    return TrainingPlan(
        model=m,
        model_id=model_id,
        cluster=c,
        workload=w,
        objective=sol.objective,
        config=sol.config,
        memory=sol.memory,
        perf=sol.perf,
        cost=sol.cost,
        fits=sol.memory.fits,
        problems=tuple(sol.memory.problems),
        solver=SolverReport.of(sol.stats),
        binding=tuple(sol.binding),
        runner_up=runner,
        framework=opts.framework if opts is not None else "megatron",
    )


# ----- solve -------------------------------------------------------------------------------------
@overload
def solve_top(
    model: Any,
    cluster: Cluster | str,
    workload: Training,
    objective: Any = ...,
    *,
    settings: SolverSettings | None = ...,
    options: Any = ...,
    top: int = ...,
) -> list[TrainingPlan]: ...
@overload
def solve_top(
    model: Any,
    cluster: Cluster | str,
    workload: Serving | str = ...,
    objective: Any = ...,
    *,
    settings: SolverSettings | None = ...,
    options: Any = ...,
    top: int = ...,
) -> list[ServingPlan]: ...
def solve_top(
    model: Any,
    cluster: Cluster | str,
    workload: Serving | Training | str = "chatbot",
    objective: Any = "throughput",
    *,
    settings: SolverSettings | None = None,
    options: Any = None,
    top: int = 1,
) -> list[ServingPlan] | list[TrainingPlan]:
    """The `top` best plans, each of another parallel shape, best first (CP-SAT k-best: the optimum, then
    the optimum once each earlier shape is excluded by a no-good cut). Fewer than `top` when fewer
    shapes fit, or when the time limit stopped the search: then every plan's `solver.top_cut` is True.

    Raises:
        InputError: bad model, cluster, workload, objective, options or top.
        InfeasibleError: nothing fits; the message names the conflicting constraints with numbers.
        SolverTimeoutError: no plan found within the time limit.
    """
    m, c, w = _model(model), _cluster(cluster), _workload(workload)
    opts, mid = _options(options, w), served_id(model, m)
    top = check_number("top", top)
    if isinstance(w, Training) and top > 1:
        raise InputError(f"top={top} ranks serving plans by shape; a training job has one plan (top=1)")
    if isinstance(w, Serving) and cost_at_a_rate(w, objective, top):
        raise InputError(cost_at_a_rate_text(w))
    return _plans(m, c, w, objective, given_settings(settings), opts, top, mid)


def cost_at_a_rate(workload: Serving, objective: Any, top: int = 1) -> bool:
    """Whether a request asks for the $/hour that sustains `workload`'s request rate: cost the primary
    objective (a lexicographic chain's first name, or a positive weight of a weighted one), a request
    rate, no finite benchmark (`num_prompts`) and one plan (`top` 1). The deployment planner answers
    it, sizing the replicas to the rate (`solve_fleet`, `plan MODEL --objective cost --request-rate`);
    the single-engine planner's replica count is the most the GPUs hold and its cost $ per million
    tokens at capacity (DeepSeek-V3 on 64x8xH100 at 20 req/s: 512 GPUs there, 48 in the deployment).
    A finite benchmark or a ranking (`top` > 1) asks for one engine's replay or plans: the
    single-engine planner answers them. `plan` routes by it too (`cli.fleet_cmd._cost_at_a_rate`).

    Raises:
        InputError: an objective `parse_objective` refuses.
    """
    if workload.request_rate is None or workload.num_prompts is not None or top > 1:
        return False
    chain = parse_objective(objective, "serving")
    return chain.get("cost", 0.0) > 0 if isinstance(chain, dict) else chain[0] == "cost"


def cost_at_a_rate_text(workload: Serving) -> str:
    """The one-line refusal of cost at a rate by `solve` / `solve_top` (`cost_at_a_rate`)."""
    rate = workload.request_rate
    assert rate is not None
    return (
        f"objective cost at request_rate={rate:g} req/s asks for the $/hour that sustains the rate, but "
        "solve plans one engine with as many replicas as the cluster holds and prices it per million "
        "tokens at full load: call solve_fleet(autoparallel.fleet.fleet_of_one(model, workload), cluster, "
        "objective='cost') for the deployment sized to the rate, or drop request_rate to rank engines "
        "by $ per million tokens at full load"
    )


def _plans(
    m: ModelSpec,
    c: Cluster,
    w: Serving | Training,
    objective: Any,
    settings: SolverSettings | None,
    opts: Any,
    top: int,
    mid: str,
    fixes: bool = True,
) -> list[ServingPlan] | list[TrainingPlan]:
    """`solve_top` past its argument checks, the plans serving the model as `mid` (`fixes`: an
    infeasible request's error carries its nearest fixes, each a further planning call)."""
    if isinstance(w, Training):
        from autoparallel.solvers.training.solve import solve_training

        objective = canonical_objective(objective, "training")
        require_training_job(c, w.precision)
        sol = solve_training(m, c, w, objective=objective, settings=settings, options=opts, fixes=fixes)
        return [_training_plan(m, c, w, sol, mid, opts)]
    from autoparallel.solvers.serving.solve import solve_serving_top

    objective = canonical_objective(objective, "serving")  # the planner and its plans see no raw spelling
    sols = solve_serving_top(
        m, c, w, objective=objective, settings=settings, options=opts, top=top, fixes=fixes
    )
    plans = [_serving_plan(m, c, w, s, mid) for s in sols]
    plans[1:] = [  # a runner-up's OPTIMAL is the optimum once the shapes above it are excluded
        p.model_copy(update={"solver": p.solver.model_copy(update={"rank": i})})
        for i, p in enumerate(plans[1:], 2)
    ]
    if sols.cut:  # fewer than `top` because the time limit stopped the search: each plan says so
        plans = [
            p.model_copy(update={"solver": p.solver.model_copy(update={"top_cut": True})}) for p in plans
        ]
    return plans


@overload
def solve(
    model: Any,
    cluster: Cluster | str,
    workload: Training,
    objective: Any = ...,
    *,
    settings: SolverSettings | None = ...,
    options: Any = ...,
) -> TrainingPlan: ...
@overload
def solve(
    model: Any,
    cluster: Cluster | str,
    workload: Serving | str = ...,
    objective: Any = ...,
    *,
    settings: SolverSettings | None = ...,
    options: Any = ...,
) -> ServingPlan: ...
def solve(
    model: Any,
    cluster: Cluster | str,
    workload: Serving | Training | str = "chatbot",
    objective: Any = "throughput",
    *,
    settings: SolverSettings | None = None,
    options: Any = None,
) -> Plan:
    """The best configuration of `model` on `cluster` for `workload`, decided by CP-SAT (its status says
    whether it is proven optimal).

    Args:
        model: zoo id, config.json path or folder, config dict, PretrainedConfig or ModelSpec.
        cluster: a Cluster or a spec string ("2x8xH100").
        workload: a serving preset name, a `Serving` profile or a `Training` job.
        objective: a name from `autoparallel.objectives` (serving: throughput, ttft, tpot, cost, memory;
            training: throughput, mfu, cost, memory; `headroom` = memory), a tuple of names
            (lexicographic) or {name: weight} (weighted).
        settings: `SolverSettings` (time limit, workers, seed).
        options: `ServingOptions` / `TrainingOptions`: the values each knob may take.
    """
    plans: list[Any] = solve_top(model, cluster, workload, objective, settings=settings, options=options)
    return plans[0]


optimize = solve
"""The seed's name for `solve`."""


# ----- evaluate a user's configuration -----------------------------------------------------------
@overload
def evaluate(
    model: Any,
    cluster: Cluster | str,
    config: TrainingConfig,
    workload: Training | None = ...,
    *,
    compare: bool = ...,
    engine: str = ...,
    nsa_backends: tuple[str | None, str | None] = ...,
) -> TrainingPlan: ...
@overload
def evaluate(
    model: Any,
    cluster: Cluster | str,
    config: ServingConfig,
    workload: Serving | str | None = ...,
    *,
    compare: bool = ...,
    engine: str = ...,
    nsa_backends: tuple[str | None, str | None] = ...,
) -> ServingPlan: ...
@overload
def evaluate(
    model: Any,
    cluster: Cluster | str,
    config: ServingConfig | TrainingConfig,
    workload: Serving | Training | str | None = ...,
    *,
    compare: bool = ...,
    engine: str = ...,
    nsa_backends: tuple[str | None, str | None] = ...,
) -> Plan: ...
def evaluate(
    model: Any,
    cluster: Cluster | str,
    config: ServingConfig | TrainingConfig,
    workload: Serving | Training | str | None = None,
    *,
    compare: bool = True,
    engine: str = "vllm",
    nsa_backends: tuple[str | None, str | None] = (None, None),
) -> Plan:
    """The cost model's verdict on a configuration the user runs today (solver status EVALUATED) and,
    with `compare`, the planner's optimum for the same request on the same engine and the relative
    gap to it.

    The configuration is taken as given, its unset fields at the class defaults (`ServingConfig`:
    one replica, `max_num_seqs` 256; `TrainingConfig`: dp 1), where `autoparallel evaluate` fills
    in the engine's own defaults and the replicas or dp the cluster holds; only an unset
    `max_model_len` takes the workload's.

    Args:
        workload: the request (default: the chatbot preset for a ServingConfig, the job a
            TrainingConfig names for itself); a serving workload with a TrainingConfig, or the
            reverse, is an error.
        engine: the serving engine that runs `config`: vllm, sglang or trtllm; for a TrainingConfig the
            framework: megatron (the default, also for "vllm") or deepspeed, whose rules it is checked by.
        nsa_backends: SGLang's `--nsa-prefill-backend` / `--nsa-decode-backend` for a DeepSeek Sparse
            Attention model (None: SGLang's default).
    """
    if not isinstance(config, (ServingConfig, TrainingConfig)):
        raise InputError(f"config must be a ServingConfig or a TrainingConfig, got {type(config).__name__}")
    config = _config(config)
    if not isinstance(compare, bool):
        raise InputError(f"compare must be True or False, got {clean_text(repr(compare), 40)}")
    m, c = _model(model), _cluster(cluster)
    w: Serving | Training | None
    if workload is None:
        w = None if isinstance(config, TrainingConfig) else _workload("chatbot")
    else:
        w = _workload(workload)
    mid = served_id(model, m)
    if isinstance(config, TrainingConfig):
        # Spelled as `autoparallel evaluate --engine` takes them (its choices: lower case, so here too).
        framework: TrainingFramework
        if engine in ("vllm", "megatron"):  # vllm: the parameter's default
            framework = "megatron"
        elif engine == "deepspeed":
            framework = "deepspeed"
        else:
            from autoparallel.perf.engine_support import ENGINE_NAMES

            if isinstance(engine, str) and engine in ENGINE_NAMES:
                raise InputError(
                    f"engine {engine!r} is a serving engine; a TrainingConfig takes megatron or deepspeed"
                )
            raise InputError(
                f"unknown training engine {engine!r}; a TrainingConfig takes megatron or deepspeed "
                "(lower case, as `autoparallel evaluate --engine`)"
            )
        if nsa_backends != (None, None):
            raise InputError("nsa_backends are serving settings")
        if w is None:
            w = Training(seq_len=config.seq_len, global_batch=config.global_batch, precision=config.precision)
        if not isinstance(w, Training):
            raise InputError("a TrainingConfig needs a training workload (or none: the job it names)")
        return _evaluate_training(m, c, _with_job(config, w), w, compare, mid, framework=framework)
    if not isinstance(w, Serving):
        raise InputError("a ServingConfig needs a serving workload")
    from autoparallel.perf.engine_support import ENGINE_NAMES, engine_runtime_problem, node_span_problem

    if not isinstance(engine, str) or engine not in ENGINE_NAMES:
        raise InputError(f"unknown serving engine {engine!r}; choose one of: {', '.join(ENGINE_NAMES)}")
    _require_nsa_backends(nsa_backends, engine, m, mid)
    # Another engine's KV-pool knob would be silently ignored (vLLM's at other than the default a plan's
    # own config carries on any engine).
    if (knob := memory_knob_problem(config, engine)) is not None:
        raise InputError(knob)
    config = _with_context(config, w, m)
    problem = engine_runtime_problem(engine, config.quantization, config.kv_cache_dtype, m, c.gpu)
    if problem is not None:
        raise InputError(problem)
    width = config.gpus_per_replica if engine == "vllm" else config.engine_gpus
    if span := node_span_problem(engine, width, c.gpus_per_node):
        raise InputError(span)
    return _evaluate_serving(m, c, config, w, compare, mid, engine, nsa_backends)


def _optimum(
    m: ModelSpec, c: Cluster, w: Any, options: Any, rate: str, mine: float, model_id: str
) -> dict[str, Any]:
    """The planner's best plan for the same request (its launch line serving the model as the user
    named it, `model_id`) and the evaluated configuration's gap to it in `rate`."""
    try:  # the error's first line is all that is kept: no nearest fixes
        best = _plans(m, c, w, "throughput", None, _options(options, w), 1, model_id, fixes=False)[0]
    except AutoParallelError as exc:
        return {"optimum": None, "optimum_error": str(exc).splitlines()[0]}
    top = float(getattr(best.perf, rate))
    engine = best.engine if isinstance(best, ServingPlan) else None
    found: dict[str, Any] = {"config": config_dict(best.config, engine), rate: top}
    if isinstance(best, ServingPlan):
        found["command"] = best.command
    else:
        found["mfu"] = best.perf.mfu
    return {"optimum": found, "gap_to_optimum": (top - mine) / top if top > 0 else 0.0}


def with_benchmark(plan: ServingPlan) -> ServingPlan:
    """`plan` with its finite benchmark replayed (`perf/serving_load.py`, the plan's engine and KV pool)
    when its workload is N prompts at once (`num_prompts`) and the plan fits; else `plan` as is."""
    if not isinstance(plan, ServingPlan):
        raise InputError(f"with_benchmark takes a ServingPlan, got {type(plan).__name__}")
    if plan.workload.num_prompts is None or not plan.fits:
        return plan
    from autoparallel.perf.serving_load import run_benchmark

    kv = plan.engine_eval.memory if plan.engine_eval is not None else None
    bench = run_benchmark(
        plan.model,
        plan.cluster,
        plan.config,
        plan.workload,
        memory=plan.memory,
        engine=plan.engine,
        engine_kv=kv,
    )
    return plan.model_copy(update={"benchmark": bench})


def _require_nsa_backends(nsa_backends: Any, engine: str, m: ModelSpec, model_id: str) -> None:
    """SGLang's DeepSeek Sparse Attention kernels (`--nsa-prefill-backend` / `--nsa-decode-backend`):
    a pair of names or None, for SGLang, on a model with sparse attention; the names themselves are
    checked where they are priced (`perf.sparse_attention`)."""
    flags = "nsa_backends (--nsa-prefill-backend / --nsa-decode-backend)"
    if (
        not isinstance(nsa_backends, tuple)
        or len(nsa_backends) != 2
        or not all(b is None or isinstance(b, str) for b in nsa_backends)
    ):
        raise InputError(f"{flags} must be a pair of kernel names or None, got {nsa_backends!r:.60}")
    if nsa_backends == (None, None):
        return
    if engine != "sglang":
        raise InputError(f"{flags} are SGLang settings: add --engine sglang (engine='sglang')")
    if not m.has_sparse_attention:
        raise InputError(f"{flags}: {clean_text(model_id, 120)} has no DeepSeek Sparse Attention")


def _evaluate_serving(
    m: ModelSpec,
    c: Cluster,
    config: ServingConfig,
    w: Serving,
    compare: bool,
    model_id: str,
    engine: str,
    nsa_backends: tuple[str | None, str | None],
) -> ServingPlan:
    """`config` on `engine` as a plan (status EVALUATED): vLLM's float model, or the engine's own
    evaluation (its KV pool rule and running-request cap) as the planner's decoder takes it
    (`perf.serving_engines.engine_estimate`)."""
    from autoparallel.perf.serving import evaluate_serving
    from autoparallel.perf.serving_engines import engine_estimate

    require_serving(m, c, config, w, engine)
    ev = None
    if engine == "vllm":
        est = evaluate_serving(m, c, config, w)
    else:
        est, ev = engine_estimate(m, c, config, w, engine, model_id, nsa_backends=nsa_backends)
    perf, fits = est.perf, est.fits
    solver: dict[str, Any] = {"status": "EVALUATED"}
    if compare:
        # The optimum on the same engine may use the runtime choices the user's config makes, besides
        # the defaults.
        d = ServingOptions(engines=(engine,))
        update: dict[str, Any] = {
            "kv_cache_dtypes": tuple(dict.fromkeys((*d.kv_cache_dtypes, config.kv_cache_dtype))),
            "quantizations": tuple(dict.fromkeys((*d.quantizations, config.quantization))),
        }
        if engine == "vllm":
            update["gpu_memory_utilizations"] = tuple(
                dict.fromkeys((*d.gpu_memory_utilizations, config.gpu_memory_utilization))
            )
        # A configuration that misses the workload's limits serves none of it: the optimum meets them
        # (its TPOT 190 ms against a 50 ms limit read as 25.9% above the optimum).
        mine = perf.output_tokens_per_s if fits and not est.slo_violations else 0.0
        solver.update(_optimum(m, c, w, d.model_copy(update=update), "output_tokens_per_s", mine, model_id))
    kv = ev.memory if ev is not None else None
    plan = ServingPlan(
        at_request_rate=at_request_rate(m, c, config, w, perf, engine, kv) if fits else None,
        model=m,
        model_id=model_id,
        cluster=c,
        workload=w,
        objective="evaluate",
        config=config,
        memory=est.memory,
        perf=perf,
        fits=fits,
        problems=(*est.problems, *est.slo_violations),
        solver=SolverReport(**solver),
        engine=engine,
        engine_eval=ev,
    )
    return with_benchmark(plan)


def _workload_context(w: Serving, m: ModelSpec) -> int:
    """The max_model_len that serves the workload `w` on model `m` when none is given (`deploy_len`),
    refused in the terms the user gave (isl + osl, or the workload's max_model_len) where it runs past
    the model's max_position_embeddings or the longest context a configuration holds: the engines'
    check (`memory.vllm_config.validate`) named a --max-model-len never given, and the ServingConfig
    bound a field ("max_model_len: Input should be ≤ 16777216").

    Raises:
        InputError: the workload's requests need more context than the model (or any config) holds.
    """
    need, limit, most = w.required_len, m.max_position_embeddings, BOUNDS["max_model_len"].hi
    if need <= min(limit, most):
        return w.deploy_len(limit)
    given = (
        f"the workload's max_model_len {need} is"
        if w.max_model_len is not None
        else f"the workload's requests (isl {w.isl} + osl {w.osl} = {need} tokens) need a context of {need},"
    )
    if need > limit:
        raise InputError(
            f"{given} over {m.name}'s max_position_embeddings ({limit}): shorten the requests (vLLM "
            "refuses a longer context unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, SGLang unless "
            "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1)"
        )
    raise InputError(f"{given} over the longest context a configuration holds ({most})")


def _with_context(config: ServingConfig, w: Serving, m: ModelSpec) -> ServingConfig:
    """`config` serving the workload `w`: the context `plan` would deploy for it (`deploy_len`) where
    the config leaves `max_model_len` at its default; a set one shorter than the context the workload
    asks for is an InputError (the plan would serve shorter requests than it reports)."""
    if "max_model_len" not in config.model_fields_set:
        return config.model_copy(update={"max_model_len": _workload_context(w, m)})
    if w.max_model_len is not None and config.max_model_len < w.max_model_len:
        raise InputError(
            f"the ServingConfig's max_model_len={config.max_model_len} is shorter than the workload's "
            f"{w.max_model_len}"
        )
    return config


JOB_FIELDS = ("seq_len", "global_batch", "precision")
"""What a training job (`Training`) and a layout (`TrainingConfig`) both state."""


def _with_job(config: TrainingConfig, w: Training) -> TrainingConfig:
    """`config` running the job `w`: the job's sequence length, global batch and precision where the
    config leaves them at their defaults; a value the config sets that differs is an InputError (the
    plan would price one job and report another)."""
    update = {f: getattr(w, f) for f in JOB_FIELDS if f not in config.model_fields_set}
    clash = [
        f"{f}={getattr(config, f)} (the workload's is {getattr(w, f)})"
        for f in JOB_FIELDS
        if f in config.model_fields_set and getattr(config, f) != getattr(w, f)
    ]
    if clash:
        raise InputError(
            "the TrainingConfig sets another job than the Training workload: " + "; ".join(clash)
        )
    return config.model_copy(update=update)


def training_memory(
    model: Any, gpu: GPU | str, config: TrainingConfig, *, margins: MemoryConfig | None = None
) -> TrainingMemoryReport:
    """Per-GPU memory of every pipeline stage of the training layout `config` on `gpu`, and whether it
    fits after margins. `model`: an id, a path or a ModelSpec; `gpu`: a GPU or its name.

    Raises:
        InputError: a layout the model or the GPU rules out (`validation.training_problems`).
    """
    from autoparallel.memory import training
    from autoparallel.memory.margins import MemoryConfig

    if not isinstance(config, TrainingConfig):
        raise InputError(f"config must be a TrainingConfig, got {type(config).__name__}")
    config = _config(config)
    if margins is not None and not isinstance(margins, MemoryConfig):
        raise InputError(
            "margins must be a MemoryConfig (autoparallel.memory.margins) or None, got "
            f"{type(margins).__name__}"
        )
    margins = None if margins is None else revalidated(margins, "margins")
    m = _model(model)
    if not isinstance(gpu, str | GPU):
        raise InputError(f"gpu must be a GPU or its name, got {type(gpu).__name__}")
    g = get_gpu(gpu) if isinstance(gpu, str) else revalidated(gpu, "gpu")
    config = config.model_copy(update={"precision": job_precision(config.precision, g)})
    require_training(m, None, config, g)
    return training.training_memory(m, g, config, margins=margins)


def _offload_problem(framework: TrainingFramework, m: ModelSpec, config: TrainingConfig) -> str | None:
    """Why `framework` does not run `config`'s CPU offload (None: it does, it offloads nothing, or its
    ZeRO stage is refused anyway: `validation.zero_stage_problem`). One rule with the planner, asked
    of it for the one stage: the offload modes `TrainingOptions.offload` adds
    (`solvers.training.space._state_modes`: optimizer offload at ZeRO >= 1 or dist, parameter offload
    at ZeRO-3 under DeepSpeed only), ZeRO 0-3 counted as run under Megatron (evaluate emits
    --grad-reduce-in-bf16 for them). An offload outside it was priced as run: fits True with the
    states on the GPU. The words are the emitters' (`frameworks.deepspeed._validate`, Megatron's
    `_validate` and its note on offload_params)."""
    from autoparallel.solvers.training.space import StateMode, _state_modes

    opt, params, zero = config.offload_optimizer, config.offload_params, config.zero
    if not (opt or params):
        return None
    options = TrainingOptions(
        framework=framework, zero_stages=(zero,), offload=True, grad_reduce_in_bf16=framework == "megatron"
    )
    modes = _state_modes(m, options, False, {})
    if (
        StateMode(zero=zero) not in modes
        or StateMode(zero=zero, offload_optimizer=opt, offload_params=params) in modes
    ):
        return None
    if opt and StateMode(zero=zero, offload_optimizer=True) not in modes:
        if framework == "deepspeed":
            return "offload_optimizer needs ZeRO stage 1, 2 or 3 (DeepSpeed offloads sharded states)"
        return "offload_optimizer needs the distributed optimizer (zero=dist or ZeRO >= 1) in Megatron"
    if framework == "deepspeed":
        return f"offload_params needs ZeRO-3 (parameter partitioning); zero is stage {zero.value}"
    return (
        "offload_params has no Megatron-Core equivalent; parameters stay on the GPU (Megatron-Core "
        "offloads optimizer states alone; DeepSpeed offloads parameters under ZeRO-3)"
    )


def _require_deepspeed_sharding(m: ModelSpec, config: TrainingConfig) -> None:
    """InputError where DeepSpeed does not run `config`'s sharding as priced: `zero_stage_problem`
    (dist is Megatron's distributed optimizer; no ZeRO-3 over DeepSpeed's MoE layers), the CPU offload
    it runs (`_offload_problem`: optimizer at ZeRO 1-3, parameters at ZeRO-3) and its
    PipelineEngine's assert that ZeRO-2/3 and pipeline stages do not mix
    (deepspeed/runtime/pipe/engine.py); an expert tensor-parallel degree other than 1 or tp, as
    DeepSpeed splits experts over the whole tensor-parallel group or not at all
    (`frameworks.deepspeed.expert_tp_problem`). The emitters translate such layouts where they can (a
    Megatron plan's ds_config); a DeepSpeed evaluation is refused them, as its planner never picks them."""
    from autoparallel.configs import ZeroStage
    from autoparallel.frameworks.deepspeed import expert_tp_problem
    from autoparallel.validation import zero_stage_problem

    checks = (
        zero_stage_problem("deepspeed", m, config.zero),
        _offload_problem("deepspeed", m, config),
        expert_tp_problem(m, config),
    )
    problems = [p for p in checks if p is not None]
    if config.pp > 1 and config.zero in (ZeroStage.GRADIENTS, ZeroStage.PARAMETERS):
        problems.append(
            f"zero={config.zero.value} with pp={config.pp}: DeepSpeed's PipelineEngine runs ZeRO 0 or 1 only"
        )
    if problems:
        raise InputError("invalid DeepSpeed training configuration: " + "; ".join(problems))


def _evaluate_training(
    m: ModelSpec,
    c: Cluster,
    config: TrainingConfig,
    w: Training,
    compare: bool,
    model_id: str,
    *,
    framework: TrainingFramework = "megatron",
) -> TrainingPlan:
    """`config` under `framework`'s rules (`validation.require_training`: DeepSpeed's Ulysses
    replicates KV heads where Megatron's context parallelism splits them) and on GPUs the launch lines
    start (`frameworks._common.node_shape`, the planner's rule on world sizes), with only the CPU
    offload the framework runs (`_offload_problem`, the planner's rule: an offload it does
    not run was priced as run, fits True where the GPU holds the states), with the
    optimum of the same framework when `compare`."""
    from autoparallel.frameworks._common import node_shape
    from autoparallel.memory import training
    from autoparallel.perf.training import cost_to_tokens, training_perf

    config = config.model_copy(update={"precision": job_precision(config.precision, c.gpu)})
    require_training(m, c, config, framework=framework)
    # The launch lines' rule on GPU counts, which the planner's world sizes follow
    # (`solvers.training.space.world_size_problem`): 9 GPUs on nodes of 8 were evaluated, then refused
    # by `torchrun_command` (the CLI's exit 2, the API's traceback from `to_dict`).
    node_shape(config.world_size, c)
    if framework == "deepspeed":
        _require_deepspeed_sharding(m, config)
    elif (problem := _offload_problem("megatron", m, config)) is not None:
        raise InputError(f"invalid Megatron training configuration: {problem}")
    mem, perf = training.training_memory(m, c.gpu, config), training_perf(m, c, config)
    cost = cost_to_tokens(m, c, config, w.tokens, perf=perf) if w.tokens else None
    solver: dict[str, Any] = {"status": "EVALUATED"}
    if compare:
        mine = perf.tokens_per_s if mem.fits else 0.0
        options = TrainingOptions(framework="deepspeed") if framework == "deepspeed" else None
        solver.update(_optimum(m, c, w, options, "tokens_per_s", mine, model_id))
    return TrainingPlan(
        model=m,
        model_id=model_id,
        cluster=c,
        workload=w,
        objective="evaluate",
        config=config,
        memory=mem,
        perf=perf,
        cost=cost,
        fits=mem.fits,
        problems=tuple(mem.problems),
        solver=SolverReport(**solver),
        framework=framework,
    )


# ----- analyze, pareto, sweep --------------------------------------------------------------------
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
    """Fit and memory without a workload: every valid (tp, pp) on the cluster, as vLLM would start it
    (`vllm_memory`: a model vLLM does not run on the GPU fits in no shape)."""
    m, c = _model(model), _cluster(cluster)
    if max_model_len is not None:
        max_model_len = check_number("max_model_len", max_model_len)
    rows: list[dict[str, Any]] = []
    for tp in (t for t in (1, 2, 4, 8, 16, 32, 64) if t <= c.gpus_per_node and not m.tp_violations(t)):
        for pp in (p for p in (1, 2, 4, 8, 16) if tp * p <= c.world_size and not m.pp_violations(p)):
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


DEFAULT_FRONT_OBJECTIVES = {"serving": ("throughput", "tpot"), "training": ("throughput", "headroom")}
"""The front `pareto` draws when no objectives are given, by the workload's kind."""


def pareto(
    model: Any,
    cluster: Cluster | str,
    objectives: tuple[str, ...] | None = None,
    *,
    workload: Serving | Training | str = "chatbot",
    points: int | None = None,
    settings: SolverSettings | None = None,
    options: Any = None,
    on_point: Callable[[int], None] | None = None,
) -> Front:
    """The exact trade-off front between two or more objectives (serving, or training for a `Training`
    workload), best first on the first; complete unless `points` (default 200) cuts it (`Front.complete`).
    `objectives` default: throughput vs TPOT for serving, throughput vs headroom for training
    (`DEFAULT_FRONT_OBJECTIVES`). `on_point` is called with the count of points found after each one
    (every point is one or more CP-SAT queries of up to `settings.time_limit_s`)."""
    from autoparallel.solvers.pareto import DEFAULT_CAP, pareto_serving, pareto_training
    from autoparallel.sweeps.front import Front

    m, c, w = _model(model), _cluster(cluster), _workload(workload)
    if objectives is None:
        objectives = DEFAULT_FRONT_OBJECTIVES["training" if isinstance(w, Training) else "serving"]
    if isinstance(objectives, str) or not isinstance(objectives, (tuple, list)):
        raise InputError(f"objectives must be a list of objective names, got {objectives!r:.60}")
    opts, mid = _options(options, w), served_id(model, m)
    settings, on_point = given_settings(settings), _callback(on_point, "on_point")
    if isinstance(w, Training):
        require_training_job(c, w.precision)
        tf = pareto_training(
            m,
            c,
            w,
            objectives=tuple(objectives),
            points=DEFAULT_CAP if points is None else check_number("points", points),
            settings=settings,
            options=opts,
            on_point=on_point,
        )
        plans: list[Plan] = [_training_plan(m, c, w, s, mid, opts) for s in tf]
        return Front(plans, tf.objectives, tf.complete, tf.cap, tf.solves, tf.wall_s)
    sf = pareto_serving(
        m,
        c,
        w,
        objectives=tuple(objectives),
        points=DEFAULT_CAP if points is None else check_number("points", points),
        settings=settings,
        options=opts,
        on_point=on_point,
    )
    plans = [_serving_plan(m, c, w, s, mid) for s in sf]
    return Front(plans, sf.objectives, sf.complete, sf.cap, sf.solves, sf.wall_s)


def pareto_deployment(
    model: Any,
    cluster: Cluster | str,
    objectives: tuple[str, ...] = ("throughput", "tpot"),
    *,
    workload: Serving | str = "chatbot",
    disagg: str = "auto",
    points: int | None = None,
    settings: SolverSettings | None = None,
    options: ServingOptions | None = None,
    on_point: Callable[[int], None] | None = None,
) -> DeploymentFront:
    """The exact front over deployments of `model` on the whole cluster whose points may be aggregated or
    disaggregated (prefill / decode engines): the mode is one more decision of the CP-SAT model.

    objectives: two or more of throughput (tokens/s), tpot, cost ($/hour), gpus; the workload's TTFT
        and TPOT are limits. disagg: "auto" (either mode per point), "on" (disaggregated only),
        "off" (aggregated only). on_point: as `pareto` takes it.

    Raises:
        InfeasibleError: no deployment meets the limits (with "on": why no disaggregated one, with numbers).
        InputError: bad objectives, mode or workload (a training workload).
    """
    from autoparallel.solvers.deployment.front import pareto_mixed
    from autoparallel.solvers.deployment.space import FleetModel
    from autoparallel.solvers.pareto import DEFAULT_CAP
    from autoparallel.sweeps.deployment_front import DeploymentFront

    if isinstance(objectives, str) or not isinstance(objectives, (tuple, list)):
        raise InputError(f"objectives must be a list of objective names, got {objectives!r:.60}")
    m, c, w = _model(model), _cluster(cluster), _workload(workload)
    if not isinstance(w, Serving):
        raise InputError("a deployment front (--disagg) is for serving workloads, not training")
    opts = _options(options, w)
    settings, on_point = given_settings(settings), _callback(on_point, "on_point")
    fm = FleetModel(m, w, served_id(model, m))
    mf = pareto_mixed(
        fm,
        c,
        objectives=tuple(objectives),
        mode=disagg,
        settings=settings,
        options=opts,
        points=DEFAULT_CAP if points is None else check_number("points", points),
        on_point=on_point,
    )
    return DeploymentFront(
        list(mf),
        mf.objectives,
        mf.complete,
        mf.cap,
        mf.solves,
        mf.wall_s,
        mode=disagg,
        note=mf.note,
        candidates=mf.candidates,
    )


class AutoParallel:
    """Advanced settings in one place: solver limits and the knobs' allowed values.

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

    @overload
    def solve(
        self, model: Any, cluster: Cluster | str, workload: Training, objective: Any = ...
    ) -> TrainingPlan: ...
    @overload
    def solve(
        self, model: Any, cluster: Cluster | str, workload: Serving | str = ..., objective: Any = ...
    ) -> ServingPlan: ...
    @overload
    def solve(
        self, model: Any, cluster: Cluster | str, workload: Serving | Training | str, objective: Any = ...
    ) -> Plan: ...
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
        objectives: tuple[str, ...] | None = None,
        workload: Serving | Training | str = "chatbot",
        points: int | None = None,
    ) -> Front:
        """`pareto` with this object's settings."""
        w = _workload(workload)
        opts = self.training_options if isinstance(w, Training) else self.serving_options
        settings = self.settings
        return pareto(model, cluster, objectives, workload=w, points=points, settings=settings, options=opts)

    @overload
    def evaluate(
        self, model: Any, cluster: Cluster | str, config: TrainingConfig, workload: Training | None = ...
    ) -> TrainingPlan: ...
    @overload
    def evaluate(
        self, model: Any, cluster: Cluster | str, config: ServingConfig, workload: Serving | str | None = ...
    ) -> ServingPlan: ...
    @overload
    def evaluate(
        self,
        model: Any,
        cluster: Cluster | str,
        config: ServingConfig | TrainingConfig,
        workload: Serving | Training | str | None = ...,
    ) -> Plan: ...
    def evaluate(
        self,
        model: Any,
        cluster: Cluster | str,
        config: ServingConfig | TrainingConfig,
        workload: Serving | Training | str | None = None,
    ) -> Plan:
        """`evaluate` (no settings involved; for symmetry)."""
        return evaluate(model, cluster, config, workload)
