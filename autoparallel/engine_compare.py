"""`plan --engine auto`: vLLM, SGLang and TensorRT-LLM side by side, and why the winner wins.

Each engine's best plan comes from the serving planner with that engine fixed (the same CP-SAT model,
`solvers/serving/solve.engine_bests`; the winner's is the plan over all three, under its own solver
status: a FEASIBLE one under a tight time limit is shown as FEASIBLE, never as "no plan"); each keeps
CUDA graphs where its eager twin ties (`solve.prefer_cuda_graphs`), so eager-ness is cited as a
difference only where it changes the numbers. Here they are only compared. The reason is read from the
numbers of the two plans (never canned): what differs first among the GPUs in use, the running batch
where the loser's is smaller (and what truly caps it: its KV pool under its memory rule, the engine's
running cap, an SLO, the concurrency; the max_num_seqs grid's top only where a larger value would run
more), the step time where the loser runs as large a batch or larger (the engines' schedulers and
efficiency factors) and TTFT (the step token budget, request overhead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autoparallel.objectives import SERVING, primary_name
from autoparallel.perf.engine_support import ENGINE_NAMES
from autoparallel.perf.serving_steps import SCHEDULING

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.plan import ServingPlan

TIE = 1e-6
"""Relative difference of the primary objective below which two engines tie."""


def _primary(plan: ServingPlan) -> str:
    """The objective the engines are compared on: the plan's (`api._serving_plan` stores it canonical,
    `objectives.plan_label`): a name itself, a chain's first name (`ttft>throughput`: ttft). A weighted
    sum (`throughput=1,ttft=0.5`) has no single value: its first name, the one the plan's
    `solver.objective_value` reports (`solvers/serving/solve.make_solution`), so the loser may lead on
    it. Throughput for a plan built without a serving objective."""
    first = primary_name(plan.objective)
    return first if first in SERVING else "throughput"


def _value(plan: ServingPlan, name: str) -> float:
    return float(getattr(plan.perf, SERVING[name].attribute or "output_tokens_per_s"))


_GRID_TOP = "is the largest allowed value"
"""The end of the binding line (`solvers/serving/decoder.binding_constraints`) that blames the top of the
max_num_seqs grid the options allow."""


def _runs_more(plan: ServingPlan) -> bool:
    """A larger max_num_seqs would run more sequences: the batch is the engine's running cap at the
    plan's max_num_seqs, below what its KV cache holds and the client's concurrency sends."""
    p, w = plan.perf, plan.workload
    return (
        p.batch_limit in ("max_num_seqs", "max_running")
        and p.batch_size >= plan.config.max_num_seqs
        and p.kv_capacity_seqs > p.batch_size
        and (w.in_flight is None or w.in_flight / plan.config.replicas > p.batch_size)
    )


def _batch_cap(plan: ServingPlan) -> str:
    """What caps the plan's running batch, truthfully: its first binding line (what stops the next larger
    max_num_seqs: the KV cache, the engine's running cap, an SLO, the client's concurrency; the grid's top
    only where a larger max_num_seqs would run more), else the limit the float model reports."""
    p, c, w = plan.perf, plan.config, plan.workload
    line = next((x for x in plan.binding if not x.startswith("gpus:")), None)
    more = _runs_more(plan)
    if line is not None and (more or not line.endswith(_GRID_TOP)):
        return line
    if p.kv_capacity_seqs <= p.batch_size or p.batch_limit == "kv_cache":
        return f"its KV cache, which holds {p.kv_capacity_seqs} sequences of the running context"
    if p.batch_limit == "concurrency" or (
        w.in_flight is not None and w.in_flight / c.replicas <= p.batch_size
    ):
        return f"the client's concurrency ({p.batch_size:g} requests per replica)"
    if p.batch_size < c.max_num_seqs:
        return f"{ENGINE_NAMES[plan.engine]}'s running-request cap ({p.batch_size:g})"
    if line is None and more and plan.solver.status == "OPTIMAL":
        # no binding line: the next larger max_num_seqs fits every limit, and the engine's optimum left it
        return (
            f"its max_num_seqs={c.max_num_seqs}, the engine's own optimum: a larger one fits (its KV cache "
            f"holds {p.kv_capacity_seqs} sequences) but plans no better"
        )
    return f"its max_num_seqs={c.max_num_seqs}"


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def num_text(v: float) -> str:
    """A figure as the sentences print it: thousands separated from 1,000 (15,836), 4 digits below."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _runtime(c: ServingConfig) -> str:
    text = f"weights {c.quantization or 'as loaded'}, KV {c.kv_cache_dtype}"
    return text + (", eager" if c.enforce_eager else "")


def _width(plan: ServingPlan) -> int:
    """GPUs one engine (process group) of the plan spans."""
    c = plan.config
    return c.tp * c.replicas if c.enable_expert_parallel else c.gpus_per_replica


def _unused_factors(plan: ServingPlan) -> set[str]:
    """Efficiency factors the plan's step time does not read (perf/serving_steps.py): the MoE ones for
    a dense model, the block-FP8 ones without block-FP8 weights, FP4's scale without FP4 weights, the
    eager per-layer cost under CUDA graphs."""
    from autoparallel.perf.serving_facts import model_facts
    from autoparallel.perf.serving_steps import _tensor_tflops

    f = model_facts(plan.model, plan.config.quantization)
    out = {"source"}
    if not plan.model.is_moe:
        out |= {
            "moe_hbm_fraction",
            "moe_flops_fraction",
            "block_fp8_moe_flops_fraction",
            "moe_expert_overhead_s",
        }
    # Block-FP8 experts run at their own rate in place of the plain one (`stage_step_s`).
    out |= (
        {"moe_flops_fraction"} if f.block_fp8 else {"block_fp8_hbm_fraction", "block_fp8_moe_flops_fraction"}
    )
    if not _tensor_tflops(plan.cluster.gpu, f)[1]:  # the weights' GEMMs off FP4 tensor cores
        out.add("fp4_gemm_scale")
    if not plan.config.enforce_eager:
        out.add("eager_layer_overhead_s")
    return out


_POLICY = {
    "mixed": "mixes prompt chunks into the decode steps (vLLM V1's scheduler)",
    "prefill_first": "runs each prefill batch as a step of its own while the decodes wait (SGLang's "
    "default, no mixed chunk)",
    "no_evict": "runs each prompt's context phase in a step beside the decodes, up to max_num_tokens "
    "(TensorRT-LLM's in-flight batching)",
}
"""How each scheduler policy (`perf.serving_steps.SCHEDULING`) places prompt work among the decode steps."""


def _efficiency_diff(a: ServingPlan, b: ServingPlan) -> str:
    ea, eb = a.perf.efficiency.model_dump(), b.perf.efficiency.model_dump()
    for eff, dump in ((a.perf.efficiency, ea), (b.perf.efficiency, eb)):
        dump["block_fp8_moe_flops_fraction"] = eff.block_fp8_moe_fraction  # None reads as its fallback
    unused = _unused_factors(a) & _unused_factors(b)
    diffs = [
        f"{k} {ea[k] * 1e6:g} vs {eb[k] * 1e6:g} µs"
        if k.endswith("_s")
        else f"{k} {_fmt(ea[k])} vs {_fmt(eb[k])}"
        for k in ea
        if k not in unused and ea[k] != eb[k]
    ]
    return ", ".join(diffs) if diffs else "the same efficiency factors"


def _step_causes(other: ServingPlan, winner: ServingPlan) -> str:
    """What sets the two engines' step times apart: their schedulers' placement of the prompts' work
    where one runs prefill-only steps (`perf.serving_steps.SCHEDULING`: SGLang's add to TPOT at the
    same pure decode step), and their efficiency factors."""
    factors = f"efficiency factors: {_efficiency_diff(other, winner)}"
    mine, theirs = SCHEDULING[winner.engine], SCHEDULING[other.engine]
    if mine == theirs or "prefill_first" not in (mine, theirs):
        # vLLM and TensorRT-LLM both run prompt work in the decodes' steps (chunked or whole): the
        # step time differs by the factors; only SGLang's prefill-only steps stop the decodes
        return factors
    names = ENGINE_NAMES[other.engine], ENGINE_NAMES[winner.engine]
    same = abs(other.perf.decode_step_ms - winner.perf.decode_step_ms) <= 1e-6 * winner.perf.decode_step_ms
    decode = f"the same pure decode step {winner.perf.decode_step_ms:.2f} ms; " if same else ""
    return f"{decode}schedulers: {names[0]} {_POLICY[theirs]}, {names[1]} {_POLICY[mine]}; {factors}"


_MORE_IS_BETTER = ("throughput", "cost")
"""Objectives a larger running batch serves (more tokens per step on the same GPUs): under them a loser
with as large a batch loses on its step time, and a smaller batch is a cause."""


def why(winner: ServingPlan, other: ServingPlan) -> str:
    """One sentence: why `winner` beats `other` (or ties with it), from their numbers. It does not start
    with `other`'s name: its callers label it with that (the text's `- vLLM: ...` line, the JSON entry's
    `engine`), and "vLLM: vLLM throughput ..." said it twice."""
    name = _primary(winner)
    mine, theirs = _value(winner, name), _value(other, name)
    w_name, o_name = ENGINE_NAMES[winner.engine], ENGINE_NAMES[other.engine]
    delta = (theirs - mine) / abs(mine) if mine else 0.0
    wc, oc, wp, op = winner.config, other.config, winner.perf, other.perf
    if abs(delta) <= TIE:
        same = op.batch_size == wp.batch_size and abs(op.tpot_ms - wp.tpot_ms) <= 1e-9
        numbers = (
            f"same running batch {wp.batch_size:g} and TPOT {wp.tpot_ms:.1f} ms ({w_name}'s batch capped by "
            f"{_batch_cap(winner)})"
            if same
            else f"running batch {op.batch_size:g} vs {wp.batch_size:g}, TPOT {op.tpot_ms:.1f} vs "
            f"{wp.tpot_ms:.1f} ms"
        )
        return (
            f"ties with {w_name} on {name} ({num_text(mine)}): {numbers}; equal optima go to the engine "
            f"listed first"
        )
    head = f"{name} {num_text(theirs)} vs {num_text(mine)} ({100 * delta:+.1f}%)"
    if _runtime(oc) != _runtime(wc):  # the engines allow different precisions (engine_runtime_problem)
        head += f" [it runs {_runtime(oc)} where {w_name} runs {_runtime(wc)}]"
    if oc.gpus != wc.gpus:
        gpus = next((line for line in other.binding if line.startswith("gpus:")), f"{oc.gpus} GPUs")
        text = (
            f"{head}: it uses {oc.gpus} GPUs ({oc.replicas} x tp={oc.tp} pp={oc.pp}) where {w_name} uses "
            f"{wc.gpus} ({wc.replicas} x tp={wc.tp} pp={wc.pp}); {gpus}"
        )
        node = winner.cluster.gpus_per_node
        if other.engine != "vllm" and _width(winner) > node:
            text += (
                f"; {o_name} engines stay inside one node of {node} GPUs (their multi-node launch is not "
                f"emitted), while {w_name}'s best engine spans {_width(winner)}"
            )
        return text
    batch = f"running batch {op.batch_size:g} vs {wp.batch_size:g} per replica"
    if oc.replicas != wc.replicas:
        batch += (
            f" on {oc.replicas} (tp={oc.tp} pp={oc.pp}) vs {wc.replicas} (tp={wc.tp} pp={wc.pp}) replicas"
        )
    steps = f"TPOT {op.tpot_ms:.1f} vs {wp.tpot_ms:.1f} ms"
    longer = op.tpot_ms > wp.tpot_ms * (1 + TIE)
    if op.batch_size != wp.batch_size or oc.replicas != wc.replicas:
        o_run, w_run = op.batch_size * oc.replicas, wp.batch_size * wc.replicas
        if name not in _MORE_IS_BETTER:  # a latency or headroom objective: the numbers, no cause read in
            return f"{head}: {batch}, {steps}, TTFT {op.ttft_ms:.0f} vs {wp.ttft_ms:.0f} ms"
        if o_run >= w_run:  # as many running or more: only a longer step can lose
            if not longer:  # not batch / TPOT (a closed-loop client, a finite run): say no more than this
                return f"{head}: {batch}, {steps}, TTFT {op.ttft_ms:.0f} vs {wp.ttft_ms:.0f} ms"
            more = "the larger batch" if o_run > w_run else "as many requests"
            causes = _step_causes(other, winner)
            return f"{head}: it runs {more} ({batch}) but at a longer step, {steps} ({causes})"
        cap = _batch_cap(other)
        text = f"{head}: {batch}; {o_name}'s is capped by {cap}"
        if cap.startswith(("tpot_slo", "ttft_slo")):  # the step time decides the batch an SLO admits
            text += (
                f"; {w_name} runs batch {wp.batch_size:g} at TPOT {wp.tpot_ms:.1f} ms, TTFT "
                f"{wp.ttft_ms:.0f} ms ({_step_causes(other, winner)})"
            )
        elif longer:
            text += f"; its step is longer too, {steps} ({_step_causes(other, winner)})"
        return f"{text}. {_kv_pools(other, winner)}"
    if abs(op.tpot_ms - wp.tpot_ms) > 1e-9:
        return (
            f"{head}: same batch {wp.batch_size:g}, step time {op.tpot_ms:.2f} vs {wp.tpot_ms:.2f} ms "
            f"({_step_causes(other, winner)})"
        )
    return (
        f"{head}: same batch and step time; TTFT {op.ttft_ms:.0f} vs {wp.ttft_ms:.0f} ms (step token "
        f"budget, request overhead: {_efficiency_diff(other, winner)})"
    )


def kv_tokens_total(plan: ServingPlan) -> int:
    """Tokens the KV caches of all the plan's replicas hold together: `kv_cache_tokens` is one
    replica's pool (one engine's, or one data-parallel rank's under expert parallelism: each holds its
    own requests' KV), and the throughput the engines are compared on is the whole deployment's."""
    return plan.kv_cache_tokens * plan.config.replicas


def _kv_pools(other: ServingPlan, winner: ServingPlan) -> str:
    """The two plans' KV pools over the whole deployment, like the throughput they explain (one
    replica's pool against four replicas' read 5.6x where the deployments hold 1.4x), with each
    replica's pool where a plan has more than one, and the memory rules that size them."""
    oc, wc = other.config, winner.config
    text = f"KV pool {kv_tokens_total(other):,} vs {kv_tokens_total(winner):,} tokens"
    rules = f"{other.memory_rule} vs {winner.memory_rule}"
    if oc.replicas == wc.replicas == 1:
        return f"{text} ({rules})"
    return (
        f"{text} over all replicas ({oc.replicas} x {other.kv_cache_tokens:,} vs {wc.replicas} x "
        f"{winner.kv_cache_tokens:,}; {rules})"
    )


def _row(plan: ServingPlan) -> dict[str, Any]:
    from autoparallel.configs import config_dict

    p, c = plan.perf, plan.config
    return {
        "config": {**config_dict(c, plan.engine), "gpus": c.gpus},
        "output_tokens_per_s": p.output_tokens_per_s,
        "output_tokens_per_s_per_gpu": p.output_tokens_per_s_per_gpu,
        "ttft_ms": p.ttft_ms,
        "tpot_ms": p.tpot_ms,
        "batch_size": p.batch_size,
        "batch_limit": p.batch_limit,
        "kv_cache_tokens": plan.kv_cache_tokens,
        "kv_cache_tokens_all_replicas": kv_tokens_total(plan),
        "memory_rule": plan.memory_rule,
        "usd_per_million_tokens": p.usd_per_million_tokens,
        "command": plan.command,
        "binding": list(plan.binding),
        "status": plan.solver.status,
    }


def comparison_dict(plan: ServingPlan) -> dict[str, Any]:
    """`comparison` of the plan's JSON: winner, one entry per engine (its best plan's numbers, or why
    there is none), and the reason against each other engine."""
    engines = []
    for best in plan.engines:
        entry: dict[str, Any] = {"engine": best.engine, "feasible": best.plan is not None}
        if best.plan is not None:
            entry.update(_row(best.plan))
            entry["winner"] = best.engine == plan.engine
            if best.engine != plan.engine:
                entry["why_not"] = why(plan, best.plan)
        else:
            entry["note"] = best.note
        engines.append(entry)
    return {"engine_objective": plan.objective, "engine_winner": plan.engine, "engines": engines}
