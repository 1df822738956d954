"""One deployment on SGLang or TensorRT-LLM: its KV pool and speed.

The same float model as vLLM's (perf/serving.py, perf/serving_steps.py) with the engine's own parts:
the KV pool rule (memory/sglang.py, memory/trtllm.py), the running-request cap and step budget it
defaults to and its efficiency factors (`serving_efficiency.ENGINE_EFFICIENCY`). The launch artifacts
(frameworks/sglang.py, frameworks/trtllm.py) are the plan's (`plan.ServingPlan`): perf/ sits below
frameworks/.
Weights, activations and non-torch memory come from
`memory.serving` (the same tensors whichever engine loads them).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import ENGINE_POOL_FIELDS, VLLM_GPU_MEMORY_UTILIZATION
from autoparallel.errors import InputError
from autoparallel.memo import Memo, memoized
from autoparallel.memory.engine_kv import EngineKv
from autoparallel.memory.trtllm import DEFAULT_FREE_GPU_MEMORY_FRACTION, trtllm_batch_problem
from autoparallel.memory.vllm_versions import DEFAULT_VLLM_VERSION
from autoparallel.perf.engine_support import (
    ENGINE_NAMES,
    engine_runtime_problem,
    sglang_layout_problem,
    sglang_pipeline_problem,
    trtllm_layout_problem,
)
from autoparallel.perf.serving import (
    OfferedLoad,
    ServingEstimate,
    ServingPerf,
    deployment_problems,
    kv_layout,
    offered_load,
    perf_at_batch,
    slo_violations,
)
from autoparallel.perf.serving_steps import SCHEDULING, vllm_graph_max_batch

if TYPE_CHECKING:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec
    from autoparallel.workload import Serving


class EngineEvaluation(BaseModel):
    """Memory and speed of one deployment on SGLang or TensorRT-LLM (a `ServingPlan` carries it as
    `engine_eval`, with the launch artifacts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: str
    model_id: str
    cluster: str
    workload: dict[str, Any]
    config: dict[str, Any]
    memory: EngineKv
    perf: ServingPerf
    mem_fraction_static: float | None = None
    """SGLang: the resolved `--mem-fraction-static` the pool was sized with."""
    fits: bool
    problems: tuple[str, ...]


def at_request_rate(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    full: ServingPerf,
    engine: str = "vllm",
    kv: EngineKv | None = None,
) -> OfferedLoad | None:
    """`perf.serving.offered_load` for `config` on `engine` (`kv`: the SGLang / TensorRT-LLM pool
    its full-load figures came from; vLLM's step budget comes from its KV layout)."""
    rate = workload.request_rate
    if rate is None:
        return None
    nsa: tuple[str | None, str | None] = (None, None)
    sizes: tuple[int, ...] = ()
    if kv is None:
        budget, pool = kv_layout(model, cluster.gpu, config, workload).batched_tokens, 0
        reach: int | None = vllm_graph_max_batch(config.max_num_seqs, budget, cluster.gpu)
    else:
        budget, nsa = kv.step_tokens, kv.nsa_backends
        pool = kv.pool_tokens_read(model.has_sparse_attention)
        reach, sizes = kv.cuda_graph_max_batch, kv.cuda_graph_batch_sizes

    def perf_at(batch: float) -> ServingPerf:
        return perf_at_batch(
            model,
            cluster,
            config,
            workload,
            batch=batch,
            batch_limit="request_rate",
            batched_tokens=budget,
            kv_capacity_seqs=full.kv_capacity_seqs,
            kv_headroom_bytes=full.kv_headroom_gib * 2**30,
            engine=engine,
            nsa_backends=nsa,
            kv_pool_tokens=pool,
            arrivals_per_s=rate / config.replicas,
            graph_max_batch=reach,
            graph_sizes=sizes,
        )

    return offered_load(workload, config.replicas, full, perf_at)


_KNOB_MEANINGS = {
    "vllm": f"the share of GPU memory it may use, default {VLLM_GPU_MEMORY_UTILIZATION:g}",
    "sglang": "the share of GPU memory for weights and KV pool, default by GPU and layout",
    "trtllm": "kv_cache_config's share of the memory free after loading, default "
    f"{DEFAULT_FREE_GPU_MEMORY_FRACTION:g}",
}
ENGINE_MEMORY_KNOBS: dict[str, tuple[str, str, str]] = {
    engine: (field, "--" + field.replace("_", "-"), _KNOB_MEANINGS[engine])
    for engine, field in ENGINE_POOL_FIELDS.items()
}
"""Each engine's own KV-pool knob: the `ServingConfig` field (`configs.ENGINE_POOL_FIELDS`), the
`evaluate` flag and what it sizes (memory/vllm_kv.py, memory/sglang.py, memory/trtllm.py)."""


def memory_knob_text(owner: str, engine: str, *, flags: bool) -> str:
    """The refusal of `owner`'s memory knob given for `engine`, pointing to `engine`'s own (`flags`: as
    the CLI spells them, else the `ServingConfig` fields)."""
    field, flag, _ = ENGINE_MEMORY_KNOBS[owner]
    own_field, own_flag, what = ENGINE_MEMORY_KNOBS[engine]
    name, own = (flag, f"{own_flag} ({what})") if flags else (field, f"{own_field} ({own_flag}: {what})")
    return (
        f"{name} is {ENGINE_NAMES[owner]}'s knob; {ENGINE_NAMES[engine]} sizes its KV pool by its own "
        f"{own}: give that instead"
    )


def memory_knob_problem(config: ServingConfig, engine: str) -> str | None:
    """Why `config` cannot run on `engine`: it sets another engine's KV-pool knob, which `engine` would
    silently ignore (`ENGINE_MEMORY_KNOBS`). vLLM's `gpu_memory_utilization` counts when set to other
    than its default (a plan's own config carries the default on any engine); SGLang's and
    TensorRT-LLM's when not None. None: no such knob."""
    from autoparallel.configs import ServingConfig as Config

    for owner, (field, _, _) in ENGINE_MEMORY_KNOBS.items():
        if owner != engine and getattr(config, field) != Config.model_fields[field].default:
            return memory_knob_text(owner, engine, flags=False)
    return None


def engine_kv_for(
    engine: str,
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    nsa_backends: tuple[str | None, str | None] = (None, None),
) -> tuple[EngineKv, Any]:
    """The engine's KV pool for `config` and vLLM's memory report it was derived from (`nsa_backends`:
    SGLang's DeepSeek Sparse Attention kernels as passed, carried for the step model)."""
    from autoparallel.memory.sglang import sglang_server_kv
    from autoparallel.memory.trtllm import trtllm_server_kv

    memory = _vllm_report(engine, model, cluster, config)
    if engine == "sglang":
        kv = sglang_server_kv(model, memory, cluster.gpu, config, nsa_backends=nsa_backends)
    elif engine == "trtllm":
        kv = trtllm_server_kv(model, memory, cluster.gpu, config)
    else:
        raise InputError(f"unknown engine {engine!r}; choose one of: vllm, sglang, trtllm")
    return kv, memory


_REPORTS: Memo[Any] = {}


def _vllm_report(engine: str, model: ModelSpec, cluster: Cluster, config: ServingConfig) -> Any:
    """vLLM's memory report the engine's pool rule reads, memoized per model.

    The rules read the tightest stage's weights, activation peak, non-torch memory and KV bytes per
    token. With one pipeline stage that stage is stage 0 whatever the CUDA graphs and the utilization
    (they move only vLLM's own KV budget), and SGLang does not read the activation peak (the only
    part that depends on max_num_seqs), so those fields are left out of the key there: the report
    is the same for every such config (the serving planner asks for thousands of them). SGLang's pool
    is priced in the dtype SGLang stores (`memory.sglang.sglang_priced_config`), and every engine's
    weights in the dtype its own loader resolves and TensorRT-LLM's activation peak at its own
    `max_num_tokens` default where the config leaves the step budget unset (`serving_memory(engine=...)`;
    vLLM's GPU-dependent default, 2048 tokens on an A100, is not what its warm-up profiles)."""
    from autoparallel.memory.serving import serving_memory

    # The engines' own pool knobs (`ENGINE_MEMORY_KNOBS`) are read by their pool rules, not by this report.
    key = config.model_copy(update={"mem_fraction_static": None, "free_gpu_memory_fraction": None})
    if engine == "sglang":
        from autoparallel.memory.sglang import sglang_priced_config

        key = sglang_priced_config(model, cluster.gpu, key)
    if config.pp == 1:
        unpriced = {"enforce_eager": False, "gpu_memory_utilization": VLLM_GPU_MEMORY_UTILIZATION}
        key = key.model_copy(update=unpriced)
        if engine == "sglang":
            key = key.model_copy(update={"max_num_seqs": 1})
    return memoized(
        _REPORTS,
        (model,),
        (engine, cluster.gpu, key),
        lambda: serving_memory(model, cluster.gpu, key, engine=engine),
    )


def evaluate_engine(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    engine: str,
    model_id: str,
    *,
    nsa_backends: tuple[str | None, str | None] = (None, None),
    running: float | None = None,
    clients: float | None = None,
) -> EngineEvaluation:
    """Memory and speed of `config` on `engine` (`sglang` or `trtllm`; `nsa_backends` as SGLang's
    `--nsa-prefill-backend` / `--nsa-decode-backend` pass them). `running`: at most this many
    requests run per replica (the planner's tables: a client's share, `Shape.running_at`), as the
    workload's own concurrency caps them; `clients`: a closed-loop client's requests per replica
    (`perf_at_batch`'s, the planner's tables give their tuple's share). On TensorRT-LLM a
    max_num_seqs its pipeline stages do not divide is a problem (`memory.trtllm.trtllm_batch_problem`:
    it runs max_batch_size × pp requests), so the planner offers only multiples of pp there.

    Raises:
        InputError: the engine cannot run the model at the config's precisions
            (`engine_runtime_problem`), or a layout the engine has not (`trtllm_layout_problem`,
            `sglang_layout_problem`, `sglang_pipeline_problem`).
    """
    problem = engine_runtime_problem(engine, config.quantization, config.kv_cache_dtype, model, cluster.gpu)
    if problem is not None:
        raise InputError(problem)
    if engine == "trtllm":
        layout = trtllm_layout_problem(config.tp, config.replicas, config.enable_expert_parallel)
    else:
        layout = sglang_layout_problem(
            model, config.tp, config.replicas, config.enable_expert_parallel
        ) or sglang_pipeline_problem(model, config.pp)
    if layout is not None:
        raise InputError(layout)
    kv, _ = engine_kv_for(engine, model, cluster, config, nsa_backends)
    per_seq_tokens = held_tokens(workload, engine, kv.block_size)
    capacity = kv.kv_cache_tokens // per_seq_tokens if per_seq_tokens else 0
    options = [(float(kv.max_running), "max_running"), (float(capacity), "kv_cache")]
    if workload.in_flight is not None:
        options.append((workload.in_flight / config.replicas, "concurrency"))
    if running is not None:
        options.append((running, "concurrency"))
    batch, limit = min(options, key=lambda o: o[0])
    held = math.ceil(batch)  # the replica with the larger share (8 of 15 clients on 2) holds this many
    headroom = (kv.kv_cache_tokens - held * per_seq_tokens) * kv.kv_bytes_per_token_per_gpu
    perf = perf_at_batch(
        model,
        cluster,
        config,
        workload,
        batch=batch,
        batch_limit=limit,
        batched_tokens=kv.step_tokens,
        kv_capacity_seqs=capacity,
        kv_headroom_bytes=headroom,
        engine=engine,
        nsa_backends=kv.nsa_backends,
        kv_pool_tokens=kv.pool_tokens_read(model.has_sparse_attention),
        graph_max_batch=kv.cuda_graph_max_batch,
        graph_sizes=kv.cuda_graph_batch_sizes,
        clients=clients,
    )
    problems = pool_problems(kv, workload) + deployment_problems(cluster, config, workload)
    if engine == "trtllm" and (batching := trtllm_batch_problem(config.max_num_seqs, config.pp)):
        problems.insert(0, batching)  # it runs max_batch_size × pp, not the config's max_num_seqs
    fits = not problems
    problems += slo_violations(perf, workload)
    return EngineEvaluation(
        engine=engine,
        model_id=model_id,
        cluster=cluster.describe(),
        workload=workload.model_dump(),
        config=config.model_dump(),
        memory=kv,
        perf=perf,
        mem_fraction_static=kv.fraction if engine == "sglang" else None,
        fits=fits,
        problems=tuple(dict.fromkeys(problems)),
    )


def held_tokens(workload: Serving, engine: str, block_size: int) -> int:
    """KV tokens, in whole blocks, one running request holds in the engine's steady state. Under
    TensorRT-LLM's default `CapacitySchedulerPolicy.GUARANTEED_NO_EVICT` (`SCHEDULING` `no_evict`, as
    the replay reserves it) a request is admitted with the blocks of its prompt and whole output:
    each running request holds its own isl + osl, and since requests run for their osl steps the
    running set is weighted by output length, E[o · (i + o)] / E[o] = isl + osl · (1 + output_spread)
    (isl + osl for fixed lengths). Otherwise its context so far (`Serving.running_context`)."""
    if SCHEDULING[engine] == "no_evict":
        tokens = workload.isl + workload.osl * (1.0 + workload.output_spread)
    else:
        tokens = workload.running_context
    return math.ceil(math.ceil(tokens) / block_size) * block_size


def pool_problems(kv: EngineKv, workload: Serving) -> list[str]:
    """Why the engine's KV pool cannot serve the workload. Neither engine refuses to start with a pool
    shorter than max_model_len, as vLLM does: SGLang caps a request at the pool (`tp_worker`
    `max_req_len = min(context_len - 1, max_total_num_tokens - 1)`, only asserted > 0; longer prompts
    are refused, outputs clipped), TensorRT-LLM lowers `max_seq_len` to the pool's whole blocks
    (`KVCacheManager`: "maxAttentionWindow and maxSequenceLen are too large for at least one sequence
    to fit in kvCache. They are reduced to ..."; "Impossible to fit in any sequence" below one block).
    So the pool must hold a block, and the workload's requests (isl + osl) must fit it (SGLang's one
    token less is not counted, as for its context length)."""
    if kv.start_problem is not None:
        return [kv.start_problem]
    if kv.kv_cache_gib <= 0:
        if kv.states_gib > 0:
            return [
                f"weights ({kv.weights_gib:.1f} GiB per GPU) and the recurrent states of {kv.max_running} "
                f"request slots ({kv.states_gib:.1f} GiB) leave no KV pool under {kv.rule}: fewer slots "
                "(--max-num-seqs) leave room"
            ]
        if kv.engine == "sglang" and kv.fraction * kv.total_gib + kv.chunk_room_gib > kv.weights_gib:
            return [
                f"SGLang's default {kv.rule} leaves {max(kv.fraction, 0.0) * kv.total_gib:.1f} GiB per GPU "
                f"for weights ({kv.weights_gib:.1f} GiB) and KV pool: it reserves the rest, 1.5 MiB a token "
                f"of its {kv.step_tokens:,}-token chunked prefill among it (memory/sglang.py); a "
                "--max-num-batched-tokens (--chunked-prefill-size) of 2048 gives back "
                f"{kv.chunk_room_gib:.1f} GiB"
            ]
        return [f"weights ({kv.weights_gib:.1f} GiB per GPU) leave no KV pool under {kv.rule}"]
    if not kv.fits:
        return [f"the KV pool holds {kv.kv_cache_tokens:,} tokens, not one {kv.block_size}-token block"]
    request = workload.isl + workload.osl
    if request > kv.kv_cache_tokens:
        return [
            f"{ENGINE_NAMES[kv.engine]} caps a request at the {kv.kv_cache_tokens:,} tokens its KV pool "
            f"holds, fewer than the workload's {request} (isl {workload.isl} + osl {workload.osl})"
        ]
    return []


def engine_estimate(
    model: ModelSpec,
    cluster: Cluster,
    config: ServingConfig,
    workload: Serving,
    engine: str,
    model_id: str,
    *,
    vllm_version: str = DEFAULT_VLLM_VERSION,
    nsa_backends: tuple[str | None, str | None] = (None, None),
) -> tuple[ServingEstimate, EngineEvaluation]:
    """`evaluate_engine` as the float model's `ServingEstimate` (what plans and evaluations carry): its
    speed and problems beside vLLM's memory report of the same tensors as the engine loads and profiles
    them (`serving_memory(engine=...)`: its loader's dtype, TensorRT-LLM's `max_num_tokens` warm-up),
    SLO misses apart."""
    from autoparallel.memory.serving import serving_memory

    ev = evaluate_engine(model, cluster, config, workload, engine, model_id, nsa_backends=nsa_backends)
    slo = tuple(slo_violations(ev.perf, workload))
    est = ServingEstimate(
        memory=serving_memory(model, cluster.gpu, config, vllm_version=vllm_version, engine=engine),
        perf=ev.perf,
        fits=ev.fits,
        problems=tuple(p for p in ev.problems if p not in slo),
        slo_violations=slo,
    )
    return est, ev
