"""From a CP-SAT solution to a checked `ServingConfig`, with provenance.

The decoder reads the one-hot knobs, builds the vLLM configuration, re-evaluates it with the float
model (memory/serving.py + perf/serving.py, the numbers users see) and raises InternalError when
the solver's scaled totals disagree with the float model beyond rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from autoparallel import objectives
from autoparallel.configs import ServingConfig
from autoparallel.engine_compare import num_text  # the engines' sentences' numbers: 15,836, not 1.584e+04
from autoparallel.errors import InternalError
from autoparallel.hardware.gpu import host_size
from autoparallel.perf.engine_support import ENGINE_NAMES
from autoparallel.perf.serving import ServingEstimate, evaluate_serving
from autoparallel.perf.serving_engines import EngineEvaluation, engine_estimate, held_tokens
from autoparallel.solvers import units
from autoparallel.solvers.serving.space import kv_bound_cap
from autoparallel.solvers.settings import SolverSettings, SolverStats
from autoparallel.workload import ms_over

if TYPE_CHECKING:
    from autoparallel.solvers.serving.space import Point, ServingSpace, Shape

Objective = str | tuple[str, ...] | dict[str, float]
"""An objective name, a lexicographic order of names, or weights {name: weight}."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class RunnerUp(_Frozen):
    """The best configuration of another (tp, pp, ep) shape, and why it lost."""

    config: ServingConfig
    """Its vLLM configuration."""
    estimate: ServingEstimate
    """Its float-model estimate."""
    why_lost: str
    """One sentence comparing it with the winner."""
    engine: str = "vllm"
    """Its serving engine."""


class ServingSolution(_Frozen):
    """A planned deployment: the configuration, its float estimate, and how it was decided."""

    config: ServingConfig
    """The configuration to run (vLLM's vocabulary; `engine` says which engine runs it)."""
    engine: str = "vllm"
    """The serving engine: vllm, sglang or trtllm."""
    engine_eval: EngineEvaluation | None = None
    """SGLang / TensorRT-LLM: the engine's own evaluation (its KV pool, resolved memory setting);
    None for vLLM, whose memory is `estimate.memory`."""
    estimate: ServingEstimate
    """Memory and speed from the float model (every number a user sees)."""
    objective: Objective
    """What was optimized."""
    objective_value: float
    """The primary objective from the float model (tokens/s, ms, US$ / M tokens or GiB)."""
    solver: SolverStats
    """Solver status, bound, gap and settings."""
    binding: tuple[str, ...]
    """Constraints that stop the plan from being better, each with its numbers."""
    runner_up: RunnerUp | None = None
    """Best plan with a different (tp, pp, ep) shape, or None when no other shape is feasible."""
    settings: SolverSettings
    """The settings used."""
    engines: tuple[EngineBest, ...] = ()
    """With several engines in the space: each engine's best plan, in the options' order."""


class EngineBest(_Frozen):
    """The best plan of one serving engine (the same CP-SAT model with that engine fixed)."""

    engine: str
    """vllm, sglang or trtllm."""
    solution: ServingSolution | None
    """Its best plan (None: no admissible plan on this engine)."""
    note: str = ""
    """Why there is none."""


def objective_value(estimate: ServingEstimate, name: str) -> float:
    """Objective `name` of an estimate, in float units (`objectives.value`)."""
    return objectives.value(estimate.perf, name)


def decode(space: ServingSpace, point: Point) -> tuple[ServingConfig, ServingEstimate]:
    """`decode_engine` without the engine's own evaluation."""
    config, est, _ = decode_engine(space, point)
    return config, est


def evaluate_point(
    space: ServingSpace, config: ServingConfig, engine: str
) -> tuple[ServingEstimate, EngineEvaluation | None]:
    """The float model's estimate of `config` on `engine` (vLLM: `evaluate_serving`; SGLang /
    TensorRT-LLM: `engine_estimate`)."""
    if engine == "vllm":
        est = evaluate_serving(
            space.model, space.cluster, config, space.workload, vllm_version=space.options.vllm_version
        )
        return est, None
    return engine_estimate(
        space.model,
        space.cluster,
        config,
        space.workload,
        engine,
        space.model.name,
        vllm_version=space.options.vllm_version,
    )


def decode_engine(
    space: ServingSpace, point: Point
) -> tuple[ServingConfig, ServingEstimate, EngineEvaluation | None]:
    """The configuration of `point`, re-evaluated with the float model of its engine and checked
    against the tables; the engine's own evaluation for SGLang / TensorRT-LLM.

    Raises:
        InternalError: the float model says the plan cannot run, runs a smaller batch, misses a
            limit the solver enforced, or its times / throughput / memory differ from the tables by
            more than rounding.
    """
    config = space.config(point.shape, point.runtime, point.batch, point.util, point.mml, point.replicas)
    engine = space.runtimes[point.runtime].engine
    est, ev = evaluate_point(space, config, engine)
    where = f"solver and float model ({ENGINE_NAMES[engine]}) disagree on {config!r}"
    if not est.fits:
        raise InternalError(f"{where}: the float model says it cannot start: {'; '.join(est.problems)}")
    running = space.shapes[point.shape].running_at(config.max_num_seqs, space.workload.in_flight)
    if est.perf.batch_size != running:
        raise InternalError(
            f"{where}: it runs {est.perf.batch_size:g} sequences ({est.perf.batch_limit}), "
            f"not the {running:g} of max_num_seqs={config.max_num_seqs} the tables hold"
        )
    if est.slo_violations:
        raise InternalError(f"{where}: {'; '.join(est.slo_violations)}")
    t, i = space.tables, point.entry(space)
    checks = (
        ("TPOT µs", t.step_us[i], est.perf.tpot_ms * 1e3, 1.0),
        ("TTFT µs", t.ttft_us[i], est.perf.ttft_ms * 1e3, 1.0),
        ("replica milli-tokens/s", t.tps_milli[i], est.perf.output_tokens_per_s_per_replica * 1e3, 1.0),
        (
            "memory KiB",
            t.mem_used_kib[i],
            space.budget_kib[point.util] - est.perf.kv_headroom_gib * 2**20,
            2.0,
        ),
    )
    for what, scaled, exact, tolerance in checks:
        if abs(scaled - exact) > tolerance + 1e-9 * abs(exact):
            raise InternalError(f"{where}: {what} {scaled} in the tables vs {exact:.3f} from the float model")
    return config, est, ev


def binding_constraints(space: ServingSpace, point: Point, estimate: ServingEstimate) -> tuple[str, ...]:
    """What stops the next larger max_num_seqs the space offers (the grid's, or the entry's KV-bound
    batch: `ServingSpace.batch_order`), and whether all GPUs are used."""
    t, w = space.tables, space.workload
    shape = space.shapes[point.shape]
    out: list[str] = []
    b = point.batch
    engine = space.runtimes[point.runtime].engine
    order = space.batch_order(point.shape, point.runtime, point.mml)
    ups = order[order.index(b) + 1 :]
    if engine == "trtllm":  # the next batch TensorRT-LLM can run: a multiple of pp (`trtllm_batch_problem`)
        ups = [k for k in ups if space.batch_value(point.shape, point.runtime, k, point.mml) % shape.pp == 0]
    here = space.batch_value(point.shape, point.runtime, b, point.mml)
    if ups:
        up = ups[0]
        nxt = space.batch_value(point.shape, point.runtime, up, point.mml)
        j = space.flat(point.shape, point.runtime, up, point.mml)
        budget = space.budget_kib[point.util]
        if engine != "vllm" and (not t.evaluated[j] or t.mem_used_kib[j] > budget):
            out.append(
                f"kv_cache: max_num_seqs={nxt} would need {(t.mem_used_kib[j] - t.fixed_kib[j]) / 2**20:.2f} "
                f"GiB of KV per GPU; the {ENGINE_NAMES[engine]} pool holds "
                f"{(budget - t.fixed_kib[j]) / 2**20:.2f} GiB "
                f"({estimate.perf.kv_capacity_seqs} sequences of {held_tokens(w, engine, 1):,} tokens)"
            )
        elif not t.evaluated[j] or t.mem_used_kib[j] > budget:
            out.append(
                f"kv_cache: max_num_seqs={nxt} would need {t.mem_used_kib[j] / 2**20:.2f} GiB per "
                f"GPU, over the {budget / 2**20:.2f} GiB budget (the KV cache holds "
                f"{estimate.perf.kv_capacity_seqs} sequences of {w.isl + w.osl // 2} tokens)"
            )
        elif w.tpot_ms is not None and t.step_us[j] > units.us_down(w.tpot_ms / 1e3):
            out.append(
                f"tpot_slo: max_num_seqs={nxt} would give TPOT "
                f"{ms_over(t.step_us[j] / 1e3, w.tpot_ms, 1)} ms > {w.tpot_ms:g} ms"
            )
        elif w.ttft_ms is not None and t.ttft_us[j] > units.us_down(w.ttft_ms / 1e3):
            out.append(
                f"ttft_slo: max_num_seqs={nxt} would give TTFT "
                f"{ms_over(t.ttft_us[j] / 1e3, w.ttft_ms, 0)} ms > {w.ttft_ms:g} ms"
            )
        elif w.in_flight is not None and (
            shape.replicas_at(nxt, w.in_flight) < point.replicas
            or shape.running_at(nxt, w.in_flight) <= estimate.perf.batch_size
        ):
            more = shape.replicas_at(nxt, w.in_flight)
            out.append(
                f"concurrency: the workload's {w.in_flight} requests in flight would fill {more} "
                f"replica(s) of max_num_seqs={nxt}, not {point.replicas}"
                if more < point.replicas
                else f"concurrency: the workload's {w.in_flight} requests in flight run "
                f"{estimate.perf.batch_size:g} per replica on {point.replicas}; "
                f"max_num_seqs={nxt} runs no more"
            )
    elif space.is_kv_index(b):
        tokens = w.isl + w.osl // 2 if engine == "vllm" else held_tokens(w, engine, 1)
        holds = f"{estimate.perf.kv_capacity_seqs} sequences of {tokens:,} tokens"
        out.append(
            f"max_num_seqs: {here} is the most {ENGINE_NAMES[engine]} runs by default (its KV cache "
            f"holds more: {holds})"
            if here == kv_bound_cap(engine, shape.pp)
            else f"kv_cache: max_num_seqs={here} is the most the KV cache holds ({holds})"
        )
    elif w.in_flight is not None and shape.running_at(here, w.in_flight) < here:
        # the grid's top, but the client's requests fill less of it: no larger value would run more
        out.append(
            f"concurrency: the workload's {w.in_flight} requests in flight run "
            f"{estimate.perf.batch_size:g} per replica on {point.replicas}, fewer than max_num_seqs={here}"
        )
    else:
        out.append(f"max_num_seqs: {here} is the largest allowed value")
    out += gpus_binding(space, point)
    return tuple(out)


def gpus_binding(space: ServingSpace, point: Point) -> list[str]:
    """The binding `gpus: U of G GPUs used` when no further replica fits (`Shape.max_replicas`) or the
    shape is one EP engine, naming the GPUs a node leaves idle: replicas narrower than a node that do
    not divide it stay inside one NVLink domain each (`perf.serving.replicas_on`: tp=8 pp=4 on 1x36xGB200
    uses 32 GPUs, 4 idle). `used + per > G` missed the binding where the leftovers of two nodes add up
    to a replica (tp=8 on 2x36xGB200: 64 of 72 used). An EP engine short of the GPUs says why
    (`ep_idle_reason`): it was a bare "gpus: 16 of 24 GPUs used" (DeepSeek-V3 on 3x8xH100)."""
    shape = space.shapes[point.shape]
    per = shape.gpus_per_replica
    used = per * point.replicas
    if point.replicas < shape.max_replicas and not shape.ep:
        return []
    text = f"gpus: {used} of {space.gpus} GPUs used"
    if shape.ep and used < space.gpus:
        return [text + ep_idle_reason(space, point.shape, used)]
    node = space.cluster.gpus_per_node
    if not shape.ep and used < space.gpus and per < node <= space.gpus and node % per:
        text += (
            f"; {space.gpus - used} idle: a replica of {per} GPUs stays inside one NVLink domain (node) of "
            f"{node} GPUs, which holds {node // per} ({node % per} GPUs of each left over)"
        )
    return [text]


DEPLOYMENT_PLANNER = (
    'the whole-cluster deployment planner (plan\'s "Whole cluster" section, solve_fleet in Python)'
)
"""Where a plan of several engines comes from, named where the single-engine plan idles GPUs."""


def ep_idle_reason(space: ServingSpace, s: int, used: int) -> str:
    """Why an expert-parallel plan (shape `s`, `used` GPUs) idles the rest of the cluster: the
    single-engine planner runs ONE EP engine, its data ranks part of the shape (`Shape.ep_replicas`),
    so the GPUs past it are idle in this plan; and why no wider EP engine was chosen: the space holds
    valid wider ones (then the solver found none better), or none is valid (`wider_ep_rule`)."""
    shape = space.shapes[s]
    body = f"tp={shape.tp}" + (f" pp={shape.pp}" if shape.pp > 1 else "")
    text = (
        f": the single-engine planner runs one expert-parallel engine ({body} x {shape.ep_replicas} data "
        f"ranks, ep={shape.ep_ranks}); {DEPLOYMENT_PLANNER} may place more on the other {space.gpus - used}"
    )
    wider = [w for w in space.shapes if w.ep and w.gpus_per_replica * w.ep_replicas > used]
    valid = sorted({w.gpus_per_replica * w.ep_replicas for w in wider if not w.violations})
    if valid:
        sizes = ", ".join(map(str, valid[:-1])) + (" and " if len(valid) > 1 else "") + str(valid[-1])
        return f"{text}; the solver found no better plan on the space's wider EP engines ({sizes} GPUs)"
    return f"{text}; {wider_ep_rule(space, shape, wider)}"


def wider_ep_rule(space: ServingSpace, shape: Shape, wider: list[Shape]) -> str:
    """Why the space holds no valid EP engine wider than `shape` (`wider`: its wider EP shapes, each
    with violations). The rules of `shape_domain` and `ep_violations`: the EP ranks (tp x data ranks)
    divide the experts and lie on whole hosts or inside one; the next rank count that passes both
    needs more GPUs than the plan may use (DeepSeek-V3 on 24 H100: 16 ranks, the next is 32), there
    is none (8 experts, 8 ranks), or the wider shapes break a rule of their own (named)."""
    experts, pp, gpus, ranks = space.model.num_experts, shape.pp, space.gpus, shape.ep_ranks
    host = host_size(space.cluster.gpu.name, space.cluster.gpus_per_node)
    divisors = [e for e in range(ranks + 1, experts + 1) if experts % e == 0]
    nxt = next((e for e in divisors if e % host == 0 or host % e == 0), None)
    off = [e for e in divisors if e * pp <= gpus and (nxt is None or e < nxt) and e % host and host % e]
    rule = f"EP ranks must divide the {experts} experts"
    if off:
        rule += f" and lie on whole {host}-GPU hosts or inside one ({', '.join(map(str, off))} do not)"
    if nxt is None:
        return f"no wider EP engine exists: {rule}, and no count above {ranks} does"
    if nxt * pp > gpus:
        need = f"{nxt * pp} GPUs" if pp == 1 else f"{nxt * pp} GPUs at pp={pp}"
        nxt_text = f"the next count that does, {nxt}, needs {need} of the {gpus}"
        return f"no wider EP engine exists: {rule}, and {nxt_text}"
    broken = list(dict.fromkeys(v for w in wider for v in w.violations))
    if broken:
        return "no wider EP engine is valid: " + "; ".join(broken[:2])
    return "the space holds no wider EP engine"


def why_lost(
    objective: str,
    best: ServingEstimate,
    best_config: ServingConfig,
    other: ServingEstimate,
    other_config: ServingConfig,
) -> str:
    """One sentence: the runner-up's objective next to the winner's, and the main differences."""
    mine, theirs = objective_value(best, objective), objective_value(other, objective)
    delta = (theirs - mine) / abs(mine) * 100 if mine else 0.0
    a, b = other.perf, best.perf
    ep = other_config.enable_expert_parallel
    # the only difference at times (TensorRT-LLM's DeepSeek-V3 on 8 GPUs ties with and without EP)
    differs = (
        f", {'expert parallel' if ep else 'no expert parallel'} vs {'not' if ep else 'expert parallel'}"
        if ep != best_config.enable_expert_parallel
        else ""
    )
    return (
        f"{objective} {num_text(theirs)} vs {num_text(mine)} ({delta:+.1f}%): batch {a.batch_size:g} vs "
        f"{b.batch_size:g} per replica, TPOT {a.tpot_ms:.1f} vs {b.tpot_ms:.1f} ms, "
        f"{other_config.gpus_per_replica} vs {best_config.gpus_per_replica} GPUs per replica{differs}"
    )
