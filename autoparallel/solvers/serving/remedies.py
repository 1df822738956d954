"""The nearest feasible changes to an infeasible serving request, each solved and checked by the float
model: an fp8 KV cache, fp8 weights, more GPUs of the same type, a shorter context, and the service
limits the best plan reaches.

Each remedy is a full planning call on the relaxed request (the same space, encoder and decoder), so a
suggestion is a plan that exists, with its numbers, never a guess. They share the original call's
deadline; those that do not fit in it are left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextvars import ContextVar

from autoparallel.bounds import BOUNDS
from autoparallel.errors import AutoParallelError
from autoparallel.hardware import Cluster
from autoparallel.hardware.cluster import MAX_NODES
from autoparallel.models.spec import ModelSpec
from autoparallel.solvers.serving.decoder import ServingSolution
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.workload import PRESETS, Serving

Solve = Callable[[Cluster, Serving, ServingOptions, str], ServingSolution]
"""(cluster, workload, options, objective) -> the best plan, or an AutoParallelError."""
GIVEN_LIMITS: ContextVar[frozenset[str]] = ContextVar("given_limits", default=frozenset())
"""The service limits (`ttft_ms`, `tpot_ms`) the caller gave over the workload's preset or file: the
command line's --ttft-ms / --tpot-ms (`plan_cmd._serving_workload` sets it), the fields a sweep
scenario's row wrote (`Scenario.given_limits`, set by `sweeps.execute`; a `Serving` object passed to a
sweep wrote none: its limits are its preset's or its own, as an API call's). A looser limit is
credited to the preset or the workload only where neither gave it (`_limit_source`): `plan
--workload-file F --ttft-ms 300` printed "a looser --ttft-ms (the workload 'profiled' sets it)" of a
file without a TTFT limit. Empty by default (an API call's workload is its own)."""


def _limit_source(workload: Serving, field: str) -> str:
    """Where `workload`'s `field` limit came from, for a remedy's label: the preset that imposes it, the
    named workload (a workload file's, an API caller's) that sets it, or "" where the caller gave it
    (`GIVEN_LIMITS`) or the workload is a request shape of the user's own."""
    if field in GIVEN_LIMITS.get():
        return ""
    preset = PRESETS.get(workload.name)
    if preset is not None:
        return (
            f" (the {workload.name} preset imposes it)"
            if getattr(preset, field) == getattr(workload, field)
            else ""
        )
    if workload.name in ("custom", ""):
        return ""
    return f" (the workload {workload.name!r} sets it)"


def _describe(sol: ServingSolution) -> str:
    p, c = sol.estimate.perf, sol.config
    shape = (
        f"one expert-parallel engine of {c.replicas} data-parallel rank{'s' * (c.replicas != 1)} of "
        f"tp={c.tp} pp={c.pp}"
        if c.enable_expert_parallel
        else f"{c.replicas} x tp={c.tp} pp={c.pp}"
    )
    return (
        f"{c.gpus} GPU{'s' * (c.gpus != 1)} as {shape}, "
        f"{p.output_tokens_per_s:,.0f} output tokens/s, "
        f"TTFT {p.ttft_ms:.0f} ms, TPOT {p.tpot_ms:.1f} ms"
    )


def _node_size(gpus: int, usual: int) -> bool:
    """A node of `gpus` GPUs is one the GPU's nodes come in: at most its usual node (`usual`,
    `GPU.max_gpus_per_node`) and a power of two or a divisor of it (1, 2, 4, 8 GPUs of an 8-GPU
    server; never 6)."""
    return gpus <= usual and (gpus & (gpus - 1) == 0 or usual % gpus == 0)


GROWTH = (2, 3, 4)
"""The factors a "more GPUs" remedy grows the cluster by, smallest first (serving's and training's)."""


def grown_cluster(cluster: Cluster, factor: int) -> Cluster | None:
    """`cluster`'s first pool grown `factor` times: fuller nodes where the GPU's nodes come in that
    size (1x2 -> 1x4: tp over NVLink), else more nodes (2x8 -> 6x8; 1x2 -> 3x2, not a 6-GPU node);
    its GPU object (a custom or priced one) and bandwidths kept (parsing its name again lost a
    --gpus-file GPU and --price). Named as the cluster string it is solved on (`Cluster.spec`). None
    past `MAX_NODES` nodes."""
    pool = cluster.pools[0]
    fuller = _node_size(pool.gpus_per_node * factor, pool.gpu.max_gpus_per_node)
    grown = {"gpus_per_node": pool.gpus_per_node * factor} if fuller else {"nodes": pool.nodes * factor}
    if grown.get("nodes", pool.nodes) > MAX_NODES:
        return None
    return Cluster(pools=(pool.model_copy(update=grown),))


def nearest_fixes(
    model: ModelSpec,
    cluster: Cluster,
    workload: Serving,
    options: ServingOptions,
    families: tuple[str, ...],
    solve: Solve,
    deadline: float,
) -> tuple[str, ...]:
    """One sentence per change that makes the request feasible, with the plan it gives.

    `families` are the conflicting constraint families of the original request; they choose which
    changes are worth trying. A change of one kind is tried from the smallest up (2x the GPUs, then
    3x, then 4x): once one works, the larger ones of its kind are not tried nor listed (a larger
    change than one that already works is no nearest fix: Qwen3-8B on 1x8xH100 at 200 req/s listed
    4x the GPUs beside 2x, which carries 268; Qwen3-235B-A22B on 2x8xH100 at 100 req/s, 41.70/s
    carried, listed 4x where 3x serves).
    """
    tries: list[tuple[str, Cluster, Serving, ServingOptions, str, str]] = []
    short = {"memory", "max_model_len", "tpot_slo", "ttft_slo", "request_rate"} & set(families)
    if {
        "memory",
        "max_model_len",
        "tpot_slo",
        "request_rate",
    } & short and "fp8" not in options.kv_cache_dtypes:
        kv = (*options.kv_cache_dtypes, "fp8")
        tries.append(
            (
                "--kv-cache-dtype fp8",
                cluster,
                workload,
                options.model_copy(update={"kv_cache_dtypes": kv}),
                "throughput",
                "kv_cache_dtype",
            )
        )
    # FP8 weights run without FP8 tensor cores too (vLLM's and SGLang's Marlin W8A16 on Ampere): the
    # solve says whether an engine of the request runs them on this GPU.
    if short and model.quantization is None and "fp8" not in options.quantizations:
        quant = (*options.quantizations, "fp8")
        tries.append(
            (
                "--quantization fp8 (fp8 weights)",
                cluster,
                workload,
                options.model_copy(update={"quantizations": quant}),
                "throughput",
                "quantization",
            )
        )
    if short - {"ttft_slo"}:
        for factor in GROWTH:
            if (bigger := grown_cluster(cluster, factor)) is None:
                continue
            tries.append(
                (
                    f"--cluster {bigger.spec} ({factor}x the GPUs)",
                    bigger,
                    workload,
                    options,
                    "throughput",
                    "gpus",
                )
            )
    for family, field, metric in (("tpot_slo", "tpot_ms", "tpot"), ("ttft_slo", "ttft_ms", "ttft")):
        if family in families:
            relaxed = workload.model_copy(update={field: None})
            label = f"a looser --{field.replace('_', '-')}{_limit_source(workload, field)}"
            tries.append((label, cluster, relaxed, options, metric, field))
    out: list[str] = []
    worked: set[str] = set()  # the kinds of change one of which already works (the smallest first)
    for label, c, w, o, objective, kind in tries:
        if kind in worked:
            continue
        if time.perf_counter() >= deadline:
            break
        try:
            sol = solve(c, w, o, objective)
        except AutoParallelError:
            continue
        worked.add(kind)
        if objective in ("tpot", "ttft"):
            value = sol.estimate.perf.tpot_ms if objective == "tpot" else sol.estimate.perf.ttft_ms
            # a limit the plan meets: rounded up (5.03 ms is met by 5.1, not by the 5.0 it rounds to)
            admits = math.ceil(value * 10 - 1e-9) / 10
            if admits > BOUNDS[f"{objective}_ms"].hi:
                continue  # past the longest limit the flag takes: no limit admits it
            # printed in full (`:g` kept 6 digits: 711376.4 printed as 711376, which fails again)
            shown = f"{admits:.1f}".removesuffix(".0")
            out.append(
                f"{label}: the fastest plan reaches {value:.2f} ms, so --{objective}-ms {shown} admits it "
                f"({_describe(sol)})"
            )
        else:
            out.append(f"with {label}: {_describe(sol)}")
    return tuple(out)
