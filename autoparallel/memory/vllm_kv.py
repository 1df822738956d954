"""vLLM's KV cache layout: block sizes, hybrid groups, blocks, tokens and concurrency.

Follows vLLM 0.32 `v1/core/kv_cache_utils.py` and `v1/kv_cache_interface.py` (read, not copied):

- Each attention layer has a page = block_size × bytes per token (softmax: 2 · ceil(kv/tp) ·
  head_dim · dtype bytes, MLA: (kv_lora_rank + qk_rope_head_dim) · dtype bytes, not split by TP).
  Linear-attention (Mamba-like) layers hold one fixed state page per request.
- One KV cache group when all layers are alike (`is_kv_cache_spec_uniform` /
  `UniformTypeKVCacheSpecs`); otherwise the hybrid allocator buckets layers by type, unifies page
  sizes (`unify_kv_cache_spec_page_size`: smaller pages get a proportionally larger block size,
  Mamba pages are padded; `Platform._align_hybrid_block_size` first grows the attention block size
  so its page covers the Mamba state), and splits every bucket into groups of `group_size` layers
  (the smallest bucket, or the largest when it is < 1.5 × the smallest)
  (`_get_kv_cache_groups_uniform_page_size`).
- A block of the shared pool holds one page of every layer of the widest group:
  num_blocks = available // bytes_per_block (`get_kv_cache_config_from_groups`), then every
  pipeline stage keeps the smallest count (`get_kv_cache_configs`).
- A max_model_len request takes cdiv(max_memory_usage_bytes, page) blocks per group: all of
  max_model_len for full attention, min(window − 1 + tokens in flight, max_model_len) + 1 block
  for sliding windows, one state page for Mamba (`MambaSpec.max_memory_usage_bytes`: two under
  `mamba_cache_mode` align, `VllmRules.mamba_align_mode`); max concurrency = num_blocks / that sum
  (`get_max_concurrency_for_kv_cache_config`). Tokens in flight are `VllmConfig.max_in_flight_tokens`:
  `max_concurrent_batches` × max_num_batched_tokens, pp + 1 batches under async scheduling on Model
  Runner V2, else 2 at pp = 1 and pp above (`in_flight_tokens`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from autoparallel.memo import Memo, memoized
from autoparallel.memory.vllm_versions import VllmRules

LayerKind = Literal["full", "sliding", "chunked", "mamba"]

# 0.32 config/cache.py CacheConfig.DEFAULT_BLOCK_SIZE.
DEFAULT_BLOCK_SIZE = 16
MAMBA_ALIGN_STATE_PAGES = 2
"""State pages a request holds per linear-attention group under `mamba_cache_mode` align (0.32
`MambaSpec.max_memory_usage_bytes`: 2 + speculative blocks + prefill checkpoint blocks; the Gated
DeltaNet layers of the models priced here declare no checkpoint block, Mamba2 mixers one more)."""
# 0.32 platforms/interface.py _align_hybrid_block_size: attention block sizes for hybrid Mamba models
# are multiples of the backend's smallest kernel block (FlashAttention: 16).
KERNEL_BLOCK_ALIGNMENT = 16


@dataclass(frozen=True)
class LayerKv:
    """What one decoder layer caches on one GPU."""

    kind: LayerKind
    """`full` (softmax or MLA over the whole context), `sliding`, `chunked` or `mamba`."""
    stage: int
    """Pipeline stage holding the layer."""
    bytes_per_token: int = 0
    """Attention layers: cached bytes per token on this GPU."""
    state_bytes: int = 0
    """Mamba / linear-attention layers: recurrent state bytes per request on this GPU."""
    window: int = 0
    """Sliding window or chunk size in tokens (sliding / chunked)."""


@dataclass(frozen=True)
class KvGroup:
    """One KV cache group: layers sharing a block table."""

    kind: LayerKind
    """Layer kind of every member."""
    layers: tuple[int, ...]
    """Indices (into the model's layer list) of the members."""
    block_size: int
    """Tokens per block of this group (after page-size unification)."""
    page_bytes: int
    """Bytes one block takes in one member layer (after unification / padding)."""
    window: int = 0
    """Window or chunk size of sliding / chunked groups."""


@dataclass(frozen=True)
class KvPlan:
    """The KV cache vLLM would allocate."""

    groups: tuple[KvGroup, ...]
    """KV cache groups (one for uniform models)."""
    block_size: int
    """Smallest block size over the groups (what vLLM logs)."""
    bytes_per_block: tuple[int, ...]
    """Per stage: bytes of one pool block (the stage's widest group)."""
    stage_blocks: tuple[int, ...]
    """Per stage: blocks its available memory holds (before taking the minimum)."""
    num_blocks: int
    """Blocks every stage allocates: the minimum over stages."""
    limiting_stage: int
    """Stage with the fewest blocks."""
    blocks_per_request: int
    """Blocks one max_model_len request takes over all groups."""
    tokens: int
    """"GPU KV cache size: N tokens" as the release reports it."""
    max_concurrency: float
    """Max_model_len requests the pool holds at once, as vLLM computes it."""
    bytes_per_token: float
    """Bytes one more long-context token costs on the limiting stage (all full-attention groups)."""
    model_runner_v2: bool = False
    """The release runs this model on Model Runner V2 (`uses_model_runner_v2`), which keeps one more
    batch in flight under pipeline parallelism (`in_flight_tokens`)."""


def _page_unify(
    buckets: list[list[int]], layers: Sequence[LayerKv], block_size: int
) -> list[tuple[int, int]]:
    """(block_size, page_bytes) per bucket after vLLM's page-size unification."""
    raw: list[tuple[int, int]] = []
    for bucket in buckets:
        spec = layers[bucket[0]]
        page = spec.state_bytes if spec.kind == "mamba" else block_size * spec.bytes_per_token
        raw.append((block_size, max(page, 1)))
    max_page = max(page for _, page in raw)
    out: list[tuple[int, int]] = []
    for (bs, page), bucket in zip(raw, buckets, strict=True):
        kind = layers[bucket[0]].kind
        if page == max_page or kind == "mamba":
            out.append((bs, max_page))
        elif max_page % page == 0:
            out.append((bs * (max_page // page), max_page))
        else:  # non-MLA attention pages are padded (unify_kv_cache_spec_page_size)
            out.append((bs, max_page))
    return out


def hybrid_block_size(layers: Sequence[LayerKv], block_size: int) -> int:
    """Attention block size after `_align_hybrid_block_size` (Mamba hybrids only).

    The attention page (block_size × bytes per token) must cover the largest Mamba state page.
    """
    mamba = [layer.state_bytes for layer in layers if layer.kind == "mamba"]
    attn = [layer.bytes_per_token for layer in layers if layer.kind != "mamba" and layer.bytes_per_token]
    if not mamba or not attn:
        return block_size
    per_token = attn[0]
    aligned = KERNEL_BLOCK_ALIGNMENT * math.ceil(max(mamba) / (KERNEL_BLOCK_ALIGNMENT * per_token))
    return max(block_size, aligned)


_GROUPS: Memo[tuple[KvGroup, ...]] = {}


def build_groups(layers: Sequence[LayerKv], block_size: int, rules: VllmRules) -> tuple[KvGroup, ...]:
    """KV cache groups for the whole model (all stages), as `get_kv_cache_groups` forms them; memoized
    per layer list and rules objects."""
    return memoized(_GROUPS, (layers, rules), (block_size,), lambda: _build_groups(layers, block_size, rules))


def _build_groups(layers: Sequence[LayerKv], block_size: int, rules: VllmRules) -> tuple[KvGroup, ...]:
    specs = [
        layer
        if rules.hybrid_kv_allocator or layer.kind == "mamba"
        else LayerKv(kind="full", stage=layer.stage, bytes_per_token=layer.bytes_per_token)
        for layer in layers
    ]
    keyed: dict[tuple[str, int, int, int], list[int]] = {}
    for i, spec in enumerate(specs):
        keyed.setdefault((spec.kind, spec.window, spec.bytes_per_token, spec.state_bytes), []).append(i)
    kinds = {key[0] for key in keyed}
    if len(kinds) == 1 and next(iter(kinds)) == "full":
        # One type (UniformTypeKVCacheSpecs): a single group, each layer with its own page.
        idx = tuple(range(len(specs)))
        page = max(block_size * spec.bytes_per_token for spec in specs)
        return (KvGroup(kind="full", layers=idx, block_size=block_size, page_bytes=page),)
    block_size = hybrid_block_size(specs, block_size)
    buckets = list(keyed.values())
    unified = _page_unify(buckets, specs, block_size)
    sizes = [len(b) for b in buckets]
    group_size = min(sizes)
    if max(sizes) < group_size * 1.5:
        group_size = max(sizes)
    groups: list[KvGroup] = []
    for bucket, (bs, page) in zip(buckets, unified, strict=True):
        spec = specs[bucket[0]]
        n_groups = math.ceil(len(bucket) / group_size)
        for g in range(n_groups):
            members = tuple(bucket[g::n_groups])
            groups.append(
                KvGroup(kind=spec.kind, layers=members, block_size=bs, page_bytes=page, window=spec.window)
            )
    return tuple(groups)


def _stage_bytes_per_block(
    groups: tuple[KvGroup, ...], layers: Sequence[LayerKv], stage: int, uniform: bool
) -> int:
    """Bytes of one pool block on `stage` (`_get_kv_cache_bytes_per_block`)."""
    if uniform:
        group = groups[0]
        return sum(
            group.block_size * layers[i].bytes_per_token for i in group.layers if layers[i].stage == stage
        )
    return max(sum(1 for i in g.layers if layers[i].stage == stage) * g.page_bytes for g in groups)


def _blocks_per_request(
    groups: tuple[KvGroup, ...], max_model_len: int, in_flight_tokens: int, rules: VllmRules
) -> int:
    """Blocks one request of max_model_len takes over all groups (max_memory_usage_bytes / page)."""
    total = 0
    for g in groups:
        if g.kind == "full":
            total += math.ceil(max_model_len / g.block_size)
        elif g.kind == "sliding":
            tokens = min(g.window - 1 + in_flight_tokens, max_model_len)
            total += math.ceil(tokens / g.block_size) + 1
        elif g.kind == "chunked":
            tokens = min(g.window + in_flight_tokens, max_model_len)
            total += math.ceil(tokens / g.block_size)
        else:  # mamba: one state page, two under mamba_cache_mode align
            total += MAMBA_ALIGN_STATE_PAGES if rules.mamba_align_mode else 1
    return total


def uses_model_runner_v2(rules: VllmRules, *, moe: bool, hybrid: bool) -> bool:
    """The release runs the model on Model Runner V2 by default (`VllmRules.model_runner_v2_default`:
    0.32 `VllmConfig.use_v2_model_runner`; 0.25-0.28 kept MoE and hybrid models on the V1 runner)."""
    scope = rules.model_runner_v2_default
    return scope == "all" or (scope == "dense" and not moe and not hybrid)


def in_flight_tokens(rules: VllmRules, max_num_batched_tokens: int, pp: int, *, v2: bool = False) -> int:
    """VllmConfig.max_in_flight_tokens: batches in flight × max_num_batched_tokens.

    0.32 `VllmConfig.max_concurrent_batches` under async scheduling: pp + 1 on Model Runner V2 (`v2`:
    `uses_model_runner_v2`), else 2 at pp = 1 and pp above (the V1 runner runs pp > 1 without async
    scheduling). Releases before async scheduling by default keep one batch's tokens."""
    if not rules.async_scheduling_default:
        return max_num_batched_tokens
    batches = pp + 1 if v2 else 2 if pp == 1 else pp
    return batches * max_num_batched_tokens


def plan_kv(
    layers: Sequence[LayerKv],
    available_bytes: list[float],
    *,
    block_size: int,
    rules: VllmRules,
    max_model_len: int,
    max_num_batched_tokens: int,
    moe: bool,
) -> KvPlan:
    """Blocks, tokens and concurrency for `available_bytes[stage]` of KV memory per stage (`moe`: the
    model routes experts, which kept it off Model Runner V2 in 0.25-0.28, `uses_model_runner_v2`;
    hybrid models are told by their linear-attention layers)."""
    groups = build_groups(layers, block_size, rules)
    uniform = len(groups) == 1 and groups[0].kind == "full"
    pp = len(available_bytes)
    bpb = tuple(_stage_bytes_per_block(groups, layers, s, uniform) for s in range(pp))
    stage_blocks = tuple(
        max(int(avail // b), 0) if b > 0 else 0 for avail, b in zip(available_bytes, bpb, strict=True)
    )
    num_blocks = min(stage_blocks)
    limiting = stage_blocks.index(num_blocks)
    hybrid = any(layer.kind == "mamba" for layer in layers)
    v2 = uses_model_runner_v2(rules, moe=moe, hybrid=hybrid)
    flight = in_flight_tokens(rules, max_num_batched_tokens, pp, v2=v2)
    per_request = _blocks_per_request(groups, max_model_len, flight, rules)
    min_block = min(g.block_size for g in groups)
    if rules.tokens_report == "blocks" or not rules.hybrid_kv_allocator:
        tokens = num_blocks * min_block
        concurrency = tokens / max_model_len
    else:
        concurrency = num_blocks / per_request if per_request else 0.0
        if rules.tokens_report == "groups_min_block":
            tokens = num_blocks // len(groups) * min_block
        else:
            tokens = int(concurrency * max_model_len)
    full_groups = [g for g in groups if g.kind == "full"] or [g for g in groups if g.kind != "mamba"]
    per_token = (
        sum(bpb[limiting] / g.block_size for g in full_groups)
        if not uniform
        else bpb[limiting] / groups[0].block_size
    )
    return KvPlan(
        groups=groups,
        block_size=min_block,
        bytes_per_block=bpb,
        stage_blocks=stage_blocks,
        num_blocks=num_blocks,
        limiting_stage=limiting,
        blocks_per_request=per_request,
        tokens=tokens,
        max_concurrency=concurrency,
        bytes_per_token=per_token,
        model_runner_v2=v2,
    )


def bytes_for_request(
    plan: KvPlan, stage: int, max_model_len: int, rules: VllmRules, max_num_batched_tokens: int, pp: int
) -> int:
    """KV bytes `stage` needs for one request of `max_model_len` (`_max_memory_usage_bytes_from_groups`):
    the start-up check (`check_enough_kv_cache_memory`) and `estimate_max_model_len` read the same
    per-request bound as the concurrency, with the plan's runner (`KvPlan.model_runner_v2`)."""
    flight = in_flight_tokens(rules, max_num_batched_tokens, pp, v2=plan.model_runner_v2)
    if not rules.hybrid_kv_allocator:
        blocks = math.ceil(max_model_len / plan.block_size)
    else:
        blocks = _blocks_per_request(plan.groups, max_model_len, flight, rules)
    return blocks * plan.bytes_per_block[stage]


def estimate_max_model_len(
    plan: KvPlan,
    stage: int,
    available: float,
    upper: int,
    rules: VllmRules,
    max_num_batched_tokens: int,
    pp: int,
) -> int:
    """Longest max_model_len whose single request fits `available` bytes (`estimate_max_model_len`)."""

    def fits(n: int) -> bool:
        return bytes_for_request(plan, stage, n, rules, max_num_batched_tokens, pp) <= available

    if not fits(1):
        return 0
    lo, hi = 1, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
