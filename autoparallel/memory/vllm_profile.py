"""What vLLM's start-up profile measures on one GPU, component by component (bytes).

- Weights: the parameters a rank loads (vLLM's TP layers: QKV/MLP/experts column/row-sharded,
  embedding and LM head sharded by vocabulary padded to 64, norms and the MoE router replicated;
  MXFP4 experts padded to the MoE backend's tile, `vllm_mxfp4_alignment`;
  `distributed/utils.get_pp_indices` for pipeline stages) plus the RoPE cos/sin caches
  (`rotary_embedding/base.py`: rows × rotary_dim in the model dtype, one per distinct RoPE setting).
- Activation peak: the torch allocator peak of `gpu_model_runner.profile_run`: a dummy forward of
  max_num_batched_tokens tokens, then `_dummy_sampler_run` on max_num_seqs rows (last stage only).
- Non-torch memory: CUDA memory outside torch that grows during the profile (cuBLAS workspaces,
  NCCL and custom all-reduce buffers).
- CUDA graphs: the memory captured graphs hold (`profile_cudagraph_memory`).

Constants fitted on /work/shared/reference/vllm_logs_dev.csv name their rows.
"""

from __future__ import annotations

import functools
import math
from collections import Counter

from autoparallel.errors import InputError
from autoparallel.hardware import GPU
from autoparallel.memo import Memo, memoized
from autoparallel.memory.vllm_versions import VllmRules
from autoparallel.models.quant import QuantMethod
from autoparallel.models.spec import AttentionKind, LayerSpec, MlpKind, ModelSpec, ParamGroups

GIB = float(2**30)
# vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE.
VOCAB_PADDING = 64


PP_SPLIT_ENGINES = ("vllm", "sglang", "trtllm")
"""Engines whose default pipeline layer split `pp_partition` knows."""


def pp_partition(
    num_layers: int, pp: int, partition: tuple[int, ...] | None = None, *, engine: str = "vllm"
) -> tuple[range, ...]:
    """Decoder layers of each pipeline stage, as `engine` assigns them by default.

    An even split of ``num_layers // pp`` each; the ``num_layers % pp`` layers left over go one each to
    - vLLM (`vllm/distributed/utils.py::get_pp_indices`): the stages before the last, counting back
      from the second-to-last (40 layers / 3 stages: 13, 14, 13);
    - SGLang (`python/sglang/srt/distributed/utils.py::get_pp_indices`, "the last N partitions will
      have one extra layer"): the last stages (13, 13, 14; the last also holds the LM head);
    - TensorRT-LLM (`tensorrt_llm/mapping.py` `Mapping.pp_layers`: `torch.tensor_split`, "first n
      ranks get one extra layer"): the first stages (14, 13, 13; the first also holds the embedding).
    `partition` sets the sizes instead, as VLLM_PP_LAYER_PARTITION (vLLM) and SGLANG_PP_LAYER_PARTITION
    (SGLang) do.

    Raises:
        InputError: an engine none of these.
    """
    if engine not in PP_SPLIT_ENGINES:
        raise InputError(f"engine {engine!r}: expected one of {', '.join(PP_SPLIT_ENGINES)}")
    if partition is None:
        base, extra = divmod(num_layers, pp)
        sizes = [base] * pp
        if engine == "vllm":
            extra_stages = range(pp - 1 - extra, pp - 1)
        elif engine == "sglang":
            extra_stages = range(pp - extra, pp)
        else:
            extra_stages = range(extra)
        for s in extra_stages:
            sizes[s] += 1
    else:
        sizes = list(partition)
    starts = [sum(sizes[:i]) for i in range(pp)]
    return tuple(range(s, s + n) for s, n in zip(starts, sizes, strict=True))


def vocab_rows_per_rank(vocab: int, tp: int) -> int:
    """Embedding / LM-head rows one TP rank holds: pad_vocab_size(vocab, 64) / tp."""
    padded = math.ceil(vocab / VOCAB_PADDING) * VOCAB_PADDING
    return math.ceil(padded / tp)


def _attention_params_per_rank(layer: LayerSpec, hidden: int, tp: int) -> float:
    att, total = layer.attention, layer.params.attention
    if att.kind is AttentionKind.LINEAR:
        return total / tp
    if att.kind is AttentionKind.MLA:
        # deepseek_v2.py: fused q_a / kv_a_proj_with_mqa are ReplicatedLinear; q_b, kv_b, o sharded.
        replicated = hidden * (att.q_lora_rank + att.kv_lora_rank + att.qk_rope_head_dim)
        replicated = min(replicated, total)
        return (total - replicated) / tp + replicated
    # QKVParallelLinear: KV heads split when tp <= kv, each rank holds one replica when tp > kv.
    kv = hidden * att.num_kv_heads * (att.head_dim + att.v_head_dim)
    kv = min(kv, total)
    return (total - kv) / tp + kv * math.ceil(att.num_kv_heads / tp) / att.num_kv_heads


NO_PADDING = (1, 1)
"""Expert shapes as the checkpoint has them."""


def vllm_mxfp4_alignment(gpu: GPU) -> tuple[int, int]:
    """(per-rank expert intermediate, hidden) sizes vLLM 0.32 rounds MXFP4 (gpt-oss) experts up to on
    `gpu`, allocating the padded weights, scales and biases (`GptOssMxfp4MoEMethod.maybe_roundup_sizes`,
    `fused_moe/oracle/mxfp4.py` `mxfp4_round_up_hidden_size_and_intermediate_size`), for the backend
    `select_mxfp4_moe_backend` picks first (`_get_priority_backends_for_gpt_oss`): Blackwell (SM100)
    FlashInfer TRT-LLM, 128 and 256; Hopper the OAI Triton kernels (SM90 to SM12x), 64 and unpadded;
    Ampere, Ada and Turing Marlin (SM75+), 128 and 256; ROCm (the ROCm branch, gpt-oss's SwiGLU-OAI
    activation), 256 and 256. An NVIDIA architecture the catalog does not know: unpadded."""
    if gpu.vendor == "amd":
        return 256, 256
    cc = gpu.compute_capability
    if cc is None:
        return NO_PADDING
    if cc >= 100:
        return 128, 256
    if cc >= 90:
        return 64, 1
    return 128, 256


def _round_up(n: float, to: int) -> float:
    return math.ceil(n / to) * to


def layer_params_per_rank(
    layer: LayerSpec, hidden: int, tp: int, ep: int, expert_align: tuple[int, int] = NO_PADDING
) -> ParamGroups:
    """Parameters of one decoder layer on one rank (`ep` > 1: experts split over ep ranks), the routed
    experts' per-rank intermediate and hidden sizes rounded up to `expert_align` (biases scaled alike)."""
    p = layer.params
    experts = layer.mlp.num_experts
    if ep > 1 and experts:
        routed = p.routed_experts * math.ceil(experts / ep) / experts
    else:
        routed = p.routed_experts / tp
    if experts and expert_align != NO_PADDING:
        width = layer.mlp.intermediate_size / (1 if ep > 1 else tp)
        padded = _round_up(width, expert_align[0]) * _round_up(hidden, expert_align[1])
        routed *= padded / (width * hidden)
    return ParamGroups(
        attention=round(_attention_params_per_rank(layer, hidden, tp)),
        dense_mlp=round(p.dense_mlp / tp),
        routed_experts=round(routed),
        shared_experts=round(p.shared_experts / tp),
        router=p.router,
        norms=p.norms,
    )


_STAGE_PARAMS: Memo[ParamGroups] = {}


def stage_params_per_rank(
    model: ModelSpec,
    layers: range,
    stage: int,
    pp: int,
    tp: int,
    ep: int,
    *,
    mxfp4_align: tuple[int, int] = NO_PADDING,
) -> ParamGroups:
    """Parameter groups one rank of `stage` loads (MTP modules are not loaded without speculation);
    MXFP4 routed experts padded to `mxfp4_align` (vLLM: `vllm_mxfp4_alignment` of the GPU); memoized
    per model object."""
    align = mxfp4_align if _mxfp4_experts(model) else NO_PADDING
    key = (layers.start, layers.stop, stage, pp, tp, ep, align)
    return memoized(
        _STAGE_PARAMS, (model,), key, lambda: _stage_params(model, layers, stage, pp, tp, ep, align)
    )


def _mxfp4_experts(model: ModelSpec) -> bool:
    q = model.quantization
    return q is not None and q.method is QuantMethod.MXFP4 and "routed_experts" in q.quantized_groups


_LAYER_KINDS: Memo[tuple[tuple[int, ...], tuple[LayerSpec, ...]]] = {}


def layer_kinds(model: ModelSpec) -> tuple[tuple[int, ...], tuple[LayerSpec, ...]]:
    """Each decoder layer's index among the model's distinct layers, and those layers: a model repeats
    one to a few layer specs (DeepSeek-V3: 2 over 61 layers), so per-layer sums are counted per kind."""

    def compute() -> tuple[tuple[int, ...], tuple[LayerSpec, ...]]:
        index: dict[LayerSpec, int] = {}
        kinds = tuple(index.setdefault(layer, len(index)) for layer in model.layers)
        return kinds, tuple(index)

    return memoized(_LAYER_KINDS, (model,), (), compute)


def _stage_params(
    model: ModelSpec,
    layers: range,
    stage: int,
    pp: int,
    tp: int,
    ep: int,
    align: tuple[int, int] = NO_PADDING,
) -> ParamGroups:
    kinds, distinct = layer_kinds(model)
    total = ParamGroups()
    for kind, count in Counter(kinds[i] for i in layers).items():
        layer = layer_params_per_rank(distinct[kind], model.hidden_size, tp, ep, align)
        total = total + layer.times(count)
    rows = vocab_rows_per_rank(model.vocab_size, tp)
    share = rows / model.vocab_size
    if stage == 0:
        total = total + ParamGroups(
            embedding=round(model.embedding_params * share), vision=round(model.vision_params / tp)
        )
    if stage == pp - 1:
        head = model.lm_head_params
        if model.tie_word_embeddings and pp > 1:
            head = model.embedding_params  # the last stage builds its own copy of the tied matrix
        total = total + ParamGroups(lm_head=round(head * share), norms=model.final_norm_params)
    return total


def rope_cache_bytes(model: ModelSpec, layers: range, dtype_bytes: int) -> float:
    """Rotary cos/sin caches a stage's layers hold: rows × rotary_dim × dtype bytes per cache
    (`rotary_embedding/base.py` `RotaryEmbedding`: a [rows, rotary_dim] buffer in the model dtype).

    vLLM's `get_rope` keeps one cache per distinct (head size, rotary dim, max position, base,
    scaling parameters) and shares it between layers (`_ROPE_DICT`), each sized by its scaling type
    (`ModelSpec.rope_caches`, built by `parse.rope_caches`): Gemma 3's global layers add a linear-scaled
    cache of max_position × 8 rows to the sliding layers' default one. A spec without caches (built by
    hand): one cache of `max_position_embeddings` rows per distinct head size."""
    if model.rope_caches:
        used = (c for c in model.rope_caches if any(i in layers for i in c.layers))
        return float(sum(c.rows * c.rotary_dim * dtype_bytes for c in used))
    dims = set()
    for i in layers:
        att = model.layers[i].attention
        if att.kind is AttentionKind.LINEAR:
            continue
        dims.add(att.qk_rope_head_dim if att.kind is AttentionKind.MLA else att.head_dim)
    return float(sum(model.max_position_embeddings * d * dtype_bytes for d in dims))


# ----- activation peak ---------------------------------------------------------------------------


def _moe_width(layer: LayerSpec, tp: int, ep: int) -> tuple[float, float]:
    """(intermediate width per rank, share of the top-k tokens routed to local experts)."""
    mlp = layer.mlp
    if ep > 1:
        return float(mlp.intermediate_size), math.ceil(mlp.num_experts / ep) / mlp.num_experts
    return mlp.intermediate_size / tp, 1.0


def moe_workspace_elems(layer: LayerSpec, hidden: int, tp: int, ep: int) -> float:
    """Fused-MoE workspaces per token: topk × (max(2I, h) + I) (TritonExperts.workspace_shapes)."""
    if layer.mlp.kind is not MlpKind.MOE:
        return 0.0
    width, local = _moe_width(layer, tp, ep)
    return layer.mlp.experts_per_token * local * (max(2 * width, hidden) + width)


def layer_forward_elems(layer: LayerSpec, hidden: int, tp: int, ep: int, moe_in_workspace: bool) -> float:
    """Activation elements per token live at the layer's peak (one rank).

    Residual + normed input (2h) plus the larger of: attention (Q, K, V, attention output) and the
    MLP (gate/up output 2I and the activated I; non-gated: 2I). MoE: the routed-expert caches
    topk × (3I + h) unless they live in the persistent workspace, plus shared experts.
    """
    att, mlp = layer.attention, layer.mlp
    if att.kind is AttentionKind.LINEAR:
        qkvz = 2 * att.num_kv_heads * att.head_dim + 2 * att.linear_num_value_heads * att.v_head_dim
        attn = 2.0 * qkvz / tp
    elif att.kind is AttentionKind.MLA:
        attn = att.num_heads * (2 * att.head_dim + att.v_head_dim) / tp
    else:
        kv = math.ceil(att.num_kv_heads / tp)
        attn = att.num_heads / tp * (att.head_dim + att.v_head_dim) + kv * (att.head_dim + att.v_head_dim)
    mats = 3 if mlp.gated else 2
    if mlp.kind is MlpKind.MOE:
        shared = mats * mlp.shared_intermediate_size * mlp.num_shared_experts / tp
        width, local = _moe_width(layer, tp, ep)
        routed = 0.0 if moe_in_workspace else mlp.experts_per_token * local * (3 * width + hidden)
        ffn = shared + routed
    else:
        ffn = mats * mlp.intermediate_size / tp
    return 2 * hidden + max(attn, ffn)


_PEAK_ELEMS: Memo[tuple[float, float]] = {}


def _peak_elems(model: ModelSpec, layers: range, tp: int, ep: int, persistent: bool) -> tuple[float, float]:
    """(largest MoE workspace, largest forward activation) elements per token over a stage's layers."""
    h = model.hidden_size
    ws_elems = fwd_elems = 0.0
    for i in layers:
        layer = model.layers[i]
        ws_elems = max(ws_elems, moe_workspace_elems(layer, h, tp, ep) if persistent else 0.0)
        fwd_elems = max(fwd_elems, layer_forward_elems(layer, h, tp, ep, persistent))
    return ws_elems, fwd_elems


def activation_peak_bytes(
    model: ModelSpec,
    layers: range,
    *,
    stage: int,
    pp: int,
    tp: int,
    ep: int,
    act_bytes: int,
    num_tokens: int,
    num_reqs: int,
    rules: VllmRules,
) -> float:
    """Torch peak increase of the profile run on one rank of `stage`.

    peak = persistent MoE workspace + max(forward, kept hidden states + sampler) + pipeline buffers,
    where forward = overhead × tokens × max per-layer elements × dtype bytes and the sampler holds
    `sampler_fp32_copies` fp32 [num_reqs × vocab] tensors (the last stage only).
    """
    h = model.hidden_size
    persistent = rules.moe_persistent_workspace
    key = (layers.start, layers.stop, tp, ep, persistent)
    compute = lambda: _peak_elems(model, layers, tp, ep, persistent)  # noqa: E731
    ws_elems, fwd_elems = memoized(_PEAK_ELEMS, (model,), key, compute)
    workspace = num_tokens * ws_elems * act_bytes
    forward = rules.forward_overhead * num_tokens * fwd_elems * act_bytes
    peak = forward
    if stage == pp - 1:
        sampler = rules.sampler_fp32_copies * num_reqs * model.vocab_size * 4.0
        peak = max(peak, num_tokens * h * act_bytes + sampler)
    if pp > 1 and rules.pp_transfer_buffers:
        peak += 2.0 * num_tokens * h * act_bytes
    return workspace + peak


# ----- non-torch memory ---------------------------------------------------------------------------

# V1 >= 0.18 single GPU: 0.24-0.27 GiB (V027-V082 rows, V087); 0.15-0.17: 0.13 (V084-V086);
# pipeline-only ranks (tp=1, pp>1): 0.07 (V050, V051); other releases that count only what grows
# outside torch during the profile (`memory_profiling`) 0.03-0.10 (V012, V025, V098-V109): 0.10.
_NON_TORCH_BASE_GIB = {"v1_18": 0.25, "v1_15": 0.13, "pp_only": 0.07, "old": 0.10}
# Releases whose profile counts all device memory outside torch's allocation
# (`VllmRules.non_torch_counts_context`) count the CUDA context and the cuBLAS workspaces too: 0.35 GiB
# at tp=1 on V008/V009 (0.6.3/0.6.4, RTX 3090, `non_torch_memory=0.35GiB`). The context's size is the
# driver's, not vLLM's.
_CUDA_CONTEXT_GIB = 0.35
# TP >= 2 over NVLink: custom all-reduce + NCCL buffers allocated during the profile. 0.19 on H100:
# 2.07-2.09 GiB at tp=2 (V052, V060, V061, V068, V081), 2.13-2.21 at tp=4 (V053, V062) -> 1.83 GiB
# above the single-GPU base at tp=2, + 0.09 GiB per doubling; 0.6.5 logs the same +1.79 (V001/V002).
_NCCL_NVLINK_GIB = 1.83
_NCCL_NVLINK_PER_DOUBLING_GIB = 0.09
# PCIe-only GPUs (no custom all-reduce): 0.25 GiB at tp=2 on RTX 4090 (V013), 0.2 at tp=16 on RTX
# 3090 (V021) -> 0.15 above the base.
_NCCL_PCIE_GIB = 0.15


def non_torch_bytes(rules: VllmRules, tp: int, pp: int, nvlink: bool) -> float:
    """Non-torch memory the profile attributes to the engine on one rank: the release's base (the
    CUDA context included where `rules.non_torch_counts_context`) plus the communication buffers of
    tensor parallelism."""
    v = rules.version
    if rules.non_torch_counts_context:
        base = _CUDA_CONTEXT_GIB
    elif pp > 1 and tp == 1 and v.engine == "v1":
        base = _NON_TORCH_BASE_GIB["pp_only"]
    elif v.engine == "v1" and v.at_least(18):
        base = _NON_TORCH_BASE_GIB["v1_18"]
    elif v.engine == "v1" and v.at_least(15):
        base = _NON_TORCH_BASE_GIB["v1_15"]
    else:
        base = _NON_TORCH_BASE_GIB["old"]
    comm = 0.0
    if tp > 1:
        comm = (
            _NCCL_NVLINK_GIB + _NCCL_NVLINK_PER_DOUBLING_GIB * math.log2(tp / 2) if nvlink else _NCCL_PCIE_GIB
        )
    return (base + comm) * GIB


# ----- CUDA graphs ----------------------------------------------------------------------------------

# Per captured graph: a fixed part and a part per decoder layer on the stage (piecewise graphs split
# at every attention layer). Fit on the 0.19 estimates (`cuda_graph_estimated_gib`, the quantity
# 0.21+ subtracts) with 102 graphs: 0.84 GiB at 32 layers (V043), 0.54 at 16 (V050), 0.49 at 8
# (V051) -> 0.37 GiB + 0.0146 GiB/layer.
_GRAPH_FIXED_GIB = 0.37 / 102
_GRAPH_PER_LAYER_GIB = 0.0146 / 102


def capture_sizes(max_num_seqs: int, max_num_batched_tokens: int, blackwell: bool) -> list[int]:
    """Default cudagraph_capture_sizes (0.32 config/vllm.py `_set_cudagraph_sizes`).

    max size = min(2 × max_num_seqs, 512 (1024 with `blackwell`: data-center Blackwell from the
    release `VllmRules.blackwell_capture_1024` names), max_num_batched_tokens); sizes 1, 2, 4, then
    every 8 below 256, then every 16.
    """
    return list(_capture_sizes(max_num_seqs, max_num_batched_tokens, bool(blackwell)))


@functools.lru_cache(maxsize=4096, typed=True)
def _capture_sizes(max_num_seqs: int, max_num_batched_tokens: int, blackwell: bool) -> tuple[int, ...]:
    """`capture_sizes`, cached (the serving tables ask for the same few limits at every point)."""
    limit = min(2 * max_num_seqs, 1024 if blackwell else 512, max_num_batched_tokens)
    sizes = [s for s in (1, 2, 4) if s <= limit]
    sizes += list(range(8, min(limit + 1, 256), 8))
    sizes += list(range(256, limit + 1, 16))
    if max_num_batched_tokens <= limit and max_num_batched_tokens not in sizes:
        sizes.append(max_num_batched_tokens)
    return tuple(sorted(set(sizes)))


def cuda_graph_count(
    rules: VllmRules, max_num_seqs: int, max_num_batched_tokens: int, blackwell: bool
) -> int:
    """Graphs captured: V1 piecewise sizes, plus FULL decode sizes up to max_num_seqs where the
    release's default `cudagraph_mode` is FULL_AND_PIECEWISE (`rules.full_cuda_graphs`, 0.11+: PIECEWISE
    only before); the 1024 Blackwell limit only where `rules.blackwell_capture_1024`. V0 one per batch
    size in [1, 2, 4, 8, ..., min(max_num_seqs, 256)] (worker/model_runner.py _BATCH_SIZES_TO_CAPTURE)."""
    if rules.version.engine == "v0":
        return len([s for s in [1, 2, 4, *range(8, 257, 8)] if s <= max(max_num_seqs, 1)])
    sizes = capture_sizes(max_num_seqs, max_num_batched_tokens, blackwell and rules.blackwell_capture_1024)
    if not rules.full_cuda_graphs:
        return len(sizes)
    full = [s for s in sizes if s <= max_num_seqs]
    return len(sizes) + len(full)


def cuda_graph_bytes(
    rules: VllmRules,
    num_layers_on_stage: int,
    max_num_seqs: int,
    max_num_batched_tokens: int,
    *,
    enforce_eager: bool,
    blackwell: bool,
) -> float:
    """Estimated CUDA-graph memory of one rank (0 with --enforce-eager)."""
    if enforce_eager:
        return 0.0
    n = cuda_graph_count(rules, max_num_seqs, max_num_batched_tokens, blackwell)
    return n * (_GRAPH_FIXED_GIB + _GRAPH_PER_LAYER_GIB * num_layers_on_stage) * GIB
