"""Under fp16 Megatron keeps fp16 gradients under its distributed optimizer
(`accumulate_allreduce_grads_in_fp32` is set for bf16 only): the memory model priced 2 bytes a
parameter there while the data-parallel sync moved 4."""

from __future__ import annotations

from autoparallel.configs import TrainingConfig, ZeroStage
from autoparallel.hardware import Cluster
from autoparallel.memory.training_states import _state_of_params
from autoparallel.models import load_model
from autoparallel.perf.training_schedule import dp_sync_time_s


def _sync(precision: str, zero: ZeroStage) -> float:
    model = load_model("meta-llama/Llama-3.1-8B")
    cfg = TrainingConfig(tp=1, pp=1, dp=16, global_batch=16, zero=zero, precision=precision)
    layers = range(len(model.layers))
    return dp_sync_time_s(model, Cluster.parse("2x8xH100"), cfg, 0, layers, overlap_window_s=0.0)


def test_fp16_dist_moves_the_gradients_it_keeps() -> None:
    dist = ZeroStage.DISTRIBUTED_OPTIMIZER
    cfg = TrainingConfig(dp=16, global_batch=16, zero=dist, precision="fp16")
    assert _state_of_params(1.0, 16, cfg).gradients_bytes == 2.0  # the memory model's fp16 gradients
    # the reduce-scatter moves what the memory holds: fp16's 2 bytes, the all-gather the same 2 either way
    assert _sync("fp16", dist) < _sync("bf16", dist)
    assert abs(_sync("fp16", dist) - _sync("bf16", ZeroStage.OPTIMIZER)) < 1e-12
