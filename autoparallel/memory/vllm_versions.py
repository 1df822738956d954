"""What changed in vLLM's memory accounting from release to release, as rules.

`serving.py` asks `rules_for(parse_vllm_version(text, gpu.compute_capability))` for the behaviour of
one release on one GPU (0.8-0.10 run V0 below compute capability 8.0) and never compares version
numbers itself. Each rule names the vLLM source it follows (read in the vLLM 0.32
CPU install, `~/.vllmcheck`, see /work/shared/tools/README.md) or the rows of
/work/shared/reference/vllm_logs_dev.csv it was fitted on. Rows are cited by `row_id`.

Release boundaries that are not visible in 0.32's own source are inferred from the reference logs
and vLLM pull requests; each says so.
"""

from __future__ import annotations

import functools
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import VLLM_GPU_MEMORY_UTILIZATION
from autoparallel.errors import InputError

Engine = Literal["v0", "v1"]

DEFAULT_VLLM_VERSION = "0.32"
"""The newest vLLM release whose source the rules were read in: the release the emitters target and
every model's default. A later release is taken to keep its rules (`beyond_modelled` says so)."""


class VllmVersion(BaseModel):
    """A parsed vLLM release: numbers plus the engine generation that ran."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    major: int
    """First number (0 for every release so far)."""
    minor: int
    """Second number, e.g. 19 for 0.19.0."""
    patch: int = 0
    """Third number (0 when not given)."""
    engine: Engine
    """`v0` (the original engine, default before 0.8) or `v1` (default from 0.8.0)."""

    @property
    def key(self) -> tuple[int, int, int]:
        """(major, minor, patch), for ordering."""
        return (self.major, self.minor, self.patch)

    def at_least(self, minor: int, patch: int = 0) -> bool:
        """True when this is release 0.`minor`.`patch` or later."""
        return self.key >= (0, minor, patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch} ({self.engine.upper()})"


_NUMBER = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_ENGINE = re.compile(r"\b[vV]([01])\b(?![.\d])")
"""An engine marker ("V0", "V1 engine"), not a release written with a leading v ("v0.13.0")."""


V0_FALLBACK_RELEASES = ((0, 8), (0, 11))
"""[first, end) minor releases in which V1 is the default but vLLM falls back to V0 on a GPU below
compute capability 8.0: `arg_utils.py` `_is_v1_supported_oracle` ("Compute Capability < 8.0 is not
supported by the V1 Engine. Falling back to V0", logged by 0.8.2 and 0.8.5.post1 on T4 in the Unsloth
notebooks behind V099-V108, and by 0.10.0 / 0.10.1.1 on V100 / T4 in third-party logs); 0.11.0 removed
the V0 engine (PR #25033 "[V0 Deprecation] Remove LLMEngine" and the rest of the V0 removal)."""

V1_MIN_COMPUTE_CAPABILITY = 80
"""`_is_v1_supported_oracle`: V1 needs compute capability 8.0 in the fallback releases."""


@functools.cache
def parse_vllm_version(text: str, compute_capability: int | None = None) -> VllmVersion:
    """Parse "0.19", "v0.13.0", "0.19.0 (V1)", "0.8.3rc2.dev224 (V0)", "main ~0.6.5 (2024-12-13)",
    ">=0.21" (cached: the result is frozen).

    The engine is V1 from 0.8.0 on (vLLM 0.8.0 made `VLLM_USE_V1=1` the default) unless the text
    says "V0", or unless the GPU's `compute_capability` (e.g. 75 for a T4; None: not known) is below
    8.0 in a release that still had V0 (`V0_FALLBACK_RELEASES`: 0.8-0.10 fall back to V0 there);
    earlier releases are V0 unless the text says "V1" (0.7.x could opt in).

    Raises:
        InputError: no version number in the text.
    """
    match = _NUMBER.search(text)
    if match is None:
        raise InputError(f"vllm_version {text!r}: expected a release number such as 0.19 or 0.8.5")
    major, minor = int(match.group(1)), int(match.group(2))
    patch = int(match.group(3)) if match.group(3) else 0
    named = _ENGINE.search(text)
    engine: Engine
    first, end = V0_FALLBACK_RELEASES
    if named is not None:
        engine = "v0" if named.group(1) == "0" else "v1"
    else:
        below = compute_capability is not None and compute_capability < V1_MIN_COMPUTE_CAPABILITY
        fallback = (major, minor) < end and below
        engine = "v0" if (major, minor) < first or fallback else "v1"
    return VllmVersion(major=major, minor=minor, patch=patch, engine=engine)


def beyond_modelled(text: str) -> str | None:
    """A note when `text` names a release after `DEFAULT_VLLM_VERSION`'s minor series, whose rules it
    is then given (None for a modelled release; patch releases keep their minor's accounting).

    Raises:
        InputError: no version number in the text.
    """
    newest = parse_vllm_version(DEFAULT_VLLM_VERSION)
    if parse_vllm_version(text).key[:2] <= newest.key[:2]:
        return None
    return (
        f"vLLM {text} is newer than {DEFAULT_VLLM_VERSION}, the newest release whose memory accounting "
        f"is modelled; {DEFAULT_VLLM_VERSION}'s rules are applied to it"
    )


TokensReport = Literal["blocks", "groups_min_block", "concurrency"]
ModelRunnerV2Default = Literal["none", "dense", "all"]


class VllmRules(BaseModel):
    """The memory-accounting behaviour of one vLLM release."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: VllmVersion
    """The release these rules describe."""
    default_gpu_memory_utilization: float
    """`--gpu-memory-utilization` when not given."""
    subtracts_cuda_graphs: bool
    """The CUDA-graph memory estimate is taken from the KV budget (True) or left to the headroom
    outside `gpu_memory_utilization` (False)."""
    hybrid_kv_allocator: bool
    """Sliding-window / linear-attention layers get their own KV cache groups (hybrid allocator)
    rather than full-length KV for every layer."""
    tokens_report: TokensReport
    """How "GPU KV cache size: N tokens" is computed: `blocks` (blocks × block_size),
    `groups_min_block` (blocks // groups × smallest block size) or `concurrency`
    (int(max concurrency × max_model_len))."""
    sampler_fp32_copies: float
    """Peak of the profiling sampler run, in fp32 [max_num_seqs × vocab] tensors."""
    forward_overhead: float
    """Measured forward activation peak ÷ the tensor inventory of `serving._layer_forward_elems`."""
    moe_persistent_workspace: bool
    """The fused-MoE workspaces stay allocated after the forward pass (modular MoE kernels)."""
    pp_transfer_buffers: bool
    """With pp > 1 every stage holds the hidden + residual tensors of the profile batch it sends or
    receives (IntermediateTensors)."""
    reserves_null_block: bool
    """The start-up KV check plans against one block less (the null block BlockPool holds)."""
    async_scheduling_default: bool
    """Async scheduling is on by default (two batches in flight when pp == 1), which widens the KV a
    sliding-window layer must keep per request."""
    model_runner_v2_default: ModelRunnerV2Default
    """Which models run Model Runner V2 by default (`VllmConfig.use_v2_model_runner`): `none`, `dense`
    (models neither MoE nor hybrid) or `all`. Under async scheduling with pp > 1 it keeps pp + 1
    batches in flight where the V1 runner keeps pp (`VllmConfig.max_concurrent_batches`), which
    widens the KV a sliding-window layer keeps per request (`vllm_kv.in_flight_tokens`)."""
    kv_dtype_from_checkpoint: bool
    """`--kv-cache-dtype auto` takes the KV dtype a ModelOpt checkpoint declares (`kv_cache_quant_algo`)
    rather than the model's dtype."""
    mamba_align_mode: bool
    """Prefix caching is on by default for hybrid (linear-attention) models, so their
    `mamba_cache_mode` is `align` and a request holds two state pages per linear-attention group
    (`vllm_kv.MAMBA_ALIGN_STATE_PAGES`) rather than one."""
    mla_flash_attn_hopper: bool
    """Dense MLA on Hopper runs FlashAttention MLA (any multiple of 16 tokens a block) before FlashMLA
    (64-token blocks), which is left to FP8 caches FlashAttention MLA cannot read."""
    mla_flashinfer_blackwell: bool
    """Dense MLA on Blackwell runs FlashInfer MLA (32- or 64-token blocks) before CUTLASS MLA (128)."""
    full_cuda_graphs: bool
    """The default `cudagraph_mode` is FULL_AND_PIECEWISE (FULL decode graphs besides the piecewise
    ones) rather than PIECEWISE only."""
    blackwell_capture_1024: bool
    """The default largest CUDA-graph capture size is 1024 (not 512) on data-center Blackwell."""
    large_memory_batch_tier: bool
    """Devices of 160 GiB or more get the largest batch defaults (16384 tokens for `vllm serve` too)."""
    non_torch_counts_context: bool
    """The profile takes (total − free) − torch-allocated memory after the profile run as non-torch
    memory, so the CUDA context (and any other process on the GPU) is counted, rather than only what
    grew outside torch during the profile (`memory_profiling`)."""


@functools.cache
def rules_for(version: VllmVersion) -> VllmRules:
    """The accounting rules of `version` (see each field's source comment below). Cached: one
    release is one frozen object, so the memos keyed by its identity (`vllm_kv.build_groups`) hit."""
    v = version
    v1 = v.engine == "v1"
    return VllmRules(
        version=v,
        # 0.32 config/cache.py: `gpu_memory_utilization: float = Field(default=0.92)`; 0.9 in every
        # release the reference logs cover (vLLM PR #2162 documented 0.9; V001-V009 use it). The
        # bump is taken to come with CUDA-graph profiling in 0.21 (gpu_worker.py's log line advises
        # raising the utilization "to maintain the same effective KV cache size as before").
        default_gpu_memory_utilization=VLLM_GPU_MEMORY_UTILIZATION if v.at_least(21) else 0.90,
        # 0.32 v1/worker/gpu_worker.py determine_available_memory: the estimate is subtracted when
        # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS is on, "the default as of v0.21.0". The 0.19 rows
        # (V027-V082) log an estimate but do not subtract it; V023 (0.5.4) shows graphs outside.
        subtracts_cuda_graphs=v1 and v.at_least(21),
        # Hybrid allocator (v1/core/kv_cache_utils.py _get_kv_cache_groups_uniform_page_size) arrived
        # in 0.10; V019 (0.8.2, gemma-3-1b) still reports tokens = blocks × 16 for all 26 layers.
        hybrid_kv_allocator=v1 and v.at_least(10),
        # vLLM PR #38364 (2026-04) replaced `num_blocks // len(groups) * min_block_size` with
        # `int(max_concurrency * max_model_len)`: V033-V036 (0.19) fit the former, V010 (0.24) the
        # latter; 0.20 is taken as the first release with the fix.
        tokens_report=(
            "concurrency"
            if v1 and v.at_least(20)
            else "groups_min_block"
            if v1 and v.at_least(10)
            else "blocks"
        ),
        # _dummy_sampler_run (gpu_model_runner.py) samples max_num_seqs rows with top-k = vocab - 1
        # and top-p 0.9. Fit: 3.72 on the 0.19 single-GPU rows whose peak is the sampler (V043 Llama-3.1,
        # V077 Qwen3-8B, V034/V038 Gemma: 3.67-3.74); 9.6 before 0.17 (V084/V085 Qwen3-14B: 5.64 GiB
        # on 0.15/0.16 vs 2.23 on 0.17+) and on V0 (V012, V001: sort + softmax + log-softmax copies).
        sampler_fp32_copies=3.72 if v1 and v.at_least(17) else 9.6,
        # Fit: V1 1.25 on forward-bound 0.19 rows (V027 CodeLlama-7b 0.77 GiB, V041 granite-3.3-8b
        # 0.85, V050/V051 middle pipeline stages); V0 1.08 on V008/V009 (Llama-3.1-8B, 20000 and
        # 29000 tokens: 2.07 and 2.99 GiB, linear in tokens).
        forward_overhead=1.25 if v1 else 1.08,
        # Modular fused-MoE kernels keep workspace13/workspace2 (fused_moe TritonExperts
        # workspace_shapes) in the workspace manager (v1/worker/workspace.py); fits V066/V076/V060.
        moe_persistent_workspace=v1 and v.at_least(10),
        # V050/V051 notes: the last of 2 or 4 stages peaks 0.12 GiB above the single-GPU 1.89 GiB and
        # the first 0.12 GiB above the middle ones' forward: 2 × 8192 × 4096 × 2 bytes
        # (IntermediateTensors hidden_states + residual).
        pp_transfer_buffers=v1,
        # 0.32 kv_cache_utils.get_kv_cache_configs: "Reserve the null block BlockPool permanently
        # holds back" (absent from the 0.19 code the logs come from); taken from 0.25.
        reserves_null_block=v1 and v.at_least(25),
        # 0.32 config/vllm.py: async_scheduling defaults to True unless an option forbids it, and
        # max_concurrent_batches is then 2 for pp == 1; taken from 0.25 (no log distinguishes it).
        async_scheduling_default=v1 and v.at_least(25),
        # 0.32 config/vllm.py `use_v2_model_runner`: V2 unless the env var, a missing Triton or an
        # unsupported feature says otherwise, and `max_concurrent_batches` = pp + 1 under async
        # scheduling with it (the V1 runner keeps pp; `__post_init__` turns async scheduling off for
        # pp > 1 on V1). Releases (vLLM release notes): 0.23 added the pp + 1 slot (PR #42187
        # "[ModelRunnerV2] Avoid pipeline parallel bubbles") and picked V2 by default for Qwen3, Llama
        # and Mistral dense architectures only (PR #43458; not modelled, none of them has sliding
        # windows but Mistral-7B-v0.1); 0.25.0 (2026-07-11) made V2 the default for all dense models
        # (PR #44443: the MoE, hybrid and attention-free exclusions stay); 0.29.0 (2026-09-09) for all
        # models (PR #53183 "Use MRV2 for all models by default").
        model_runner_v2_default=(
            "all" if v1 and v.at_least(29) else "dense" if v1 and v.at_least(25) else "none"
        ),
        # vLLM PR #30785 (merged 2025-12-16, "Load kv-cache dtype from hf_quant_config.json
        # automatically"): resolved when `CacheConfig` is built; taken from 0.14, the first release cut
        # after it (no log distinguishes it).
        kv_dtype_from_checkpoint=v1 and v.at_least(14),
        # vLLM PR #50991 (merged 2026-08-04, "[Mamba] enable prefix cache by default"): 0.32
        # `EngineArgs` defaults prefix caching on for hybrid models (`config/model.py`
        # `is_prefix_caching_supported`), and `MambaModelConfig.verify_and_update_config`
        # (`model_executor/models/config.py`) then turns `mamba_cache_mode` "none" into "align";
        # 0.28 is the first release with it (0.27.0 came out 2026-08-11 with hybrid prefix caching
        # still opt-in; vllm-metal PR #651 documents the new default for 0.28.0). No log has a hybrid
        # model.
        mamba_align_mode=v1 and v.at_least(28),
        # vLLM PR #27363 ("Prefer FlashAttention MLA as default over FlashMLA", opened 2025-10-22
        # on top of the backend-selection refactor PR #24794, still in review 2025-11-04): 0.32
        # `platforms/cuda.py` `_get_backend_priorities` lists FLASH_ATTN_MLA first on SM90; taken
        # from 0.12, the first release cut after it (no MLA row is on Hopper).
        mla_flash_attn_hopper=v1 and v.at_least(12),
        # vLLM PR #32339 (opened 2026-01-14, "Make FLASHINFER_MLA the default MLA backend on
        # Blackwell"): FLASHINFER_MLA heads 0.32's SM100 list; 0.14.0rc0 was cut by 2026-01-11, so
        # taken from 0.15 (no MLA row is on Blackwell).
        mla_flashinfer_blackwell=v1 and v.at_least(15),
        # vLLM PR #25444 ("[Perf] Change default CUDAGraphMode from PIECEWISE to FULL_AND_PIECEWISE",
        # opened 2025-09-23): V1 captured piecewise graphs only before; 0.11.0 (2025-10) is the first
        # release with it.
        full_cuda_graphs=v1 and v.at_least(11),
        # vLLM PR #49390 ("[Perf] Raise Blackwell CUDA graph capture default to 1024", opened
        # 2026-07-22 as a draft, merged): 512 everywhere before. Its merge date is not visible here;
        # taken from 0.28 (0.27.0 came out 2026-08-11) per a third-party note: unpinned.
        blackwell_capture_1024=v1 and v.at_least(28),
        # vLLM PR #51726 (the `device_memory >= 160 * GiB_bytes` tier of `get_batch_defaults`, "for
        # GPUs like B200/B300"; vLLM issue #53961, 2026-08-26, reports it in a release): taken from
        # 0.28, unpinned like the above. Before it, B200 took the >= 70 GiB defaults.
        large_memory_batch_tier=v1 and v.at_least(28),
        # V0 up to 0.6.4 (`worker.py` `determine_num_available_blocks`: `total_allocated_bytes =
        # mem_get_info()[1] - mem_get_info()[0]`, `non_torch_allocations = total_allocated_bytes -
        # allocated_bytes.all.current`) and V1 before it adopted `memory_profiling` (`v1/worker/
        # gpu_worker.py` `determine_available_memory`, the same subtraction, until PR #19312 "[V1]
        # Reuse V0's memory_profiling util", opened 2025-06-07; V025 on 0.10.1 already logs the
        # memory_profiling split, so 0.10 is taken). V0 0.6.5 replaced it with `memory_profiling`
        # (PR #10511), whose allocated-vs-reserved mix-up PR #11809 fixed in 0.7.0; that error
        # depends on the caching allocator's state and is not modelled (V001/V002).
        non_torch_counts_context=(not v1 and not v.at_least(6, 5)) or (v1 and not v.at_least(10)),
    )
