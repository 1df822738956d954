"""Serving efficiency factors per engine and GPU architecture: the calibrated constants of the model.

Each engine (vLLM, SGLang, TensorRT-LLM) runs its own kernels and scheduler, so each has its own
factors, fitted on some rows of reference/inference_benchmarks_dev.csv. The rows a factor set was
fitted to are named (as row ids, e.g. I301) in its `source`; `benchmarks/serving_accuracy.py` reads
them from there, reports those rows as "fit" and every other row as "checked".
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from autoparallel.hardware import GPU


class ServingEfficiency(BaseModel):
    """Achievable fractions of a GPU's peaks under vLLM, and fixed costs per engine step."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    flops_fraction: float
    """Fraction of the dense tensor-core peak reached by GEMMs of a mixed prefill/decode step."""
    hbm_fraction: float
    """Fraction of peak HBM bandwidth reached streaming dense weights (GEMMs at a decode batch)."""
    block_fp8_hbm_fraction: float
    """Fraction of peak HBM bandwidth reached streaming block-scaled FP8 weights (128×128 blocks,
    DeepSeek-V3 and Qwen3 FP8 checkpoints) at decode batches, dense and expert GEMMs alike: the
    per-block scales are applied in the GEMM main loop. DeepGEMM's README (normal FP8 GEMMs with
    fine-grained scaling at M = 64 on H800) reports 1688–2455 GB/s of 3,350 GB/s, 0.50–0.73; the
    middle, 0.6, is taken (not fitted)."""
    attention_hbm_fraction: float
    """Fraction of peak HBM bandwidth reached by decode attention streaming the KV cache (one long
    contiguous read per sequence and head, unlike a small-batch GEMM's weight tiles)."""
    moe_hbm_fraction: float
    """Fraction of peak HBM bandwidth reached by fused-MoE kernels streaming routed experts."""
    moe_flops_fraction: float
    """Fraction of the dense tensor-core peak reached by the grouped expert GEMMs, whose per-expert
    row count (tokens routed to one expert) is far smaller than a dense GEMM's (DeepGEMM's README:
    masked grouped FP8 GEMMs at 256–1024 rows per group reach 815–1233 of H800's 1979 TFLOPS, where
    dense GEMMs of the same shapes reach up to 1550)."""
    block_fp8_moe_flops_fraction: float | None = None
    """Fraction of the FP8 dense peak reached by grouped expert GEMMs over block-scaled FP8 weights
    where the engine runs them in a kernel slower than `moe_flops_fraction` describes (None: that
    fraction; `block_fp8_moe_fraction` resolves it)."""
    moe_expert_overhead_s: float
    """Fixed cost per (layer, local expert a step touches) of the fused-MoE kernels, s: many small
    experts (DeepSeek: 256 per layer, TP-sliced to 256 columns) stay far below the HBM roofline."""
    fp4_gemm_scale: float = 1.0
    """NVFP4 GEMMs (dense and expert) reach this share of the fraction of their peak that FP8 GEMMs
    reach (`flops_fraction`, `moe_flops_fraction`): the FP4 peak is twice the FP8 one, and the
    kernels get less of it. 1.0 where no FP4 row was fitted and no GPU of the architecture has FP4."""
    step_overhead_s: float
    """Host time per engine step not hidden by the GPU (scheduler, sampler, output processing), s."""
    request_step_overhead_s: float = 0.0
    """Host time per running request and engine step, s: the engine core's scheduler pass over its
    running requests and its update from the step's sampled tokens. Serial with the GPU step where
    the engine schedules synchronously, hidden under it where it schedules one step ahead
    (`ReplicaShape.async_scheduling`). 0 where it was not measured."""
    eager_layer_overhead_s: float
    """Extra host time per decoder layer and step without CUDA graphs (`--enforce-eager`), s."""
    request_overhead_s: float
    """Per-request time outside the GPU steps (HTTP, tokenization, scheduling, detokenization), s."""
    source: str
    """Where the numbers come from."""

    @property
    def block_fp8_moe_fraction(self) -> float:
        """The fraction block-FP8 expert GEMMs reach: `block_fp8_moe_flops_fraction`, else
        `moe_flops_fraction`."""
        if self.block_fp8_moe_flops_fraction is None:
            return self.moe_flops_fraction
        return self.block_fp8_moe_flops_fraction


VLLM_SCHEDULER_S_PER_REQUEST = 10e-6
"""vLLM V1's engine-core host time per running request and decode step: its own `Scheduler.schedule`
plus `Scheduler.update_from_output` (vLLM 0.32's code, run on a CPU with a synthetic KV cache,
`benchmarks/vllm_host_cost.py`): 8.6-10.0 µs per request at 64, 256 and 1,024 running requests
over four runs (about 10 ms a step at 1,024) on this project's 2-core Xeon machine. Measured, not
fitted; a lower bound of the host work per request (the model runner's input preparation is not in
it). GPU-independent: the same on every architecture.

The API server's share is not charged, and why: it runs in its own process (one per data-parallel
rank in vLLM 0.32, `--api-server-count`), pipelined with the engine core, and the same benchmark
measures its output processing (detokenization, `RequestOutput`, the stream's collector) at
6.6-8.0 µs per request and step and a streamed chunk's response object and JSON line at 6.3-6.7 µs
(two runs). A stream that lags merges its pending tokens into one chunk, so only the first part is
paid per token: the server keeps up with the engine to about 1 / 8 µs = 125,000 output tokens/s,
above any rate the model predicts (Llama-3.2-1B's ShareGPT burst on one H100 peaks at 73,000). Once
a step is shorter than about 13-15 µs per running request, chunks merge, which lengthens ITL, not
TPOT or tokens/s; that ITL is not modelled."""
SGLANG_SCHEDULER_S_PER_REQUEST = 2.5e-6
"""SGLang's scheduler host time per running request and decode step: its own
`process_batch_result_decode` with the `stream_output_generation` that sends every step's token ids to
the detokenizer (SGLang 0.5.6's code on a CPU, `benchmarks/sglang_host_cost.py`): 2.1-2.9 µs per request
at 64, 256 and 1,024 running requests over four runs on this project's 2-core Xeon machine, a quarter
of vLLM's pass. Measured, not fitted; a lower bound (the next batch's preparation and the message's
pickling are not in it; the detokenizer and the tokenizer manager are their own processes). SGLang's
overlap scheduler (on by default) runs it under the GPU step."""
SCHEDULER_S_PER_REQUEST = {
    "vllm": VLLM_SCHEDULER_S_PER_REQUEST,
    "sglang": SGLANG_SCHEDULER_S_PER_REQUEST,
    "trtllm": 0.0,
}
"""`request_step_overhead_s` by engine, whatever the GPU: host work follows the engine's code, not the
GPU. TensorRT-LLM's is not measured (its PyTorch executor was not run here), so it is 0."""
_HOPPER = ServingEfficiency(
    flops_fraction=0.45,
    hbm_fraction=0.75,
    block_fp8_hbm_fraction=0.60,
    attention_hbm_fraction=0.75,
    moe_hbm_fraction=0.75,
    moe_flops_fraction=0.45,
    moe_expert_overhead_s=0.0,
    step_overhead_s=1.0e-3,
    request_step_overhead_s=VLLM_SCHEDULER_S_PER_REQUEST,
    eager_layer_overhead_s=80e-6,
    request_overhead_s=0.048,
    source="vLLM rows of reference/inference_benchmarks_dev.csv (benchmarks/serving_accuracy.py): "
    "hbm_fraction + step overhead from I301 (Qwen3-8B, H100, 4 concurrent: TPOT 7.38 ms, predicted "
    "7.1); request overhead from its TTFT (64 ms for a 233-token ShareGPT prompt, of which the GPU "
    "part is 16.4 ms: the rest of the rotation in progress and the rotation that carries the "
    "prompt, with ShareGPT's spread of prompt lengths, `replica_step_times`; 45 ms while that part "
    "was a prompt alone plus 1.5 decode steps); the MoE expert cost from "
    "the DeepSeek-V3.2 TP8 burst rows' output tokens/s under the per-operator roofline with V3.2's "
    "sparse-attention kernels charged as they run (perf/sparse_attention.py, FP8 decode kernel heads "
    "padded to 128; I201, I206-I208: a grid over 0-5 µs in 1 µs steps, benchmarks/serving_fit.py, "
    "gives 0: 5 of 5 fit rows within 20 %, median error 4.5 % with the bursts drawn from ShareGPT's "
    "published length shape and vLLM 0.13's synchronous scheduler charged per running request "
    "(`request_step_overhead_s`, measured; 1.8 % before it was charged); it gave 2 µs while the "
    "decode kernel was charged at 64 heads, absorbing the missing half). "
    "flops_fraction 0.45 of the dense peak, below TensorRT-LLM's fitted 0.50 (engines differ); "
    "block_fp8_hbm_fraction from DeepGEMM's published small-M figures (not fitted).",
)
MAMF_FRACTION = {"hopper": 792.1 / 989.0, "ampere": 267.9 / 312.0}
"""Maximum achievable matmul FLOPS over the dense BF16 peak, by architecture: the best large BF16
GEMM Stas Bekman's `mamf-finder.py` measured (ml-engineering, compute/accelerator, "Maximum
Achievable Matmul FLOPS comparison table", CUDA 12.1): H100 SXM 792.1 of 989 TFLOPS (80.1 %),
A100 SXM 267.9 of 312 (85.9 %). Ampere's tensor cores come closer to their peak than Hopper's."""
_AMPERE = _HOPPER.model_copy(
    update={
        "flops_fraction": _HOPPER.flops_fraction * MAMF_FRACTION["ampere"] / MAMF_FRACTION["hopper"],
        "moe_flops_fraction": _HOPPER.moe_flops_fraction * MAMF_FRACTION["ampere"] / MAMF_FRACTION["hopper"],
        "source": "vLLM's Hopper factors with the GEMM fractions scaled by the two architectures' "
        "maximum achievable matmul FLOPS (`MAMF_FRACTION`: 85.9 % of peak on A100 vs 80.1 % on "
        "H100, so 0.45 becomes 0.48); no reference row runs on Ampere, so nothing was fitted. HBM "
        "fractions, host and request overheads are Hopper's (no source separates them).",
    }
)
_DEFAULT = ServingEfficiency(
    flops_fraction=0.40,
    hbm_fraction=0.70,
    block_fp8_hbm_fraction=0.55,
    attention_hbm_fraction=0.70,
    moe_hbm_fraction=0.70,
    moe_flops_fraction=0.40,
    moe_expert_overhead_s=0.0,
    step_overhead_s=1.2e-3,
    request_step_overhead_s=VLLM_SCHEDULER_S_PER_REQUEST,
    eager_layer_overhead_s=100e-6,
    request_overhead_s=0.050,
    source="not calibrated (no reference rows, no achievable-FLOPS source): the Hopper factors "
    "lowered ~10 % (Volta, Turing, Ada, AMD)",
)
FP4_GEMM_SCALE = 0.65
"""`fp4_gemm_scale` on Blackwell, fitted with TensorRT-LLM (see its source) and taken for every engine:
no vLLM or SGLang FP4 row exists to fit their own."""
_BLACKWELL = _HOPPER.model_copy(
    update={
        "fp4_gemm_scale": FP4_GEMM_SCALE,
        "source": "vLLM's Hopper factors, with TensorRT-LLM's fitted NVFP4 GEMM scale (no vLLM or SGLang "
        "Blackwell row; nothing fitted here)",
    }
)
VLLM_EFFICIENCY: dict[str, ServingEfficiency] = {
    "hopper": _HOPPER,
    "blackwell": _BLACKWELL,
    "ampere": _AMPERE,
}
"""vLLM efficiency by GPU architecture (`GPU.arch`); other architectures use `DEFAULT_EFFICIENCY`."""
DEFAULT_EFFICIENCY = _DEFAULT

ENGINES = ("vllm", "sglang", "trtllm")
"""Serving engines the model knows."""
TRITON_BLOCK_FP8_FRACTION = 0.20
"""Fraction of the FP8 dense peak Triton's block-scaled FP8 GEMMs reach at prefill row counts on
Hopper: 367, 396, 403 and 407 TFLOPS at 1,024, 2,048, 4,096 and 8,192 rows for DeepSeek-V3's
2112 × 7168 projection on H100 SXM (vLLM PR #23280's kernel benchmark, `w8a8-block-fp8-triton`;
CUTLASS 351–490, torch BF16 620–716), 0.19–0.21 of 1,979 TFLOPS. Read off, not fitted.

Charged to SGLang only, a known inconsistency: vLLM too runs block-FP8 experts on Hopper in Triton's
fused-MoE kernel: at TP 8 since PR #29346 (merged 2025-11-24, before the reference rows' 0.13:
DeepGEMM MoE off by default at TP 8, Triton's being faster for DeepSeek-V3 there) and in 0.32 at any
TP without EP, FlashInfer's CUTLASS kernel with EP (`fused_moe/oracle/fp8.py`,
`_get_priority_backends`), yet vLLM's experts keep `moe_flops_fraction` (0.45). One rate for both
engines (benchmarks/triton_moe_rate.py): at 0.20, vLLM's fit rows' TPOT is 3 of 5 within 20 % (the
DeepSeek-V3.2 TP8 bursts I201, I206, I207 go from 1.13-1.18 to 1.19-1.24) and the prompt-heavy vLLM
fixed-length checks' TPOT from 1.57-2.12 to 1.67-2.22, while SGLang's checked TPOT is 8 of 13 at
0.20, 7 at 0.30 and 4 at 0.45, and its prompt-heavy DP8 check
(`test_sglang_attention_dp_prompt_heavy_burst_...`) wants the slow rate too. Nor is a dense GEMM's
rate the fused-MoE kernel's at TP 8: vLLM PR #13932's H100 table (DeepSeek-V3 shapes, February 2025)
has Triton faster than DeepGEMM at TP 8 for every batch from 128 to 2,048 tokens. One kernel family,
two engines' rows pulling apart: its rate at these shapes is not known, so neither engine's factor
was moved to match the other's rows."""
_SGLANG_HOPPER = _HOPPER.model_copy(
    update={
        "request_step_overhead_s": SGLANG_SCHEDULER_S_PER_REQUEST,
        "block_fp8_moe_flops_fraction": TRITON_BLOCK_FP8_FRACTION,
        "source": "SGLang: vLLM's Hopper factors (not refitted) with SGLang's own measured scheduler "
        "pass per request (`SGLANG_SCHEDULER_S_PER_REQUEST`), and block-FP8 expert GEMMs at "
        "Triton's block-FP8 rate (`TRITON_BLOCK_FP8_FRACTION`, read off a kernel benchmark): SGLang "
        "0.5.6 runs block-FP8 MoE on Hopper with its Triton fused-MoE kernel unless DeepEP is the "
        "all-to-all backend (`Fp8MoEMethod.create_moe_runner`). vLLM keeps `moe_flops_fraction` "
        "although it runs the same kernel family there (`TRITON_BLOCK_FP8_FRACTION`): a known "
        "inconsistency, not a mechanism.",
    }
)
_TRTLLM_HOPPER = _HOPPER.model_copy(
    update={
        "request_step_overhead_s": SCHEDULER_S_PER_REQUEST["trtllm"],
        "flops_fraction": 0.50,
        "attention_hbm_fraction": 0.90,
        "source": "TensorRT-LLM (PyTorch backend), fitted on the Llama-3.1-8B FP8 (FP8 KV) 1×H100 "
        "trtllm-bench rows I172, I174, I176, I178, I180, I182, I184, I186, I188, I190 with the "
        "per-operator roofline, trtllm-bench's own batch / step-budget heuristic (chunked prefill off, "
        "so the budget holds the longest prompt) and the runs' CUDA graphs padded to their captured "
        "sizes, its context steps run without CUDA graphs (benchmarks/serving_fit.py): a grid over the "
        "GEMM and attention fractions (weight streaming kept at vLLM's 0.75), least median error "
        "among those with every row within 20 %, gives FP8 GEMMs 0.50 of the dense peak and decode "
        "attention 0.90 of peak HBM (10 of 10, median error 2.1 %; 0.55 / 0.85 2.5 %, 0.60 / 0.85 2.6 %, "
        "0.55 / 0.90 2.9 %; 0.65 / 0.80 1.3 % but 9 of 10). The grid was rerun on 2026-12-07 under the "
        "model as it then was (closed-loop overhead, the prefill-bound wait counted once): the pick "
        "had been 0.55 / 0.90 at 1.6 %, and the rule now gives 0.50 again; the MoE "
        "fractions, step and request overheads are vLLM's.",
    }
)
_TRTLLM_BLACKWELL = _TRTLLM_HOPPER.model_copy(
    update={
        "fp4_gemm_scale": FP4_GEMM_SCALE,
        "source": "TensorRT-LLM on Blackwell: Hopper's factors, and the NVFP4 GEMM scale fitted on the "
        "Llama-3.1-405B NVFP4 (FP8 KV) 4xB200 trtllm-bench rows I131, I135, I139, I143, I147, I151, "
        "I155, I159, I163, I167 (benchmarks/serving_fit.py, one parameter; the same rule as on "
        "Hopper, least median error among the values with every row within 20 %): 0.65 over Hopper's "
        "0.50, so NVFP4 GEMMs run at 0.33 of the dense FP4 peak (10 of 10, median error 8.9 %, "
        "geometric-mean ratio 1.003; 0.6 and 0.625 10 of 10 at 9.7 and 11.0 %, 0.575 and 0.7 9 and 8 "
        "of 10; 1.0, FP4 GEMMs at FP8's fraction, 0 of 10, 31 % too fast). FP8 and BF16 GEMMs keep "
        "Hopper's fractions (no Blackwell "
        "FP8 row). The Qwen3-235B and Maverick B200 rows and every GB200 row are checked only.",
    }
)
ENGINE_EFFICIENCY: dict[str, dict[str, ServingEfficiency]] = {
    "vllm": VLLM_EFFICIENCY,
    "sglang": {
        "hopper": _SGLANG_HOPPER,
        "blackwell": _BLACKWELL.model_copy(
            update={
                "request_step_overhead_s": SGLANG_SCHEDULER_S_PER_REQUEST,
                "source": "SGLang: " + _BLACKWELL.source + " SGLang's own scheduler pass per request.",
            }
        ),
    },
    "trtllm": {"hopper": _TRTLLM_HOPPER, "blackwell": _TRTLLM_BLACKWELL},
}
"""Efficiency by engine, then GPU architecture."""


def efficiency_for(gpu: GPU, engine: str = "vllm") -> ServingEfficiency:
    """The efficiency factors of `engine` on `gpu`: its own for the architecture, else vLLM's for it
    (`DEFAULT_EFFICIENCY` where vLLM has none) with the engine's own host cost per request."""
    table = ENGINE_EFFICIENCY.get(engine)
    if table is None:
        from autoparallel.errors import InputError

        raise InputError(f"unknown serving engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    return table.get(gpu.arch) or _borrowed(engine, gpu.arch)


@functools.cache
def _borrowed(engine: str, arch: str) -> ServingEfficiency:
    """vLLM's factors for `arch` as `engine` runs them: the same kernels' fractions, the engine's own
    scheduler cost per request (`SCHEDULER_S_PER_REQUEST`)."""
    base = VLLM_EFFICIENCY.get(arch, DEFAULT_EFFICIENCY)
    if engine == "vllm":
        return base
    return base.model_copy(
        update={
            "request_step_overhead_s": SCHEDULER_S_PER_REQUEST[engine],
            "source": f"{engine} on {arch}: vLLM's factors for the architecture (none of its own, nothing "
            "fitted), with the engine's own scheduler cost per request",
        }
    )
