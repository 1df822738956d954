"""`autoparallel models` (the zoo) and `autoparallel model <source>` (one model's card)."""

from __future__ import annotations

import argparse
from typing import Any

from autoparallel.cli._output import strict_json
from autoparallel.models.loader import load_model
from autoparallel.models.spec import AttentionKind, ModelSpec, ParamGroups
from autoparallel.models.zoo import find_entry, list_models
from autoparallel.perf.engine_support import ENGINE_NAMES, engine_model_problem

_GIB = 2**30
_TP_RANGE = range(1, 65)


def add_models_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `autoparallel models [--json]`."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "models", help="list the shipped model zoo", description="List the models of the shipped zoo."
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_models)
    return p


def add_model_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `autoparallel model <source> [--json]`."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "model",
        help="show one model's card: parameters, KV cache, weights, parallelism limits",
        description="Show a model card. SOURCE is a zoo id or alias, a directory with config.json, a "
        "config.json path, or a Hugging Face hub id.",
    )
    p.add_argument("source", help="zoo id/alias, local directory or config.json, or hub id")
    p.add_argument("--json", action="store_true", help="print JSON instead of a card")
    p.set_defaults(func=cmd_model)
    return p


# ----- models -------------------------------------------------------------------------------------
def _quant_label(spec: ModelSpec) -> str:
    q = spec.quantization
    if q is None:
        return {2: "bf16/fp16", 4: "fp32"}.get(spec.dtype_bytes, f"{spec.dtype_bytes}B")
    if q.method.value in ("gptq", "awq"):
        return f"{q.method.value} int{q.bits} g{q.group_size}"
    if q.method.value == "fp8" and q.block_n:
        return f"fp8 block {q.block_n}x{q.block_k}"
    if q.method.value == "modelopt_fp4":
        return f"nvfp4 g{q.group_size}"
    return q.method.value


def cmd_models(args: argparse.Namespace) -> int:
    """Print the zoo: id, family, total/active parameters, quantization."""
    rows: list[dict[str, Any]] = []
    for entry in list_models():
        spec = entry.spec()
        rows.append(
            {
                "id": entry.id,
                "family": entry.family,
                "total_params": spec.served_params.total,  # as `model` reports it: MTP apart
                "active_params": spec.active_params,
                "quantization": _quant_label(spec),
                "aliases": list(entry.aliases),
            }
        )
    if getattr(args, "json", False):
        print(strict_json(rows))
        return 0
    width = max(len(r["id"]) for r in rows)
    print(f"{'id':<{width}}  {'family':<12} {'total':>9} {'active':>9}  quant")
    for r in rows:
        total, active = _b(r["total_params"]), _b(r["active_params"])
        print(f"{r['id']:<{width}}  {r['family']:<12} {total:>9} {active:>9}  {r['quantization']}")
    print(f"{len(rows)} models; aliases (Instruct/chat/base variants) resolve to these ids.")
    return 0


# ----- model --------------------------------------------------------------------------------------
def _b(n: float) -> str:
    """Parameters in human units (B / M)."""
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def model_card(spec: ModelSpec) -> dict[str, Any]:
    """Everything `autoparallel model` reports, as plain data."""
    groups = spec.params
    by_group = {name: getattr(groups, name) for name in ParamGroups.model_fields}
    gib_by_group = {
        name: spec.weight_bytes(ParamGroups(**{name: count})) / _GIB for name, count in by_group.items()
    }
    kinds: dict[str, int] = {}
    for layer in spec.layers:
        kinds[layer.attention.kind.value] = kinds.get(layer.attention.kind.value, 0) + 1
    windows = sorted(
        {
            layer.attention.window_tokens
            for layer in spec.layers
            if layer.attention.kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED)
            and layer.attention.window_tokens
        }
    )
    valid_tp = [tp for tp in _TP_RANGE if not spec.tp_violations(tp)]
    invalid_tp = {str(tp): spec.tp_violations(tp) for tp in (2, 4, 8, 16, 32, 64) if tp not in valid_tp}
    entry = find_entry(spec.name)
    card: dict[str, Any] = {
        "name": spec.name,
        "model_type": spec.model_type,
        "architecture": spec.architecture,
        "engines": {e: engine_model_problem(e, spec) or "runs" for e in ("vllm", "sglang", "trtllm")},
        "num_layers": spec.num_layers,
        "hidden_size": spec.hidden_size,
        "num_heads": spec.num_heads,
        "num_kv_heads": spec.num_kv_heads,
        "head_dim": spec.head_dim,
        "vocab_size": spec.vocab_size,
        "max_position_embeddings": spec.max_position_embeddings,
        "vllm_default_max_model_len": spec.vllm_default_max_model_len,
        "layers_by_attention_kind": kinds,
        "window_tokens": windows,
        "num_experts": spec.num_experts,
        "experts_per_token": spec.experts_per_token,
        "mtp_layers": spec.mtp_layers,
        # The main model, as publishers count it and engines serve it; multi-token-prediction modules
        # (DeepSeek-V3, GLM-4.5) are reported apart: they run only for speculative decoding or MTP training.
        "total_params": spec.served_params.total,
        "mtp_params": spec.mtp_params,
        "total_params_with_mtp": spec.total_params,
        "active_params": spec.active_params,
        "params_by_group": by_group,
        "weight_gib_by_group": gib_by_group,
        "weight_gib": spec.weight_bytes(spec.served_params) / _GIB,
        "weight_gib_with_mtp": spec.weight_bytes() / _GIB,
        "dtype_bytes": spec.dtype_bytes,
        "quantization": None if spec.quantization is None else spec.quantization.model_dump(mode="json"),
        "kv_bytes_per_token": {
            "bf16": spec.kv_bytes_per_token_by_kind(2.0),
            "fp8": spec.kv_bytes_per_token_by_kind(1.0),
        },
        "kv_bytes_per_token_total": {
            "bf16": spec.kv_bytes_per_token(2.0),
            "fp8": spec.kv_bytes_per_token(1.0),
        },
        "linear_state_bytes_per_sequence": spec.state_bytes_per_sequence(),
        "limits": [{"name": r.name, "reason": r.reason} for r in spec.limit_rules()],
        "valid_tp": valid_tp,
        "invalid_tp_reasons": invalid_tp,
        "published_total_params": spec.published_total_params,
        "published_active_params": spec.published_active_params,
        "notes": spec.notes,
    }
    if entry is not None and entry.id == spec.name:
        dt, da = entry.deviations()
        card["published_basis"] = {
            "total_excludes": list(entry.total_excludes),
            "active_excludes": list(entry.active_excludes),
            "source": entry.source,
        }
        card["published_deviation"] = {"total": dt, "active": da}
    return card


def _default_len_note(card: dict[str, Any]) -> str:
    """Where vLLM serves a shorter context than the limit without `--max-model-len` (LongRoPE)."""
    default = card["vllm_default_max_model_len"]
    if default == card["max_position_embeddings"]:
        return ""
    return f" (vLLM's max_model_len without --max-model-len: {default})"


def _print_card(card: dict[str, Any]) -> None:
    kinds = ", ".join(f"{n} {k}" for k, n in card["layers_by_attention_kind"].items())
    window = f" (window {', '.join(str(w) for w in card['window_tokens'])})" if card["window_tokens"] else ""
    print(f"{card['name']}  [{card['model_type']}, {card['architecture'] or 'no architecture named'}]")
    print(
        f"  {card['num_layers']} layers: {kinds}{window}; hidden {card['hidden_size']}, "
        f"{card['num_heads']} heads / {card['num_kv_heads']} KV heads x {card['head_dim']}; "
        f"vocab {card['vocab_size']}; context {card['max_position_embeddings']}" + _default_len_note(card)
    )
    if card["num_experts"]:
        print(f"  MoE: {card['num_experts']} routed experts, top-{card['experts_per_token']}")
    if card["mtp_layers"]:
        print(f"  MTP modules: {card['mtp_layers']}")
    q = card["quantization"]
    mtp_gib = card["weight_gib_with_mtp"] - card["weight_gib"]
    print(
        f"  weights: {card['weight_gib']:.2f} GiB ({'quantized: ' + q['source'] if q else 'unquantized'}, "
        f"{card['dtype_bytes']} bytes per unquantized weight)"
        + (f"; MTP modules {mtp_gib:.2f} GiB more, loaded for speculative decoding only" if mtp_gib else "")
    )
    if q and q.get("kv_cache_dtype"):
        print(
            f"  KV cache: the checkpoint declares {q['kv_cache_dtype']}, which vLLM takes for "
            "--kv-cache-dtype auto"
        )
    print("\n  parameters by group            count        share   GiB")
    total = card["total_params_with_mtp"]
    for name, count in card["params_by_group"].items():
        if count:
            gib = card["weight_gib_by_group"][name]
            print(f"    {name:<22} {count:>18,} {100 * count / total:6.2f}%  {gib:7.2f}")
    if card["mtp_params"]:
        print(f"    {'total without MTP':<22} {card['total_params']:>18,}")
        print(f"    {'total with MTP':<22} {total:>18,}")
    else:
        print(f"    {'total':<22} {total:>18,}")
    print(f"    {'active per token':<22} {card['active_params']:>18,}")
    pub_t, pub_a = card["published_total_params"], card["published_active_params"]
    dev = card.get("published_deviation", {})
    if pub_t:
        extra = f" ({dev['total'] * 100:+.2f}% on the same basis)" if dev.get("total") is not None else ""
        print(f"    published total {_b(pub_t)}{extra}")
    if pub_a:
        extra = f" ({dev['active'] * 100:+.2f}% on the same basis)" if dev.get("active") is not None else ""
        print(f"    published active {_b(pub_a)}{extra}")
    print("\n  KV cache per token (all layers, no TP split)   bf16        fp8")
    for kind, b16 in card["kv_bytes_per_token"]["bf16"].items():
        print(f"    {kind:<44} {b16:>9,.0f} B {card['kv_bytes_per_token']['fp8'][kind]:>9,.0f} B")
    print(
        f"    {'total':<44} {card['kv_bytes_per_token_total']['bf16']:>9,.0f} B "
        f"{card['kv_bytes_per_token_total']['fp8']:>9,.0f} B"
    )
    if card["linear_state_bytes_per_sequence"]:
        print(f"    linear-attention state per sequence: {card['linear_state_bytes_per_sequence']:,.0f} B")
    print("\n  limits")
    for rule in card["limits"]:
        print(f"    {rule['name']}: {rule['reason']}")
    print(f"  valid tp (1..64): {', '.join(str(t) for t in card['valid_tp'])}")
    for tp, reasons in card["invalid_tp_reasons"].items():
        print(f"    tp={tp}: {reasons[0]}")
    runs = [ENGINE_NAMES[e] for e, why in card["engines"].items() if why == "runs"]
    print(f"  serving engines that load it: {', '.join(runs) or 'none'}")
    for why in (why for why in card["engines"].values() if why != "runs"):
        print(f"    {why}")
    if card["notes"]:
        print(f"\n  notes: {card['notes']}")


def cmd_model(args: argparse.Namespace) -> int:
    """Print one model's card (or its JSON)."""
    spec = load_model(args.source)
    card = model_card(spec)
    if getattr(args, "json", False):
        print(strict_json(card))
    else:
        _print_card(card)
    return 0
