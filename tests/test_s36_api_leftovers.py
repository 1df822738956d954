"""Copied objects reach every API entry validated: vllm_memory's GPU, a sweep's Cluster, and
TrainingOptions knobs that allow no value (world_sizes=() was read as no restriction)."""

import math

import pytest

import autoparallel as ap
from autoparallel.errors import InputError
from autoparallel.solvers.training.space import TrainingOptions


def test_vllm_memory_validates_a_copied_gpu() -> None:
    gpu = ap.get_gpu("H100").model_copy(update={"memory_gib": math.nan})
    with pytest.raises(InputError, match="gpu"):
        ap.vllm_memory("Qwen/Qwen3-8B", gpu)


def test_a_sweep_refuses_a_copied_cluster_out_of_its_rules() -> None:
    c = ap.Cluster.parse("1x8xH100")
    bad = c.model_copy(update={"pools": (c.pools[0].model_copy(update={"gpus_per_node": 9}),)})
    with pytest.raises(InputError, match="9 GPUs per node"):
        ap.sweep(models=["Qwen/Qwen3-8B"], clusters=[bad], executor="serial")


@pytest.mark.parametrize("knob", ["world_sizes", "micro_batch_values", "zero_stages", "recompute_modes"])
def test_training_options_refuse_a_knob_allowing_no_value(knob: str) -> None:
    with pytest.raises(ValueError, match="allows no value"):
        TrainingOptions(**{knob: ()})
