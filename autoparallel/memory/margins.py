"""Explicit memory margins for budgets that vLLM's own accounting does not cover.

vLLM serving needs none of these: `memory/serving.py` mirrors vLLM's profiler, whose only knob is
`gpu_memory_utilization`. Everything else (training jobs, other inference engines, a budget the user
states) plans against `MemoryConfig.usable_bytes(gpu)` and adds `fragmentation` × the allocated bytes
on top of its own estimate.

    usable = total × utilization × (1 − safety_margin)

Defaults, and where they come from:
- utilization 0.85: the share of device memory a PyTorch job can count on once the CUDA context
  (~0.5 GiB), NCCL buffers (~2 GiB at TP >= 2: the vLLM 0.19 start-up logs in
  reference/vllm_logs_dev.csv, V052/V053) and cuBLAS workspaces are resident; on an 80 GB card it
  leaves ~11.9 GiB for them. A project default, not a measured constant: override it per job.
- fragmentation 0.10: PyTorch's caching allocator rounds and splits segments, so reserved memory
  exceeds allocated memory (see `torch.cuda.memory_stats`, "reserved" vs "allocated"); 10 % is a
  project default for transformer training, to be calibrated against reference/training_runs.
- safety_margin 0.05: the unmodelled remainder (variable-length batches, allocator spikes during
  optimizer steps) taken off what is left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from autoparallel.hardware import GPU


class MemoryConfig(BaseModel):
    """Configurable margins applied to a GPU's memory outside vLLM's own accounting."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    utilization: float = Field(default=0.85, gt=0, le=1)
    """Fraction of driver-reported device memory the job may plan to use (0.85: keep 15 % for the
    CUDA context, communication buffers and library workspaces)."""
    fragmentation: float = Field(default=0.10, ge=0, lt=1)
    """Allocator fragmentation overhead, as a fraction added to the allocated bytes (0.10 = +10 %)."""
    safety_margin: float = Field(default=0.05, ge=0, lt=1)
    """Fraction of the utilization budget held back for unmodelled spikes (0.05 = 5 %)."""

    @classmethod
    def for_training(cls) -> MemoryConfig:
        """The training planner's default: utilization 0.97, fragmentation 0.05, no safety margin.

        The training memory model itemizes weights, gradients, optimizer states, activations, logits
        and fragmentation, so the margins only cover what it does not model: the CUDA context
        (~0.5 GiB) and NCCL buffers (~2 GiB at TP >= 2, reference/vllm_logs_dev.csv V052/V053), i.e.
        ~3 % of an 80 GB card. The fragmentation allowance is calibrated on the published runs of
        reference/training_runs_dev.csv: the runs that filled >= 90 % of memory by our prediction
        left no room for 10 %; at 5 % the planner accepts 168 of the 197 published configurations
        (the general defaults above accept 94; `benchmarks/training_accuracy.py --margins`).
        """
        return cls(utilization=0.97, fragmentation=0.05, safety_margin=0.0)

    def usable_bytes(self, gpu: GPU) -> int:
        """Bytes a job may plan to allocate on one `gpu`: total × utilization × (1 − safety_margin)."""
        return int(gpu.memory_bytes * self.utilization * (1.0 - self.safety_margin))

    def usable_gib(self, gpu: GPU) -> float:
        """`usable_bytes` in GiB."""
        return self.usable_bytes(gpu) / 2**30

    def with_fragmentation(self, allocated_bytes: float) -> float:
        """Allocated bytes plus the fragmentation allowance: allocated × (1 + fragmentation)."""
        return allocated_bytes * (1.0 + self.fragmentation)
