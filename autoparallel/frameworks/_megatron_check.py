"""Consistency rules Megatron-LM enforces at start-up, applied to an argument dict without Megatron.

Each rule cites where Megatron checks it (megatron/training/arguments.py `validate_args`,
megatron/core/transformer/transformer_config.py `__post_init__`, megatron/core/parallel_state.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoparallel.models.spec import ModelSpec


def _int(args: dict[str, object], flag: str, default: int | None = None) -> int | None:
    value = args.get(flag, default)
    return None if value is None else int(str(value))


def _layout_stages(layout: str) -> list[str]:
    """Megatron's PipelineParallelLayerLayout.parse_str_to_list, as strings of layer letters."""
    text = layout.replace(",", "")
    text = re.sub(r"\(([^)]+)\)\*(\d+)", lambda m: m.group(1) * int(m.group(2)), text)
    text = re.sub(r"(.)\*(\d+)", lambda m: m.group(1) * int(m.group(2)), text)
    return text.split("|")


def consistency_problems(args: dict[str, object], model: ModelSpec, world: int) -> list[str]:
    """Every rule `args` breaks for `model` on `world` GPUs, one sentence each (empty: consistent)."""
    problems: list[str] = []
    tp = _int(args, "--tensor-model-parallel-size", 1) or 1
    pp = _int(args, "--pipeline-model-parallel-size", 1) or 1
    cp = _int(args, "--context-parallel-size", 1) or 1
    model_size = tp * pp * cp
    # arguments.py: world size divisible by tp * pp * cp; the rest is data parallel.
    if world % model_size:
        problems.append(f"world size {world} is not divisible by tp x pp x cp = {model_size}")
        return problems
    dp = world // model_size
    problems += _batch_problems(args, dp)
    problems += _layer_problems(args, model, pp)
    problems += _head_problems(args, model, tp)
    problems += _expert_problems(args, model, world, tp, pp)
    seq = _int(args, "--seq-length")
    if seq is not None and cp > 1 and seq % (2 * cp):
        problems.append(f"--seq-length {seq} is not a multiple of 2 x context-parallel-size = {2 * cp}")
    max_pos = _int(args, "--max-position-embeddings")
    if seq is not None and max_pos is not None and max_pos < seq:
        problems.append(f"--max-position-embeddings {max_pos} is below --seq-length {seq}")
    if args.get("--sequence-parallel") and tp == 1:
        problems.append("--sequence-parallel with tp=1: Megatron disables it (it splits activations over tp)")
    return problems


def _batch_problems(args: dict[str, object], dp: int) -> list[str]:
    micro = _int(args, "--micro-batch-size")
    glob = _int(args, "--global-batch-size")
    if micro is None or glob is None:
        return ["--micro-batch-size and --global-batch-size must both be set"]
    if glob % (micro * dp):
        return [f"--global-batch-size {glob} is not a multiple of micro-batch {micro} x data-parallel {dp}"]
    return []


def _layer_problems(args: dict[str, object], model: ModelSpec, pp: int) -> list[str]:
    layers = _int(args, "--num-layers")
    if layers != model.num_layers:
        return [f"--num-layers {layers} differs from the model's {model.num_layers} layers"]
    layout = args.get("--pipeline-model-parallel-layout")
    if layout is not None:
        stages = _layout_stages(str(layout))
        out = []
        if len(stages) % pp:
            out.append(f"pipeline layout has {len(stages)} stages, not a multiple of pp={pp}")
        count = sum(s.count("t") for s in stages)
        if count != layers:
            out.append(f"pipeline layout holds {count} decoder layers, the model has {layers}")
        if not stages[0].startswith("E") or not stages[-1].endswith("L"):
            out.append("pipeline layout must start with E (embedding) and end with L (loss)")
        return out
    first = _int(args, "--decoder-first-pipeline-num-layers")
    last = _int(args, "--decoder-last-pipeline-num-layers")
    vp = _int(args, "--num-virtual-stages-per-pipeline-rank", 1) or 1
    per_chunk = _int(args, "--num-layers-per-virtual-pipeline-stage")
    if first is None and last is None:
        # arguments.py: "Number of layers should be divisible by the pipeline-model-parallel size".
        if layers % pp:
            return [f"{layers} layers are not divisible by pp={pp}; set first/last stage layers or a layout"]
        if per_chunk is not None and (layers // pp) % per_chunk:
            return [
                f"{layers // pp} layers per stage are not divisible by {per_chunk} layers per virtual stage"
            ]
        return []
    # transformer_config.py "Uneven PP": the middle stages share the rest evenly.
    middle_layers = layers - (first or 0) - (last or 0)
    middle_stages = pp - (first is not None) - (last is not None)
    if bool(middle_layers) != bool(middle_stages) or (middle_stages and middle_layers % middle_stages):
        return [f"{middle_layers} middle layers do not split evenly over {middle_stages} middle stages"]
    out = []
    for name, n in (("first", first), ("last", last)):
        if n is not None and n % vp:
            out.append(f"{name}-stage layers {n} not divisible by virtual stages {vp}")
    if middle_stages and (middle_layers // middle_stages) % vp:
        out.append(
            f"middle-stage layers {middle_layers // middle_stages} not divisible by virtual stages {vp}"
        )
    return out


def _head_problems(args: dict[str, object], model: ModelSpec, tp: int) -> list[str]:
    out = []
    heads = _int(args, "--num-attention-heads")
    if heads is None or heads % tp:
        out.append(f"--num-attention-heads {heads} is not divisible by tp={tp}")
    groups = _int(args, "--num-query-groups")
    # transformer_config.py: query groups are split over tp, or replicated when tp is a multiple of them.
    if args.get("--group-query-attention") and groups is not None and groups % tp and tp % groups:
        out.append(f"--num-query-groups {groups} must be a multiple or a divisor of tp={tp}")
    if heads is not None and heads != model.num_heads:
        out.append(f"--num-attention-heads {heads} differs from the model's {model.num_heads}")
    return out


def _expert_problems(args: dict[str, object], model: ModelSpec, world: int, tp: int, pp: int) -> list[str]:
    experts = _int(args, "--num-experts")
    ep = _int(args, "--expert-model-parallel-size", 1) or 1
    etp = _int(args, "--expert-tensor-parallel-size", tp) or tp
    out = []
    if ep > 1 and experts is None:
        out.append("--expert-model-parallel-size > 1 needs --num-experts")
    if experts is not None and experts % ep:
        out.append(f"--num-experts {experts} is not divisible by expert-model-parallel-size {ep}")
    if experts is not None and experts != model.num_experts:
        out.append(f"--num-experts {experts} differs from the model's {model.num_experts}")
    # parallel_state.py: the expert grid etp x ep x pp must tile the world.
    if world % (etp * ep * pp):
        out.append(f"world size {world} is not divisible by expert-tp x ep x pp = {etp * ep * pp}")
    return out
