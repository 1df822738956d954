"""Architecture limits on parallel degrees, each with the rule's reason.

The rules mirror what the engines enforce at start-up (vLLM's `ModelConfig.verify_with_parallel_config`
and its linear layers' shard checks; Megatron-Core's `TransformerConfig` checks), so that an
infeasible plan can name the rule that blocked it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoparallel.models.spec import ModelSpec


def _shard_unit(model: ModelSpec) -> int:
    """Row-parallel input shards must hold whole quantization groups / blocks."""
    q = model.quantization
    if q is None:
        return 1
    if q.method.value in ("gptq", "awq") and q.group_size > 0:
        return q.group_size
    if q.method.value == "fp8" and q.block_k:
        return q.block_k
    if q.method.value == "modelopt_fp4":
        return q.group_size  # one FP8 scale per 16 input elements: a shard holds whole groups
    # MXFP4 (gpt-oss) quantizes only the routed experts, and vLLM's `Mxfp4MoEMethod.create_weights` pads
    # each rank's expert width ("to hold non-uniform sharded tensor as well as swizzling", round_up to
    # 64-256), so it adds no divisibility rule: gpt-oss (expert width 2880) is served with tp 1, 2, 4, 8.
    return 1


def tp_violations(model: ModelSpec, tp: int, *, expert_parallel: bool = False) -> list[str]:
    """Why tensor-parallel degree `tp` cannot run this model (empty list: it can). With
    `expert_parallel` the routed experts are not split over tp: vLLM's `FusedMoEParallelConfig.make`
    sets the MoE layer's tp_size to 1 under EP (fused_moe/config.py), so each rank holds whole experts
    and only the attention, dense and shared-expert widths split."""
    if tp < 1:
        return [f"tensor-parallel degree must be >= 1, got {tp}"]
    out: list[str] = []
    unit = _shard_unit(model)
    seen: set[tuple[object, ...]] = set()
    for layer in model.layers:
        att, mlp = layer.attention, layer.mlp
        key = (
            att.kind,
            att.num_heads,
            att.num_kv_heads,
            mlp.kind,
            mlp.intermediate_size,
            mlp.shared_intermediate_size,
            att.linear_num_value_heads,
        )
        if key in seen:
            continue
        seen.add(key)
        if att.num_heads % tp:
            out.append(f"tp_divides_heads: {att.num_heads} attention heads are not divisible by tp={tp}")
        if att.kind == "linear":
            if att.linear_num_value_heads % tp or att.num_kv_heads % tp:
                out.append(
                    f"tp_divides_linear_heads: linear-attention heads ({att.num_kv_heads} key, "
                    f"{att.linear_num_value_heads} value) are not divisible by tp={tp}"
                )
        elif att.kind != "mla":
            kv = att.num_kv_heads
            if (tp <= kv and kv % tp) or (tp > kv and tp % kv):
                out.append(
                    f"tp_kv_heads: {kv} KV heads can be neither split evenly nor replicated "
                    f"evenly over tp={tp} (tp must divide {kv} or be a multiple of it)"
                )
        routed_whole = expert_parallel and mlp.kind == "moe"
        widths = [] if routed_whole else [mlp.intermediate_size]
        if mlp.kind == "moe" and mlp.num_shared_experts:
            widths.append(mlp.shared_intermediate_size * mlp.num_shared_experts)
        for width in widths:
            if width % tp or (width // tp) % unit:
                extra = f" into shards of whole {unit}-wide quantization groups" if unit > 1 else ""
                out.append(f"tp_divides_mlp: MLP width {width} cannot be split over tp={tp}{extra}")
    return sorted(set(out))


def pp_violations(model: ModelSpec, pp: int) -> list[str]:
    """Why pipeline degree `pp` cannot run this model (empty list: it can)."""
    if pp < 1:
        return [f"pipeline degree must be >= 1, got {pp}"]
    if pp > model.num_layers:
        return [f"pp_le_layers: pp={pp} exceeds the model's {model.num_layers} decoder layers"]
    return []


def ep_violations(model: ModelSpec, ep: int) -> list[str]:
    """Why expert-parallel degree `ep` cannot run this model (empty list: it can)."""
    if ep < 1:
        return [f"expert-parallel degree must be >= 1, got {ep}"]
    if ep == 1:
        return []
    if not model.is_moe:
        return [f"ep_needs_moe: {model.name} is dense; expert parallelism (ep={ep}) needs MoE layers"]
    if model.num_experts % ep:
        return [f"ep_divides_experts: {model.num_experts} experts are not divisible by ep={ep}"]
    return []


def limit_rules(model: ModelSpec) -> tuple[tuple[str, str], ...]:
    """The rules that constrain this model's parallel degrees, for the model card: (name, reason).

    Kinds are compared by their string values and rules returned as pairs, so that this module needs
    `models.spec` only for types (spec's methods call it: no import cycle).
    """
    rules = [
        _rule(
            name="tp_divides_heads",
            reason=f"tp must divide the {model.num_heads} query heads: each rank owns whole heads",
        ),
        _rule(
            name="pp_le_layers",
            reason=f"pp <= {model.num_layers}: each pipeline stage needs at least one decoder layer",
        ),
    ]
    if not model.is_mla:
        kv = model.num_kv_heads
        rules.append(
            _rule(
                name="tp_kv_heads",
                reason=f"tp must divide the {kv} KV heads or be a multiple of them; above {kv}, "
                "vLLM replicates KV heads so each rank caches ceil(kv/tp) heads",
            )
        )
    else:
        rules.append(
            _rule(
                name="mla_latent_replicated",
                reason="MLA caches one latent per token that every TP rank holds whole: KV per GPU does "
                "not shrink with tp (attention data parallelism avoids the copies)",
            )
        )
    unit = _shard_unit(model)
    rules.append(
        _rule(
            name="tp_divides_mlp",
            reason="tp must split every MLP/expert width evenly"
            + (f" into whole {unit}-wide quantization groups" if unit > 1 else ""),
        )
    )
    if model.is_moe:
        rules.append(
            _rule(
                name="ep_divides_experts",
                reason=f"ep must divide the {model.num_experts} routed experts; in vLLM, EP is a switch and "
                "the EP degree equals tp x dp",
            )
        )
    else:
        rules.append(_rule(name="ep_needs_moe", reason="dense model: expert parallelism does not apply"))
    return tuple(rules)


def _rule(*, name: str, reason: str) -> tuple[str, str]:
    return name, reason
