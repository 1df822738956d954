"""INT8 W8A8 GEMMs at the INT8 tensor-core peak: vLLM 0.32 runs `CompressedTensorsW8A8Int8` through
`apply_int8_linear` (CUTLASS int8 `cutlass_scaled_mm`), twice the BF16 dense rate on A100 / H100."""

from __future__ import annotations

from typing import Any

import pytest

from autoparallel.hardware import Cluster, get_gpu, list_gpus
from autoparallel.models import load_model
from autoparallel.models.parse_quant import quant_from_config
from autoparallel.perf.serving import ReplicaShape
from autoparallel.perf.serving_facts import model_facts
from autoparallel.perf.serving_steps import stage_step_s

_INT8 = {"num_bits": 8, "type": "int", "symmetric": True}
W8A8: dict[str, Any] = {
    "quant_method": "compressed-tensors",
    "format": "int-quantized",
    "config_groups": {
        "group_0": {
            "targets": ["Linear"],
            "weights": {**_INT8, "strategy": "channel", "dynamic": False},
            "input_activations": {**_INT8, "strategy": "token", "dynamic": True},
        }
    },
    "ignore": ["lm_head"],
}


def test_int8_w8a8_prefill_runs_at_the_int8_peak() -> None:
    base = load_model("meta-llama/Llama-3.1-8B")
    int8 = base.model_copy(update={"quantization": quant_from_config({"quantization_config": W8A8}, "q")})
    assert model_facts(int8, None).int8_compute and not model_facts(base, None).int8_compute
    shape = ReplicaShape(1, 1, 1, None, "auto", False)
    prefill = dict(decode_seqs=0, context_tokens=0, prefill_tokens=16384, prefill_context=1024)
    for name in ("A100-SXM-80G", "H100"):
        cluster = Cluster.parse(f"1x1x{name}")
        t8, mem8 = stage_step_s(int8, cluster, shape, **prefill)
        t16, mem16 = stage_step_s(base, cluster, shape, **prefill)
        assert not mem8 and not mem16  # compute-bound
        assert t8 < 0.8 * t16, name


def test_int8_peaks_are_the_datasheets_dense_figures() -> None:
    assert get_gpu("A100-SXM-80G").int8_tops == 624.0
    assert get_gpu("H100").int8_tops == get_gpu("H200").int8_tops == 1979.0
    assert get_gpu("L40S").int8_tops == 733.0 and get_gpu("L4").int8_tops == pytest.approx(242.5)
    assert get_gpu("A10").int8_tops == 250.0 and get_gpu("T4").int8_tops == 130.0
    assert get_gpu("V100-SXM2-32G").int8_tops is None  # Volta tensor cores: FP16 only
    for gpu in list_gpus():
        covered = {f.strip() for s in gpu.sources for f in s.partition(": ")[0].split(",")}
        if gpu.int8_tops is not None:
            assert "int8_tops" in covered, gpu.name
            assert gpu.int8_tops >= gpu.bf16_tflops, gpu.name


def test_int8_weight_only_runs_at_the_16_bit_peak() -> None:
    """Without `input_activations` a compressed-tensors INT8 checkpoint is W8A16 (vLLM
    `CompressedTensorsWNA16`): 1-byte weights, 16-bit GEMMs."""
    w8a16 = {**W8A8, "config_groups": {"group_0": {**W8A8["config_groups"]["group_0"]}}}
    del w8a16["config_groups"]["group_0"]["input_activations"]
    q = quant_from_config({"quantization_config": w8a16}, "q")
    assert q is not None and q.weight_only and q.bytes_per_weight < 1.01
    int8 = load_model("meta-llama/Llama-3.1-8B").model_copy(update={"quantization": q})
    assert not model_facts(int8, None).int8_compute
