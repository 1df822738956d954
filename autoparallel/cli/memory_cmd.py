"""The `memory` subcommand: per-GPU vLLM serving memory, as vLLM's start-up accounts for it.

    autoparallel memory MODEL --gpu H100 --tp 4 [--pp N] [--enable-expert-parallel] [--dp N]
        [--gpu-memory-utilization F] [--max-model-len N] [--max-num-seqs N]
        [--max-num-batched-tokens N] [--quantization Q] [--kv-cache-dtype D] [--enforce-eager]
        [--dtype D] [--vllm-version V] [--json]

Exit status: 0 when vLLM can start, 1 when it cannot (the reason is printed); bad input raises
InputError (the dispatcher prints one line and exits 2).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from autoparallel.cli._output import bounded, quantization_value, strict_json
from autoparallel.errors import InputError
from autoparallel.memory.serving import DEFAULT_VLLM_VERSION, VllmMemoryReport, vllm_memory


def add_memory_parser(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Register `memory`; the parser's `func` default is `cmd_memory`."""
    parser = subparsers.add_parser(
        "memory",
        help="per-GPU vLLM serving memory (weights, activation, KV cache, concurrency)",
        description="Per-GPU memory of `vllm serve MODEL` as vLLM's start-up profile accounts for it: "
        "weights, activation peak, non-torch memory, CUDA graphs, KV cache, max concurrency.",
    )
    parser.add_argument("model", help="zoo id, local config.json / directory, or Hugging Face id")
    parser.add_argument(
        "--gpu", required=True, help="GPU name, e.g. H100, A100-SXM-80G, L40S, or a --gpus-file one"
    )
    parser.add_argument(
        "--gpus-file", default=None, help="YAML/JSON file of custom GPU types (as plan takes it)"
    )
    parser.add_argument("--tp", "--tensor-parallel-size", dest="tp", type=bounded("tp"), default=1)
    parser.add_argument("--pp", "--pipeline-parallel-size", dest="pp", type=bounded("pp"), default=1)
    parser.add_argument(
        "--dp",
        "--data-parallel-size",
        dest="dp",
        type=bounded("dp"),
        default=1,
        help="data-parallel ranks (matters with --enable-expert-parallel)",
    )
    parser.add_argument(
        "--enable-expert-parallel",
        action="store_true",
        help="split MoE experts over tp × dp ranks instead of slicing them",
    )
    parser.add_argument(
        "--gpu-memory-utilization",
        type=bounded("gpu_memory_utilization", integer=False),
        default=None,
        help="fraction of GPU memory for vLLM (default: the release's, 0.92 on 0.32)",
    )
    parser.add_argument("--max-model-len", type=bounded("max_model_len"), default=None)
    parser.add_argument("--max-num-seqs", type=bounded("max_num_seqs"), default=None)
    parser.add_argument("--max-num-batched-tokens", type=bounded("max_num_batched_tokens"), default=None)
    parser.add_argument(
        "--quantization",
        type=quantization_value,
        default=None,
        help="e.g. fp8 (online), the checkpoint's method, or none",
    )
    parser.add_argument(
        "--kv-cache-dtype", default="auto", help="auto, bfloat16, float16, fp8, fp8_e4m3, fp8_e5m2"
    )
    parser.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs")
    parser.add_argument("--dtype", default="auto", help="auto, bfloat16, float16, float32")
    parser.add_argument(
        "--vllm-version",
        default=DEFAULT_VLLM_VERSION,
        help=f"vLLM release whose accounting to follow (default {DEFAULT_VLLM_VERSION})",
    )
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    parser.set_defaults(func=cmd_memory)
    return parser


def cmd_memory(args: argparse.Namespace) -> int:
    """Print the breakdown (or JSON); 0 when vLLM can start, 1 when it cannot (`memory.serving.vllm_memory`'s
    verdict, as `ap.analyze`'s: the memory, and whether the release runs the model on the GPU at all)."""
    if args.gpu_memory_utilization is not None and not 0 < args.gpu_memory_utilization <= 1:
        raise InputError(f"--gpu-memory-utilization must be in (0, 1], got {args.gpu_memory_utilization}")
    from autoparallel.validation import batched_tokens_problem

    if (problem := batched_tokens_problem(args.max_num_batched_tokens, args.max_num_seqs)) is not None:
        raise InputError(f"invalid serving configuration: {problem}")  # as `evaluate` refuses it
    from autoparallel.hardware import GPU
    from autoparallel.hardware.cluster import lookup_gpu
    from autoparallel.memory.vllm_versions import beyond_modelled
    from autoparallel.models import load_model

    gpu = lookup_gpu(args.gpu, GPU.from_file(args.gpus_file) if args.gpus_file is not None else ())
    model = load_model(args.model)
    if note := beyond_modelled(args.vllm_version):
        print(f"note: {note}", file=sys.stderr)
    if (args.dp or 1) > 1 and model.is_moe and not args.enable_expert_parallel:
        # As `evaluate` says of the same flags (and as the planner launches such replicas).
        print(
            f"note: --dp {args.dp} without --enable-expert-parallel on a MoE model is sized as one of "
            f"{args.dp} separate engines; vLLM's --data-parallel-size would instead shard the experts "
            f"over all {args.dp * args.tp * args.pp} GPUs, which this report does not model",
            file=sys.stderr,
        )
    report = vllm_memory(
        model,
        gpu,
        tp=args.tp,
        pp=args.pp,
        enable_expert_parallel=args.enable_expert_parallel,
        dp=args.dp,
        gpu_memory_utilization=args.gpu_memory_utilization,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        quantization=args.quantization,
        kv_cache_dtype=args.kv_cache_dtype,
        enforce_eager=args.enforce_eager,
        vllm_version=args.vllm_version,
        dtype=args.dtype,
    )
    if args.json:
        print(strict_json(report.to_dict()))
    else:
        print(format_report(report, args.model))
    return 0 if report.fits else 1


def format_report(r: VllmMemoryReport, model: str) -> str:
    """The human-readable breakdown."""
    ep = f" ep={r.ep}" if r.ep > 1 else ""
    lines = [
        f"{model} on {r.gpu}, tp={r.tp} pp={r.pp}{ep}, vLLM {r.vllm_version}",
        f"  budget        {r.budget_gib:8.2f} GiB  = {r.gpu_memory_utilization:g} × {r.total_gib:.2f} GiB",
        f"  weights       {r.weights_gib:8.2f} GiB",
        f"  activation    {r.activation_peak_gib:8.2f} GiB  (profile: {r.max_num_batched_tokens} tokens, "
        f"sampler {r.max_num_seqs} seqs)",
        f"  non-torch     {r.non_torch_gib:8.2f} GiB",
        f"  CUDA graphs   {r.cuda_graph_gib:8.2f} GiB  "
        + ("(in the budget)" if r.cuda_graph_in_budget else "(outside the budget in this release)"),
        f"  KV cache      {r.kv_cache_gib:8.2f} GiB  = {r.num_gpu_blocks} blocks × {r.block_size} tokens"
        + (f", {r.kv_cache_groups} groups" if r.kv_cache_groups > 1 else ""),
        f"  KV tokens     {r.kv_cache_tokens:,}  ({r.kv_bytes_per_token_per_gpu / 1024:.1f} KiB per token "
        f"per GPU, kv dtype {r.kv_cache_dtype}"
        + (f", stored as {r.kv_cache_dtype_stored}" if r.kv_cache_dtype_stored != r.kv_cache_dtype else "")
        + ")",
        f"  concurrency   {r.max_concurrency:.2f}x at max_model_len {r.max_model_len:,}",
    ]
    if r.pp > 1:
        lines.append("  per stage     weights / activation / KV GiB:")
        for s in r.stages:
            mark = "  <- limits KV" if s.stage == r.stage else ""
            lines.append(
                f"    stage {s.stage} ({s.num_layers} layers)  {s.weights_gib:.2f} / "
                f"{s.activation_peak_gib:.2f} / {s.kv_cache_gib:.2f}{mark}"
            )
    if r.fits:
        lines.append("  fits: yes")
    else:
        lines.append("  fits: NO, vLLM cannot start")
        lines.extend(f"    - {p}" for p in r.problems)
    return "\n".join(lines)
