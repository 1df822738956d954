"""The shipped zoo: coverage, unique names, and agreement with the published counts."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

from autoparallel.models import QuantMethod, list_models, load_model
from autoparallel.models.zoo import ZooEntry, find_entry

ENTRIES = list_models()

_REQUIRED_FAMILIES = {
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen3",
    "qwen3_moe",
    "qwen3_next",
    "deepseek_v2",
    "deepseek_v3",
    "kimi_k2",
    "llama4_text",
    "gpt_oss",
    "gemma2",
    "gemma3_text",
    "phi3",
    "glm4_moe",
    "gpt2",
    "gpt_neox",
    "opt",
    "bloom",
}
_REQUIRED_IDS = [
    "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-13b-hf",
    "meta-llama/Llama-2-70b-hf",
    "meta-llama/Meta-Llama-3-8B",
    "meta-llama/Meta-Llama-3-70B",
    "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B",
    "meta-llama/Llama-3.1-405B",
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.2-3B",
    "meta-llama/Llama-3.3-70B-Instruct",
    "mistralai/Mistral-7B-v0.3",
    "mistralai/Mixtral-8x7B-v0.1",
    "mistralai/Mixtral-8x22B-v0.1",
    "Qwen/Qwen2.5-7B",
    "Qwen/Qwen2.5-72B",
    "Qwen/Qwen3-0.6B",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-14B",
    "Qwen/Qwen3-32B",
    "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen3-235B-A22B",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct",
    "Qwen/Qwen3-Next-80B-A3B-Instruct",
    "deepseek-ai/DeepSeek-V2-Lite",
    "deepseek-ai/DeepSeek-V3",
    "deepseek-ai/DeepSeek-R1",
    "moonshotai/Kimi-K2-Instruct",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
    "openai/gpt-oss-20b",
    "openai/gpt-oss-120b",
    "google/gemma-2-9b",
    "google/gemma-3-27b-it",
    "microsoft/phi-4",
    "microsoft/Phi-3-mini-4k-instruct",
    "zai-org/GLM-4.5",
    "gpt2",
    "gpt2-xl",
    "EleutherAI/gpt-neox-20b",
    "facebook/opt-66b",
    "bigscience/bloom",
    "TheBloke/Llama-2-13B-chat-GPTQ",
    "Qwen/Qwen3-32B-FP8",
    "nvidia/Llama-3.1-70B-Instruct-FP8",
    "Orion-zhen/QwQ-32B-Preview-AWQ",
]


def test_zoo_size_families_and_required_models() -> None:
    assert len(ENTRIES) >= 32
    assert {e.family for e in ENTRIES} >= _REQUIRED_FAMILIES
    missing = [i for i in _REQUIRED_IDS if find_entry(i) is None]
    assert not missing


def test_ids_and_aliases_are_unique() -> None:
    names = [n.lower() for e in ENTRIES for n in (e.id, *e.aliases)]
    assert len(names) == len(set(names))


def test_quantized_examples_present() -> None:
    methods = {e.spec().quantization.method for e in ENTRIES if e.spec().quantization is not None}  # type: ignore[union-attr]
    assert {QuantMethod.AWQ, QuantMethod.GPTQ, QuantMethod.FP8, QuantMethod.MXFP4} <= methods


def _unit(published: int) -> int:
    """Place value of the last significant digit of a published figure (8.03B -> 0.01B)."""
    unit = 1
    while published % (unit * 10) == 0:
        unit *= 10
    return unit


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_counts_match_published(entry: ZooEntry) -> None:
    """Within 0.5% of the published figure, or within its precision (one unit of its last digit: '3.3B' covers
    3.3-3.4B) for figures published with 1-2 significant digits; > 0.1% must be explained in the notes."""
    spec = entry.spec()
    assert entry.family == spec.model_type
    assert entry.source
    total, active = entry.comparable_counts(spec)
    for ours, published in ((total, entry.published_total_params), (active, entry.published_active_params)):
        if not published:
            continue
        deviation = abs(ours / published - 1)
        assert deviation <= 0.005 or abs(ours - published) < _unit(published), (entry.id, ours, published)
        if deviation > 0.001:
            assert entry.notes, f"{entry.id}: {deviation:.2%} off the published count needs a note"
    assert entry.published_total_params


def test_deepseek_v3_groups() -> None:
    spec = load_model("deepseek-ai/DeepSeek-V3")
    assert spec.total_params - spec.params.mtp == pytest.approx(671e9, rel=1e-3)
    assert spec.params.mtp == pytest.approx(11.5e9, rel=0.015)
    assert spec.kv_bytes_per_token(2.0) == 61 * 576 * 2


def test_kv_bytes_llama_70b() -> None:
    spec = load_model("meta-llama/Llama-3.1-70B")
    assert spec.kv_bytes_per_token(2.0) == 2 * 80 * 8 * 128 * 2
    assert spec.kv_bytes_per_token_by_kind(1.0) == {"full": 80 * 8 * 256}
    assert spec.tp_violations(8) == [] and spec.tp_violations(3)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_spec_is_consistent(entry: ZooEntry) -> None:
    spec = entry.spec()
    assert spec.total_params == spec.params.total
    assert 0 < spec.active_params <= spec.total_params
    assert math.isfinite(spec.weight_bytes()) and spec.weight_bytes() > 0
    assert spec.limit_rules()
    assert entry.spec() is spec  # cached


def test_loading_every_zoo_model_is_fast() -> None:
    start = time.perf_counter()
    for entry in ENTRIES:
        load_model(entry.id).kv_bytes_per_token()
    assert (time.perf_counter() - start) / len(ENTRIES) < 0.05


def test_zoo_path_imports_neither_transformers_nor_torch() -> None:
    code = (
        "import sys; from autoparallel.models import load_model; load_model('deepseek-ai/DeepSeek-V3'); "
        "load_model('google/gemma-3-27b-it'); "
        "bad = [m for m in ('transformers', 'torch') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("model_id", ["meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.1-8B"])
def test_the_lm_head_is_counted_once_tied_or_not(model_id: str) -> None:
    """A tied head runs its GEMM with the embedding's matrix: forward FLOPs per token dropped it
    (Llama-3.2-1B 1.95e9 where 2 x matmul weights + head is 2.47e9), and serving priced it that way."""
    spec = load_model(model_id)
    matmul = spec.active_params - spec.embedding_params - spec.lm_head_params
    assert spec.forward_flops_per_token(0) == pytest.approx(2.0 * matmul + spec.lm_head_flops)
    assert spec.lm_head_flops == 2.0 * spec.vocab_size * spec.hidden_size
