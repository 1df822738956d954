"""compressed-tensors weight-only INT checkpoints as vLLM 0.32's `CompressedTensorsWNA16` takes them
(models/parse_quant.py): channel-wise scales (`strategy: channel`) and zero points (`symmetric: false`)."""

from __future__ import annotations

from typing import Any

import pytest

from autoparallel.models.parse_quant import quant_from_config
from autoparallel.models.quant import QuantMethod, QuantSpec


def _parse(**weights: Any) -> QuantSpec | None:
    base = {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "dynamic": False}
    qc = {
        "quant_method": "compressed-tensors",
        "format": "pack-quantized",
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {**base, **weights}}},
    }
    return quant_from_config({"quantization_config": qc}, "ct")


@pytest.mark.parametrize("bits", [4, 2])
def test_channel_wise_int_weights_are_accepted(bits: int) -> None:
    """`CompressedTensorsWNA16` takes `strategy: channel` (group size -1: one scale per output row)."""
    q = _parse(num_bits=bits, strategy="channel", group_size=None)
    assert q is not None and q.method is QuantMethod.GPTQ and q.bits == bits and q.group_size == -1
    assert q.source.startswith("compressed-tensors:") and "strategy=channel" in q.source
    group = _parse(num_bits=bits)
    assert group is not None and q.bytes_per_weight < group.bytes_per_weight  # fewer scales


def test_asymmetric_int_weights_are_recorded() -> None:
    q = _parse(symmetric=False)
    assert q is not None and not q.symmetric and "asymmetric" in q.source
    sym = _parse()
    assert sym is not None and sym.symmetric and "asymmetric" not in sym.source


def test_eight_bit_channel_stays_int8() -> None:
    q = _parse(num_bits=8, strategy="channel", group_size=None)
    assert q is not None and q.method is QuantMethod.INT8 and q.weight_only
