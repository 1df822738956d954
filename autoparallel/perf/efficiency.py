"""Achievable fractions of a GPU's peak, per generation: the calibrated constants of the perf model.

The training step model (perf/training.py) splits a decoder layer's work into three kinds, each at
its own achievable rate:
  - GEMMs (the weight matmuls): FLOPs / (dense tensor-core peak × `gemm`);
  - attention core (flash attention QKᵀ and PV): causal FLOPs / (bf16 peak × `attention`);
  - memory-bound elementwise work (norms, activations, residuals, dropout, casts, optimizer-free):
    `elementwise_bytes_per_h` bytes per hidden element per token, over HBM bandwidth.
The elementwise term is why small models reach a lower MFU and why the loss is larger on GPUs whose
FLOP/byte ratio is higher (H100: 989 TF / 3.35 TB/s = 295 vs A100: 312 / 2.0 = 156): the same
principle explains MPT 125M → 13B on both generations (llm-foundry benchmarks) without per-row
constants.

Calibration: `gemm`, `gemm_fp8`, `attention` per generation, the shared `elementwise_bytes_per_h` and
`TP_COMM_EXPOSED` (perf/training_layer.py) are fitted together, and only on the development rows that
`benchmarks.training_accuracy.split_of` marks `fit` (146 of shared/reference/training_runs_dev.csv:
llm-foundry MPT 125M-13B on A100 40/80 GB and H100 in bf16 and fp8, Narayanan et al. 2021 on A100,
DeepSeek-V3), by `uv run python benchmarks/training_fit.py` (robust least squares on log(predicted /
published), Cauchy scale 10 %). The 51 `check` rows (NVIDIA's NeMo performance summary, a source kept
aside for independent checking, and one row in four of the rest by hash of the row id) are never fitted.
Result: within ±20 % on 137 of 146 fit rows (median |error| 3.6 %) and on 49 of 51 check rows (4.3 %).
Everything else is a mechanism with a named source, not fitted: FP8 cast traffic, the MoE grouped-GEMM
roofline, attention by head dimension and kernel length (`attention_shape_factor`) and by kernel family
(`native_attention_speedup`: `attention` is the FlashAttention-2-class rate MPT's kernels reach; Megatron-
Core's Transformer Engine kernels run faster on Hopper). Cross-checks: cuBLAS bf16 GEMMs reach ~70-80 %
of peak on A100 and ~60-70 % on H100 SXM at training sizes (NVIDIA "Matrix multiplication background"
guide); FlashAttention-2 reaches ~50-70 % of A100 peak forward and less backward, on causal FLOPs (Dao
2023, Fig. 4-6); the fitted attention fractions are lower because they count the whole step. The fitted
`gemm_fp8` (0.50 of the FP8 peak) comes from llm-foundry's FP8 rows only; NeMo's FP8 rows, never fitted,
come out slow with it (median -7.5 %), which says Megatron-Core reaches a higher FP8 GEMM rate.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Efficiency(BaseModel):
    """Achievable fractions of peak for one GPU generation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gemm: float
    """Fraction of the dense bf16/fp16 tensor-core peak large training GEMMs reach."""
    gemm_fp8: float
    """Fraction of the dense FP8 peak FP8 GEMMs reach (Transformer Engine delayed scaling)."""
    attention: float
    """Fraction of the bf16 peak the flash-attention core reaches on causal FLOPs, forward+backward."""
    elementwise_bytes_per_h: float
    """HBM bytes moved per hidden element per token per layer, forward+backward, by memory-bound
    kernels (bf16). Multiply by h·tokens and divide by HBM bandwidth."""
    native_attention_speedup: float
    """Speed of the `te` attention kernel over FlashAttention-2-class kernels on this generation. H100:
    Shah et al. 2024 Fig. 5-6 (head dim 128, 2k-16k tokens): cuDNN / FlashAttention-2 = 484/298,
    539/335 causal forward and 465/291, 516/322 backward, 1.60-1.62 throughout; A100 has no
    Hopper-only instructions (wgmma, TMA) to gain from: 1."""
    tensor_flops_per_exp: float
    """Dense bf16 tensor-core FLOPs per special-function (exp) result, per SM per clock: the ratio
    that makes softmax a bottleneck of flash attention at small head dimensions (not fitted; see
    `attention_shape_factor`)."""
    source: str
    """Where the numbers come from."""


_CALIBRATION = (
    "fitted on the 146 `fit` rows of shared/reference/training_runs_dev.csv (llm-foundry MPT 125M-13B on "
    "A100 40/80 GB and H100, bf16 and fp8; Narayanan et al. 2021; DeepSeek-V3) by benchmarks/training_fit.py "
    "(robust least squares on log error); the `check` rows, NeMo's included, are never fitted; "
    "benchmarks/training_accuracy.py gives the error per row and per split"
)
_ELEMENTWISE_BYTES_PER_H = 270.0

EFFICIENCY: dict[str, Efficiency] = {
    "ampere": Efficiency(
        gemm=0.705,
        gemm_fp8=0.705,
        attention=0.275,
        elementwise_bytes_per_h=_ELEMENTWISE_BYTES_PER_H,
        native_attention_speedup=1.0,
        tensor_flops_per_exp=128.0,
        source=_CALIBRATION,
    ),
    "hopper": Efficiency(
        gemm=0.59,
        gemm_fp8=0.50,
        attention=0.138,
        elementwise_bytes_per_h=_ELEMENTWISE_BYTES_PER_H,
        native_attention_speedup=1.6,
        tensor_flops_per_exp=256.0,
        source=_CALIBRATION,
    ),
}
"""Per architecture (`GPU.arch`). Generations without training rows use the nearest one (below)."""

_NEAREST = {"volta": "ampere", "turing": "ampere", "ada": "ampere", "blackwell": "hopper", "cdna3": "hopper"}


def efficiency_for(arch: str) -> Efficiency:
    """Efficiency factors of GPU architecture `arch` (nearest calibrated generation when absent)."""
    if arch in EFFICIENCY:
        return EFFICIENCY[arch]
    return EFFICIENCY[_NEAREST.get(arch, "hopper")]


# ----- flash-attention efficiency by shape ------------------------------------------------------------
ATTENTION_REFERENCE_HEAD_DIM = 128
"""Head dimension at which `Efficiency.attention` is stated (most calibration rows use 128)."""
ATTENTION_REFERENCE_CONTEXT = 2048
"""Kernel sequence length at which `Efficiency.attention` is stated (the calibration rows' length)."""
ATTENTION_TILE_OVERHEAD_TOKENS = 290.0
"""Per-query-tile fixed work of causal flash attention, in key tokens' worth: Q tile load, output
normalisation and store, and the half-masked diagonal tile. From the head-dim-128 benchmarks on H100
in Shah et al. 2024 ("FlashAttention-3", Fig. 5 and 6): from 2k to 16k tokens the causal forward
goes 298 → 335 TFLOP/s (FlashAttention-2) and 484 → 539 (cuDNN), the backward 291 → 322 and
465 → 516: +11-12 %, which rate ∝ s / (s + s0) gives with s0 ≈ 290 tokens."""
ATTENTION_KERNELS = ("te", "flash2")
"""Fused attention kernel families: `te` is what Megatron-Core runs (Transformer Engine's fused
attention: cuDNN's, Hopper-native on H100); `flash2` is FlashAttention-2 / Triton class kernels
(llm-foundry's MPT runs), which `Efficiency.attention` is calibrated on."""


def attention_shape_factor(eff: Efficiency, head_dim: float, context: float) -> float:
    """Flash-attention rate at (`head_dim`, kernel sequence `context`) relative to the reference shape
    (ATTENTION_REFERENCE_HEAD_DIM, ATTENTION_REFERENCE_CONTEXT) at which `eff.attention` is stated.

    Two mechanisms, neither fitted to training rows:
    - head dimension: each attention score costs 4·d tensor-core FLOPs (QKᵀ and PV) and one exp on the
      special-function units, which run at 1/`tensor_flops_per_exp` of the tensor-core rate (Shah et
      al. 2024 §3: H100 SXM5 989 TFLOP/s bf16 matmul vs 3.9 TFLOP/s special functions, a ratio of
      ~256; A100: 312 vs ~2.4, ~128). Un-overlapped, the rate goes as d / (d + ratio/4): small heads
      are softmax-bound (FlashAttention-3 Fig. 5, causal 16k: 473 TFLOP/s at d = 64 vs 616 at 128;
      the formula gives 0.67 of the d = 128 rate, measured 0.77).
    - sequence length: a causal kernel over s tokens does s/2 keys of work per query on average plus
      ATTENTION_TILE_OVERHEAD_TOKENS of fixed work per query tile: rate ∝ s / (s + s0).
    """
    c = eff.tensor_flops_per_exp / 4.0
    d0, s0 = float(ATTENTION_REFERENCE_HEAD_DIM), float(ATTENTION_REFERENCE_CONTEXT)
    o = ATTENTION_TILE_OVERHEAD_TOKENS
    head = (head_dim / (head_dim + c)) / (d0 / (d0 + c))
    length = (context / (context + o)) / (s0 / (s0 + o))
    return head * length


def kernel_speedup(eff: Efficiency, kernel: str) -> float:
    """Rate of attention kernel family `kernel` (ATTENTION_KERNELS) relative to the calibrated one."""
    if kernel not in ATTENTION_KERNELS:
        raise ValueError(f"attention kernel {kernel!r}: expected one of {', '.join(ATTENTION_KERNELS)}")
    return eff.native_attention_speedup if kernel == "te" else 1.0
