"""Cross-check: our analytic parameter counts equal transformers' modules built on the meta device.

For every zoo model whose modeling code transformers ships, the model is instantiated from the zoo
config with `torch.device("meta")` (no memory, no weights) and `sum(p.numel())` must equal our total
exactly, after these documented adjustments:

- `mtp` is subtracted: transformers' DeepSeek-V3 / GLM-4.5 classes drop the MTP layer on load.
- `e_score_correction_bias` (DeepSeek-V3, Kimi-K2, GLM-4.5 routers) is a buffer in transformers but a
  checkpoint tensor that vLLM loads as a parameter: buffers of that name are added to HF's count.
- `quantization_config` is dropped before building: counts are of the unquantized model.
- Kimi-K2 (`model_type: kimi_k2`, remote code only) is built with transformers' DeepSeek-V3 class,
  whose shapes it shares.
"""

from __future__ import annotations

import copy
import time
from types import ModuleType
from typing import Any

import pytest

from autoparallel.models.zoo import ZooEntry, list_models

_MULTIMODAL = {"gemma3", "llama4", "qwen2_5_vl", "mistral3", "mllama"}
_TYPE_OVERRIDE = {"kimi_k2": "deepseek_v3"}
_BUDGET_S = 60.0


@pytest.fixture(scope="module")
def hf() -> tuple[ModuleType, ModuleType]:
    """torch and transformers, imported by the first test that runs here rather than at collection,
    where they cost every xdist worker about 3 s of CPU though one of them runs these tests."""
    torch = pytest.importorskip("torch", reason="torch is needed for the meta-device cross-check")
    transformers = pytest.importorskip("transformers", reason="transformers is needed for the cross-check")
    return torch, transformers


def _hf_config(transformers: ModuleType, entry: ZooEntry) -> Any:
    cfg = {
        k: copy.deepcopy(v)
        for k, v in entry.config.items()
        if k not in ("quantization_config", "architectures")
    }
    model_type = _TYPE_OVERRIDE.get(cfg.pop("model_type"), entry.config["model_type"])
    return transformers.AutoConfig.for_model(model_type, **cfg)


def _hf_count(torch: ModuleType, transformers: ModuleType, entry: ZooEntry) -> int:
    config = _hf_config(transformers, entry)
    auto = (
        transformers.AutoModelForImageTextToText
        if config.model_type in _MULTIMODAL
        else transformers.AutoModelForCausalLM
    )
    with torch.device("meta"):
        model = auto.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias"))
    return params + buffers


def _supported(transformers: ModuleType, entry: ZooEntry) -> bool:
    model_type = _TYPE_OVERRIDE.get(entry.config["model_type"], entry.config["model_type"])
    return model_type in transformers.CONFIG_MAPPING


@pytest.mark.slow
@pytest.mark.parametrize("entry", [e for e in list_models()], ids=lambda e: e.id)
def test_total_matches_transformers_meta_model(hf: tuple[ModuleType, ModuleType], entry: ZooEntry) -> None:
    torch, transformers = hf
    if not _supported(transformers, entry):
        pytest.skip(
            f"transformers {transformers.__version__} has no modeling code for {entry.config['model_type']!r}"
        )
    spec = entry.spec()
    start = time.perf_counter()
    theirs = _hf_count(torch, transformers, entry)
    elapsed = time.perf_counter() - start
    ours = spec.total_params - spec.params.mtp
    assert ours == theirs, f"{entry.id}: ours {ours:,} vs transformers {theirs:,} (diff {ours - theirs:+,})"
    assert elapsed < _BUDGET_S
