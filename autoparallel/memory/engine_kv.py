"""KV-cache pool of one GPU under SGLang or TensorRT-LLM, from the vLLM-accounted memory parts.

Weights, activation peak and non-torch memory are the same tensors whichever engine loads them, so they
come from `memory.serving` (vLLM's accounting); only the rule that turns free memory into a KV pool
differs (memory/sglang.py, memory/trtllm.py). One result type for both.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EngineKv(BaseModel):
    """One GPU's KV pool under an engine's memory rule."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    engine: str
    """`sglang` or `trtllm`."""
    rule: str
    """The engine setting that sizes the pool, with its resolved value."""
    fraction: float
    """That setting's value: SGLang's `--mem-fraction-static` (as the rule prints it, 3 decimals),
    TensorRT-LLM's `free_gpu_memory_fraction`."""
    total_gib: float
    """Device memory, GiB."""
    weights_gib: float
    """Weights on the fullest rank, GiB."""
    kv_cache_gib: float
    """KV pool, GiB (negative: the engine cannot start)."""
    kv_cache_tokens: int
    """Tokens the pool holds (per replica: every rank holds its share of each token)."""
    block_size: int
    """Tokens per page / block (SGLang 1, TensorRT-LLM `tokens_per_block` 32)."""
    kv_bytes_per_token_per_gpu: float
    """KV bytes one token takes on one GPU of the fullest stage."""
    max_running: int
    """Most requests running at once (SGLang max_running_requests, TensorRT-LLM max_batch_size)."""
    step_tokens: int
    """Token budget of one scheduler step (SGLang chunked_prefill_size, TensorRT-LLM max_num_tokens)."""
    cuda_graph_max_batch: int
    """Largest decode batch replayed from a CUDA graph; larger ones run eagerly."""
    cuda_graph_batch_sizes: tuple[int, ...] = ()
    """Captured batch sizes a decode batch is padded up to (TensorRT-LLM `enable_padding`); empty:
    every batch up to `cuda_graph_max_batch` runs at its own size (padding negligible)."""
    chunked_prefill: bool = True
    """A prompt may be split over steps (TensorRT-LLM `enable_chunked_prefill`); off, a prompt is
    scheduled only whole, in a step with room for all of it."""
    states_gib: float = 0.0
    """Recurrent states held for every request slot before the pool is sized (TensorRT-LLM's
    `MambaCacheManager` for a hybrid linear-attention model: max_batch_size × the per-request state),
    GiB; 0 where the engine sizes them otherwise or the model has none."""
    start_problem: str | None = None
    """Why the engine, though its pool is sized, would not get through start-up (SGLang: a given
    `--mem-fraction-static` leaves less beside the pool than its CUDA graphs take); None: no such."""
    chunk_room_gib: float = 0.0
    """GiB per GPU SGLang's default `--mem-fraction-static` gives back when `--chunked-prefill-size` is
    cut to the 2,048 tokens its reservation counts at least (`memory.sglang.default_mem_fraction_static`;
    the 10 GiB floor on large GPUs included); 0 for a fraction given and for the other engines."""
    nsa_backends: tuple[str | None, str | None] = (None, None)
    """SGLang `--nsa-prefill-backend` / `--nsa-decode-backend` as passed (None: SGLang's default for
    the KV dtype and GPU, `perf.sparse_attention.sparse_kernels`); read for DeepSeek Sparse Attention."""

    @property
    def fits(self) -> bool:
        """The pool holds at least one block."""
        return self.kv_cache_tokens >= self.block_size

    def pool_tokens_read(self, sparse: bool) -> int:
        """Pool tokens a step model charges for kernels that touch the whole pool (SGLang's
        `flashmla_kv` over a BF16 cache quantizes all of it): only sparse-attention layers do, so 0
        for other models (`ReplicaShape.kv_pool_tokens`)."""
        return self.kv_cache_tokens if sparse else 0
