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

Calibration: the six numbers below and `TP_COMM_EXPOSED` (perf/training.py) are fitted together by
least squares on log(predicted / published) over shared/reference/training_runs_dev.csv (194 rows:
llm-foundry MPT 125M-13B on A100 40/80 GB and H100 in bf16 and fp8, Narayanan et al. 2021 on A100,
NeMo 24.07 on H100 fp8), with recomputation costing a full forward and one elementwise constant for
both generations. Result: 187 of 197 rows within ±20 %, median |error| 3.9 % (benchmarks/
training_accuracy.py lists every row). Cross-checks: cuBLAS bf16 GEMMs reach ~70-80 % of peak on
A100 and ~60-70 % on H100 SXM at training sizes (NVIDIA "Matrix multiplication background" guide);
FlashAttention-2 reaches ~50-70 % of A100 peak forward and less backward, on causal FLOPs (Dao 2023,
Fig. 4-6); our fitted attention fractions are lower because the rows ran older attention kernels
(MPT's Triton flash attention) and count the whole step.
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
    source: str
    """Where the numbers come from."""


_CALIBRATION = (
    "fitted on shared/reference/training_runs_dev.csv (194 rows: llm-foundry MPT 125M-13B on A100 40/80 GB "
    "and H100, bf16 and fp8; Narayanan et al. 2021; NeMo 24.07) by least squares on log error, with "
    "recomputation costing a full forward and one elementwise_bytes_per_h for both generations; "
    "benchmarks/training_accuracy.py gives the error per row"
)
_ELEMENTWISE_BYTES_PER_H = 350.0

EFFICIENCY: dict[str, Efficiency] = {
    "ampere": Efficiency(
        gemm=0.74,
        gemm_fp8=0.74,
        attention=0.28,
        elementwise_bytes_per_h=_ELEMENTWISE_BYTES_PER_H,
        source=_CALIBRATION,
    ),
    "hopper": Efficiency(
        gemm=0.59,
        gemm_fp8=0.64,
        attention=0.17,
        elementwise_bytes_per_h=_ELEMENTWISE_BYTES_PER_H,
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
