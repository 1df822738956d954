"""The float model of a disaggregated request, against hand-computed numbers."""

from __future__ import annotations

import math

import pytest

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.perf import disagg

H100 = Cluster.parse("2x8xH100")
LLAMA70 = load_model("meta-llama/Llama-3.1-70B")
# Llama-3.1-70B: 80 layers × 8 KV heads × 128 dims × (K, V) × 2 bytes (bf16) = 327,680 bytes per token.
KV_PER_TOKEN = 80 * 8 * 128 * 2 * 2


def test_kv_bytes_per_rank_follow_each_sides_tp() -> None:
    same = disagg.kv_transfer_bytes_per_rank(LLAMA70, "auto", 2048, tp_prefill=8, tp_decode=8)
    assert same == pytest.approx(KV_PER_TOKEN * 2048 / 8)
    # tp2 prefill -> tp8 decode: a P rank sends a quarter of the heads (4x more than a D rank receives)
    mixed = disagg.kv_transfer_bytes_per_rank(LLAMA70, "auto", 2048, tp_prefill=2, tp_decode=8)
    assert mixed == pytest.approx(KV_PER_TOKEN * 2048 / 2)
    fp8 = disagg.kv_transfer_bytes_per_rank(LLAMA70, "fp8", 2048, tp_prefill=2, tp_decode=8)
    assert fp8 == pytest.approx(mixed / 2)


def test_transfer_time_over_nic_and_nvlink() -> None:
    # across nodes: 335,544,320 bytes over one GPU's NIC (50 GB/s × 0.9) + 8 µs = 7.4645 ms
    across = disagg.kv_transfer_s(LLAMA70, H100, "auto", 2048, tp_prefill=2, tp_decode=8, same_node=False)
    assert across == pytest.approx(335_544_320 / 45e9 + 8e-6)
    # inside a node: NVLink 450 GB/s × 0.8 = 360 GB/s: 0.932 ms; tp8 -> tp2 reads from 4 P ranks
    inside = disagg.kv_transfer_s(LLAMA70, H100, "auto", 2048, tp_prefill=8, tp_decode=2, same_node=True)
    assert inside == pytest.approx(335_544_320 / 360e9 + 4 * 3e-6)
    assert inside < across / 7


def test_md1_queue_and_its_inverse() -> None:
    # S = 100 ms at 5 prompts/s: ρ = 0.5, W = 0.5 · 0.1 / (2 · 0.5) = 50 ms
    assert disagg.prefill_wait_s(0.1, 5.0) == pytest.approx(0.05)
    assert disagg.prefill_wait_s(0.1, 10.0) == math.inf
    # budget 150 ms for S = 100 ms: ρ* = 2 · 50 / 200 = 0.5, back to W = 50 ms
    assert disagg.max_prefill_utilisation(0.1, 0.15) == pytest.approx(0.5)
    assert disagg.prefill_capacity_tokens_per_s(0.1, 0.15, 2048) == pytest.approx(2048 * 5.0)
    assert disagg.max_prefill_utilisation(0.1, 0.1) == 0.0
    assert disagg.prefill_capacity_tokens_per_s(0.2, 0.1, 2048) == 0.0


def test_request_adds_up_and_decode_capacity_is_littles_law() -> None:
    r = disagg.disagg_request(
        prefill_s=0.1, prefill_rate_per_rank=5.0, transfer_s=0.0075, decode_s=0.025, overhead_s=0.045
    )
    assert r.ttft_ms == pytest.approx(50 + 100 + 7.5 + 25 + 45)
    assert r.tpot_ms == pytest.approx(25)
    # 64 sequences at 25 ms a step, 512 tokens each: 64 / (512 · 0.025) = 5 requests/s
    assert disagg.decode_capacity_rps(64, 512, 0.025) == pytest.approx(5.0)
