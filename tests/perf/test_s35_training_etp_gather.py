"""Megatron-Core's alltoall token dispatcher all-gathers the routed token copies over the expert
tensor-parallel group after the EP all-to-all and reduce-scatters them on combine
(megatron/core/transformer/moe/token_dispatcher.py, `MoEAlltoAllTokenDispatcher.dispatch_postprocess`
/ `combine_preprocess`). That traffic was never priced: DeepSeek-V3 on 32x8xH100 planned tp=8 (etp=8),
ep=1 at 14.5 s a step with no expert communication at all."""

from __future__ import annotations

from functools import cache

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.models.spec import LayerSpec, MlpKind, ModelSpec
from autoparallel.perf import comm
from autoparallel.perf.training import training_perf
from autoparallel.perf.training_layer import layer_time_breakdown

DSV3 = "deepseek-ai/DeepSeek-V3"
QWEN_MOE = "Qwen/Qwen3-30B-A3B"


@cache
def _model(name: str) -> ModelSpec:
    return load_model(name)


def _moe_layer(model: ModelSpec) -> LayerSpec:
    return next(layer for layer in model.layers if layer.mlp.kind is MlpKind.MOE)


def _gather_s(model: ModelSpec, cluster: Cluster, cfg: TrainingConfig, etp: int, passes: int) -> float:
    """All-gather + reduce-scatter per pass of the copies on a rank after the gather: its sequence
    shard's tokens (b·s/tp) × k × etp h-vectors in bf16, over the etp ranks."""
    layer = _moe_layer(model)
    copies = cfg.micro_batch * cfg.seq_len / cfg.tp * layer.mlp.experts_per_token * etp
    buffer = copies * model.hidden_size * 2.0
    link = comm.group_link(cluster, etp)
    return passes * (comm.all_gather_s(buffer, etp, link) + comm.reduce_scatter_s(buffer, etp, link))


def test_expert_tensor_parallelism_without_expert_parallelism_pays_its_gather() -> None:
    """tp = etp = 8, ep = 1: no all-to-all, but the expert-TP all-gather + reduce-scatter forward,
    backward and in the recomputed forward."""
    model, cluster = _model(DSV3), Cluster.parse("32x8xH100")
    cfg = TrainingConfig(tp=8, pp=16, dp=2, ep=1, micro_batch=4, global_batch=1024, seq_len=4096)
    for recompute, passes in ((Recompute.FULL, 3), (Recompute.NONE, 2)):
        part = layer_time_breakdown(model, _moe_layer(model), cluster, cfg, recompute)
        expected = _gather_s(model, cluster, cfg, 8, passes)
        assert expected > 0.0
        assert abs(part.ep_comm_s - expected) <= 1e-9 * expected, (recompute, part.ep_comm_s, expected)
    # dense layers and etp = 1 gather nothing
    dense = next(layer for layer in model.layers if layer.mlp.kind is MlpKind.DENSE)
    assert layer_time_breakdown(model, dense, cluster, cfg, Recompute.FULL).ep_comm_s == 0.0
    one = cfg.model_copy(update={"etp": 1})
    assert layer_time_breakdown(model, _moe_layer(model), cluster, one, Recompute.FULL).ep_comm_s == 0.0


def test_with_expert_parallelism_the_all_to_all_carries_the_shard_and_the_gather_the_rest() -> None:
    """ep = 4, etp = tp = 2: the all-to-all sends the rank's own b·s/tp·k copies (the gather comes
    after it), and the gather is charged on top, also under --overlap-moe-expert-parallel-comm, whose
    combined 1F1B keeps it in the experts' compute node."""
    model, cluster = _model(QWEN_MOE), Cluster.parse("2x8xH100")
    cfg = TrainingConfig(tp=2, pp=2, dp=4, ep=4, micro_batch=1, global_batch=64, seq_len=4096)
    layer = _moe_layer(model)
    sent = cfg.seq_len / cfg.tp * layer.mlp.experts_per_token * model.hidden_size * 2.0
    a2a = 2 * 2 * comm.all_to_all_s(sent, 4, comm.all_to_all_link(cluster, 4, stride=2))
    expected = a2a + _gather_s(model, cluster, cfg, 2, 2)
    part = layer_time_breakdown(model, layer, cluster, cfg, Recompute.NONE)
    assert abs(part.ep_comm_s - expected) <= 1e-9 * expected, (part.ep_comm_s, expected)
    overlapped = layer_time_breakdown(
        model, layer, cluster, cfg.model_copy(update={"ep_overlap": True}), Recompute.NONE
    )
    assert overlapped.ep_comm_s >= _gather_s(model, cluster, cfg, 2, 2) > 0.0


def test_the_hunters_deepseek_plan_now_loses_to_expert_parallelism_with_etp_1() -> None:
    """The old plan (tp=8, ep=1: 14.5 s) now carries its gather and is slower than tp=4, ep=8, etp=1,
    the layout the planner picks instead."""
    model, cluster = _model(DSV3), Cluster.parse("32x8xH100")
    common = {
        "pp": 16,
        "global_batch": 1024,
        "seq_len": 4096,
        "zero": ZeroStage.DISTRIBUTED_OPTIMIZER,
        "recompute": Recompute.FULL,
        "layers_per_stage": (4,) * 15 + (1,),
    }
    old = training_perf(model, cluster, TrainingConfig(tp=8, dp=2, ep=1, micro_batch=4, **common))
    ep = training_perf(model, cluster, TrainingConfig(tp=4, dp=4, ep=8, etp=1, micro_batch=1, **common))
    assert old.ep_comm_s > 5.0
    assert ep.step_time_s < old.step_time_s
