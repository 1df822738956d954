"""Why a vLLM deployment cannot start, in vLLM's words and with numbers, and what would fix it.

The checks mirror vLLM 0.32: `v1/worker/utils.request_memory` (the budget), `kv_cache_utils.
_check_enough_kv_cache_memory` ("No available memory for the cache blocks" / "To serve at least one
request with the model's max seq len ... the estimated maximum model length is N") and, before 0.21,
CUDA-graph capture running out of the headroom outside gpu_memory_utilization (V022).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from autoparallel.configs import VLLM_GPU_MEMORY_UTILIZATION
from autoparallel.memory.vllm_kv import KvPlan, bytes_for_request, estimate_max_model_len

if TYPE_CHECKING:
    from autoparallel.memory.serving import StageMemory, VllmMemoryReport
    from autoparallel.memory.vllm_versions import VllmRules

GIB = float(2**30)
# Largest utilization a fix suggests: vLLM needs some memory outside the budget (CUDA context,
# allocator slack); 0.98 is the highest value in the reference logs that started (V013 failed for
# KV, not for the headroom; V021 ran at 0.99 with 4 graphs).
MAX_SUGGESTED_UTILIZATION = 0.98


def start_problems(
    *,
    rules: VllmRules,
    plan: KvPlan,
    stages: tuple[StageMemory, ...],
    stage: int,
    util: float,
    budget_gib: float,
    total_gib: float,
    max_model_len: int,
    tokens: int,
    seqs: int,
    pp: int,
    enforce_eager: bool,
) -> list[str]:
    """The reasons vLLM would refuse to start (empty: it starts). `tokens` / `seqs`: the batch limits as
    the release fills them in (`resolve_batch_defaults`): a max_num_seqs above the default token budget
    fails `SchedulerConfig` ("max_num_batched_tokens (2048) must be greater than or equal to
    max_num_seqs"; vLLM 0.32 engine/arg_utils.py does not raise the default to meet it)."""
    st = stages[stage]
    out: list[str] = []
    if tokens < seqs:
        out.append(
            f"max_num_batched_tokens {tokens} (vLLM's default here) is below max_num_seqs {seqs}, which "
            f"vLLM refuses; set max_num_batched_tokens to at least {seqs} (batched_tokens_ge_seqs)"
        )
    budget = f"gpu_memory_utilization {util:g} × {total_gib:.2f} GiB = {budget_gib:.2f} GiB"
    if st.weights_gib >= budget_gib:
        out.append(
            f"model weights take {st.weights_gib:.2f} GiB per GPU (stage {stage}), more than the "
            f"budget {budget}"
        )
        return out
    if st.kv_cache_gib <= 0:
        minus_graphs = f" − CUDA graphs {st.cuda_graph_gib:.2f}" if rules.subtracts_cuda_graphs else ""
        out.append(
            f"no available memory for the cache blocks (stage {stage}): budget {budget_gib:.2f} GiB − "
            f"weights {st.weights_gib:.2f} − activation peak {st.activation_peak_gib:.2f} − non-torch "
            f"{st.non_torch_gib:.2f}{minus_graphs} = {st.kv_cache_gib:.2f} GiB"
        )
        return out
    avail = st.kv_cache_gib * GIB
    if rules.reserves_null_block:
        avail -= plan.bytes_per_block[stage]
    need = bytes_for_request(plan, stage, max_model_len, rules, tokens, pp)
    if need > avail:
        est = estimate_max_model_len(plan, stage, avail, max_model_len, rules, tokens, pp)
        out.append(
            f"to serve at least one request with max_model_len {max_model_len}, {need / GIB:.2f} GiB of "
            f"KV cache is needed per GPU, more than the {avail / GIB:.2f} GiB available (stage {stage}); "
            f"the estimated maximum model length is {est}"
        )
    if not rules.subtracts_cuda_graphs and not enforce_eager:
        headroom = total_gib - budget_gib
        graphs = max(s.cuda_graph_gib for s in stages)
        if graphs > headroom:
            out.append(
                f"CUDA graphs need ~{graphs:.2f} GiB outside the KV budget, but gpu_memory_utilization "
                f"{util:g} leaves only {headroom:.2f} GiB of {total_gib:.2f} GiB (vLLM {rules.version} "
                "captures graphs after allocating the KV cache)"
            )
    return out


Evaluate = Callable[..., "VllmMemoryReport | None"]


def _round_len(n: int) -> int:
    """A max_model_len to suggest: n rounded down to a multiple of 1024 (of 16 below 1024)."""
    step = 1024 if n >= 1024 else 16
    return max(n // step * step, 1)


BATCH_PROBLEM = "(batched_tokens_ge_seqs)"
"""The tag `start_problems` ends the batch-limit problem with (vLLM 0.32 config/scheduler.py
`SchedulerConfig._verify_args`: max_num_batched_tokens must be >= max_num_seqs)."""


def suggest_fix(report: VllmMemoryReport, *, quantized: bool, evaluate: Evaluate) -> str:
    """One sentence naming the flags that would let the deployment start, each re-evaluated, for the
    kinds of problem the report has: the batch limits (`BATCH_PROBLEM`: a larger
    --max-num-batched-tokens or a smaller --max-num-seqs) and memory (more tensor parallelism, a
    shorter max_model_len, a higher utilization, fp8 weights, eager mode).

    `evaluate(**overrides)` re-runs the accounting with tp / max_model_len / gpu_memory_utilization /
    quantization / max_num_seqs / max_num_batched_tokens changed (None when vLLM would reject that
    configuration).
    """
    batch = any(p.endswith(BATCH_PROBLEM) for p in report.problems)
    base: dict[str, Any] = {}
    fixes: list[str] = []
    if batch:
        seqs, tokens = report.max_num_seqs, report.max_num_batched_tokens
        base = {"max_num_batched_tokens": seqs}
        for flag, overrides in (
            (f"--max-num-batched-tokens {seqs}", base),
            (f"--max-num-seqs {tokens}", {"max_num_seqs": tokens}),
        ):
            alt = evaluate(**overrides)
            if alt is not None and alt.fits:
                fixes.append(flag)
        if fixes:
            return "fix: use " + ", or ".join(fixes)
        batch_flag = f"--max-num-batched-tokens {seqs} with "  # and a memory fix below
    else:
        batch_flag = ""
    for tp in (2, 4, 8, 16, 32):
        if tp <= report.tp:
            continue
        alt = evaluate(**base, tp=tp)
        if alt is not None and alt.fits:
            fixes.append(
                f"--tensor-parallel-size {tp} ({alt.kv_cache_gib:.1f} GiB KV, "
                f"{alt.max_concurrency:.2f}x concurrency)"
            )
            break
    weights_bound = report.weights_gib >= report.budget_gib
    if not weights_bound:
        est = _estimated_len(report)
        if est:
            mml = _round_len(est)
            alt = evaluate(**base, max_model_len=mml)
            if alt is not None and alt.fits:
                fixes.append(f"--max-model-len {mml}")
        for util in (VLLM_GPU_MEMORY_UTILIZATION, 0.95, MAX_SUGGESTED_UTILIZATION):
            if util <= report.gpu_memory_utilization:
                continue
            alt = evaluate(**base, gpu_memory_utilization=util)
            if alt is not None and alt.fits:
                fixes.append(f"--gpu-memory-utilization {util:g}")
                break
    if not quantized:
        alt = evaluate(**base, quantization="fp8")
        if alt is not None and alt.fits:
            fixes.append("--quantization fp8")
    if not report.cuda_graph_in_budget and any("CUDA graphs" in p for p in report.problems):
        fixes.append("--enforce-eager")
    if not fixes:
        more = "more GPUs per replica (tensor / pipeline parallel) or a smaller model"
        return f"fix: {batch_flag}{more}"
    return f"fix: use {batch_flag}" + ", or ".join(fixes)


def _estimated_len(report: VllmMemoryReport) -> int:
    for p in report.problems:
        if "estimated maximum model length is " in p:
            return int(p.rsplit(" ", 1)[-1])
    return 0


def with_fixes(report: VllmMemoryReport, *, quantized: bool, evaluate: Evaluate) -> VllmMemoryReport:
    """The report with a fix sentence appended to its problems (unchanged when it fits)."""
    if report.fits:
        return report
    fix = suggest_fix(report, quantized=quantized, evaluate=evaluate)
    update: dict[str, Any] = {"problems": (*report.problems, fix)}
    return report.model_copy(update=update)
