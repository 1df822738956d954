"""vLLM memory rules checked against vLLM's source: RoPE caches per distinct setting, the engine a
release runs on a GPU, batch / CUDA-graph defaults by release, and the non-torch memory eras."""

from __future__ import annotations

from typing import Any

import pytest

from autoparallel.hardware import get_gpu
from autoparallel.memory.serving import vllm_memory
from autoparallel.memory.vllm_config import resolve_batch_defaults
from autoparallel.memory.vllm_profile import (
    capture_sizes,
    cuda_graph_count,
    non_torch_bytes,
    rope_cache_bytes,
)
from autoparallel.memory.vllm_versions import parse_vllm_version, rules_for
from autoparallel.models.parse import spec_from_config
from autoparallel.models.spec import AttentionKind, ModelSpec
from autoparallel.models.zoo import find_entry

GIB = 2**30
H100, B200, T4 = get_gpu("H100"), get_gpu("B200"), get_gpu("T4")


def _rules(text: str, cc: int | None = None) -> Any:
    return rules_for(parse_vllm_version(text, cc))


def _spec(name: str) -> ModelSpec:
    entry = find_entry(name)
    assert entry is not None
    return entry.spec()


def _toy(**extra: Any) -> ModelSpec:
    cfg: dict[str, Any] = {
        "model_type": "llama",
        "hidden_size": 512,
        "intermediate_size": 1024,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": 1000,
        "max_position_embeddings": 4096,
        **extra,
    }
    return spec_from_config(cfg, name="toy")


# ----- RoPE caches ------------------------------------------------------------------------------------


def test_gemma3_global_layers_add_a_linear_scaled_rope_cache() -> None:
    """gemma3.py `Gemma3Attention`: sliding layers a default cache at rope_local_base_freq, global
    layers `rope_scaling` (linear, factor 8) at rope_theta; `LinearScalingRotaryEmbedding` holds
    max_position × factor rows. Before: one 131072-row cache (0.5 GiB missing on V025)."""
    spec = _spec("google/gemma-3-4b-it")
    caches = sorted((c.rotary_dim, c.rows) for c in spec.rope_caches)
    assert caches == [(256, 131072), (256, 131072 * 8)]
    everything = rope_cache_bytes(spec, range(spec.num_layers), 2)
    assert everything == (131072 + 131072 * 8) * 256 * 2
    sliding = [i for i, layer in enumerate(spec.layers) if layer.attention.kind is AttentionKind.SLIDING]
    assert rope_cache_bytes(spec, range(sliding[0], sliding[0] + 1), 2) == 131072 * 256 * 2


def test_rope_cache_rows_follow_the_scaling_type() -> None:
    """`get_rope`: YaRN caches original × factor rows, LongRoPE a short + a long cache, dynamic NTK
    max_position × factor; partial rotary shrinks the rotary dim; one cache shared by all layers."""
    yarn = _toy(rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048})
    assert [(c.rotary_dim, c.rows, len(c.layers)) for c in yarn.rope_caches] == [(128, 8192, 2)]
    longrope = _toy(
        rope_scaling={
            "type": "longrope",
            "short_factor": [1.0] * 64,
            "long_factor": [2.0] * 64,
            "original_max_position_embeddings": 1024,
        }
    )
    assert [c.rows for c in longrope.rope_caches] == [1024 + 4096]
    partial = _toy(partial_rotary_factor=0.5)
    assert [c.rotary_dim for c in partial.rope_caches] == [64]
    plain = _toy()
    assert rope_cache_bytes(plain, range(2), 2) == 4096 * 128 * 2


# ----- the engine a release runs on a GPU -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cc", "engine"),
    [
        ("0.8.5.post1", 75, "v0"),  # Unsloth T4 notebooks: "Falling back to V0"
        ("0.10.1", 70, "v0"),
        ("0.8.5", 89, "v1"),
        ("0.8.5", None, "v1"),
        ("0.11.0", 75, "v1"),  # V0 removed in 0.11
        ("0.8.5 (V1)", 75, "v1"),  # named engine wins
        ("0.7.3", 90, "v0"),
    ],
)
def test_v1_falls_back_to_v0_below_compute_capability_8(text: str, cc: int | None, engine: str) -> None:
    assert parse_vllm_version(text, cc).engine == engine


def test_a_t4_on_0_8_takes_the_v0_rules() -> None:
    spec = _spec("meta-llama/Llama-3.2-3B-Instruct")
    rep = vllm_memory(spec, T4, vllm_version="0.8.5.post1", max_model_len=2048, dtype="float16")
    assert rep.vllm_version.endswith("(V0)")
    assert rep.max_num_batched_tokens == 2048  # V0: no chunked prefill below 32K


# ----- batch and CUDA-graph defaults by release -------------------------------------------------------


def test_large_gpus_default_to_1024_sequences_from_0_9() -> None:
    """PR #17885 (0.9.0): >= 70 GiB non-A100 → 1024 seqs; 0.8.4-0.8.x H100/H200 by name (PR #16158)."""
    assert resolve_batch_defaults(_rules("0.9.2"), H100, 40960, None, None) == (1024, 8192)
    assert resolve_batch_defaults(_rules("0.8.5"), H100, 40960, None, None)[0] == 1024
    assert resolve_batch_defaults(_rules("0.8.5"), B200, 40960, None, None)[0] == 256
    assert resolve_batch_defaults(_rules("0.9.2"), get_gpu("A100"), 40960, None, None)[0] == 256


def test_160_gib_batch_tier_and_blackwell_capture_limit_arrive_in_0_28() -> None:
    assert resolve_batch_defaults(_rules("0.10.1"), B200, 8192, None, None) == (1024, 8192)
    assert resolve_batch_defaults(_rules("0.28"), B200, 8192, None, None) == (1024, 16384)
    sizes_512, sizes_1024 = len(capture_sizes(1024, 16384, False)), len(capture_sizes(1024, 16384, True))
    assert cuda_graph_count(_rules("0.27"), 1024, 16384, blackwell=True) == 2 * sizes_512
    assert cuda_graph_count(_rules("0.28"), 1024, 16384, blackwell=True) == 2 * sizes_1024


def test_full_decode_graphs_only_from_0_11() -> None:
    """PR #25444: FULL_AND_PIECEWISE became the default in 0.11; PIECEWISE only before."""
    sizes = len(capture_sizes(512, 8192, False))  # all of them <= max_num_seqs
    assert cuda_graph_count(_rules("0.10.2"), 512, 8192, blackwell=False) == sizes
    assert cuda_graph_count(_rules("0.11.0"), 512, 8192, blackwell=False) == 2 * sizes


# ----- non-torch memory eras --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gib"),
    [
        ("0.6.4", 0.35),  # V0 counts total − free − allocated: the CUDA context (V008/V009)
        ("0.6.5", 0.10),  # memory_profiling: only what grows during the profile
        ("V1 ~0.7.1", 0.35),  # early V1: the same subtraction (PR #19312 later)
        ("0.9.2", 0.35),
        ("0.10.1", 0.10),
        ("0.19", 0.25),
    ],
)
def test_non_torch_memory_follows_the_profiling_era(text: str, gib: float) -> None:
    assert non_torch_bytes(_rules(text), 1, 1, True) / GIB == pytest.approx(gib)
