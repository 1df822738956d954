"""Sliding-window KV admission under pipeline parallelism follows vLLM's batches in flight.

vLLM 0.32 `config/vllm.py` `VllmConfig.max_concurrent_batches`: pp + 1 under async scheduling on Model
Runner V2 (both defaults in 0.32), pp on the V1 runner; `max_in_flight_tokens` = that ×
max_num_batched_tokens; `v1/kv_cache_interface.py` `SlidingWindowSpec.max_admission_blocks_per_request`
= cdiv(min(window − 1 + in flight, max_model_len), block) + 1, which both the concurrency
(`get_max_concurrency_for_kv_cache_config`) and the start-up check (`check_enough_kv_cache_memory`)
read. Releases: V2 by default for dense models from 0.25 (PR #44443), for all models from 0.29
(PR #53183)."""

from __future__ import annotations

import math

import pytest

from autoparallel.memory import vllm_kv
from autoparallel.memory.serving import vllm_memory
from autoparallel.memory.vllm_versions import VllmRules, parse_vllm_version, rules_for

GEMMA = "google/gemma-3-27b-it"  # 62 layers, 5 sliding (window 1024) : 1 full, dense
WINDOW = 1024
BLOCK = 16


def _rules(text: str) -> VllmRules:
    return rules_for(parse_vllm_version(text))


@pytest.mark.parametrize(
    ("version", "moe", "hybrid", "v2"),
    [
        ("0.24", False, False, False),
        ("0.25", False, False, True),
        ("0.28", True, False, False),
        ("0.28", False, True, False),
        ("0.29", True, True, True),
        ("0.32", True, False, True),
    ],
)
def test_the_runner_follows_the_release_and_the_model(
    version: str, moe: bool, hybrid: bool, v2: bool
) -> None:
    assert vllm_kv.uses_model_runner_v2(_rules(version), moe=moe, hybrid=hybrid) is v2


def test_batches_in_flight_are_pp_plus_one_on_model_runner_v2() -> None:
    rules = _rules("0.32")
    in_flight_tokens = vllm_kv.in_flight_tokens
    assert in_flight_tokens(rules, 8192, 1, v2=True) == 2 * 8192
    assert in_flight_tokens(rules, 8192, 2, v2=True) == 3 * 8192
    assert in_flight_tokens(rules, 8192, 4, v2=True) == 5 * 8192
    # the V1 runner (MoE on 0.25-0.28) keeps pp batches, and async scheduling off keeps one
    assert in_flight_tokens(rules, 8192, 2, v2=False) == 2 * 8192
    assert in_flight_tokens(_rules("0.24"), 8192, 2) == 8192


def _blocks_per_request(report_mml: int, in_flight: int, groups: int) -> int:
    full = math.ceil(report_mml / BLOCK)
    sliding = math.ceil(min(WINDOW - 1 + in_flight, report_mml) / BLOCK) + 1
    return full + (groups - 1) * sliding


def test_gemma3_pp2_concurrency_counts_three_batches_in_flight() -> None:
    # `autoparallel memory google/gemma-3-27b-it --gpu H100 --pp 2 --max-model-len 32768`
    r = vllm_memory(GEMMA, "H100", pp=2, max_model_len=32768)
    assert r.max_num_batched_tokens == 8192 and r.kv_cache_groups == 7
    want = r.num_gpu_blocks / _blocks_per_request(32768, 3 * 8192, r.kv_cache_groups)
    assert r.max_concurrency == pytest.approx(want)
    assert r.max_concurrency == pytest.approx(5.80, abs=0.01)  # was 7.87x with two batches
    # 0.24 had no async scheduling by default: one batch's tokens, as before
    old = vllm_memory(GEMMA, "H100", pp=2, max_model_len=32768, vllm_version="0.24")
    assert old.max_concurrency == pytest.approx(
        old.num_gpu_blocks / _blocks_per_request(32768, 8192, old.kv_cache_groups)
    )


def test_the_start_up_check_near_the_edge_follows() -> None:
    # one 131072-token request needs 8192 full + 6 × 1601 sliding blocks = 17798 (10.86 GiB), not
    # 8192 + 6 × 1089 = 14726 (8.99 GiB): at 0.52 utilization the 9.57 GiB do not hold it
    r = vllm_memory(GEMMA, "H100", pp=2, max_model_len=131072, gpu_memory_utilization=0.52)
    assert not r.fits
    assert (
        "max_model_len 131072, 10.86 GiB of KV cache is needed per GPU, more than the 9.57 GiB"
        in (r.problems[0])
    )
    assert vllm_memory(GEMMA, "H100", pp=2, max_model_len=131072, gpu_memory_utilization=0.54).fits
