"""The disaggregated prefill queue with prompts of spread lengths (M/G/1) and the KV bytes a P rank
sends when the decode side holds its own copies (vLLM's NIXL `TpKVTopology`)."""

from __future__ import annotations

import pytest

from autoparallel.models import load_model
from autoparallel.perf import disagg


def test_pollaczek_khinchine_wait_and_its_inverse() -> None:
    # S = 100 ms at 5 prompts/s (ρ = 0.5): M/D/1 waits 50 ms; c² = 1 (M/M/1) doubles it, c² = 2.25 (cv 1.5)
    # gives 0.5 · 0.1 · 3.25 / (2 · 0.5) = 162.5 ms
    assert disagg.prefill_wait_s(0.1, 5.0) == pytest.approx(0.05)
    assert disagg.prefill_wait_s(0.1, 5.0, 1.0) == pytest.approx(0.1)
    assert disagg.prefill_wait_s(0.1, 5.0, 2.25) == pytest.approx(0.1625)
    # the utilisation that keeps queueing + prefill within B is the same formula inverted
    for cv2 in (0.0, 0.5, 2.25, 6.0):
        rho = disagg.max_prefill_utilisation(0.1, 0.4, cv2)
        assert 0.1 + disagg.prefill_wait_s(0.1, rho / 0.1, cv2) == pytest.approx(0.4)
    assert disagg.max_prefill_utilisation(0.1, 0.4, 2.25) < disagg.max_prefill_utilisation(0.1, 0.4)
    assert disagg.prefill_capacity_tokens_per_s(0.1, 0.4, 2048, 2.25) < disagg.prefill_capacity_tokens_per_s(
        0.1, 0.4, 2048
    )


def test_service_spread_is_the_length_spread_for_a_linear_prefill() -> None:
    """Time linear in tokens through 0: c² = the workload's prompt spread whatever the sample; a fixed
    part lowers it; a quadratic part raises it."""
    lengths = [500.0, 1000.0, 2000.0, 4500.0]
    linear = [x * 1e-4 for x in lengths]
    assert disagg.prefill_service_spread(0.2, linear, lengths, 2.25) == pytest.approx((1.0, 2.25))
    fixed = [0.05 + t for t in linear]
    assert disagg.prefill_service_spread(0.25, fixed, lengths, 2.25)[1] < 2.25
    square = [t + (x / 1e4) ** 2 for t, x in zip(linear, lengths, strict=True)]
    assert disagg.prefill_service_spread(0.24, square, lengths, 2.25)[1] > 2.25
    assert disagg.prefill_service_spread(0.2, linear, lengths, 0.0) == (1.0, 0.0)


def test_a_prefill_rank_sends_a_copy_to_every_decode_rank_that_reads_from_it() -> None:
    """DeepSeek-V3 (MLA: the latent whole on every rank) tp1 -> tp4: four D ranks each read the whole
    latent from the one P rank, 4 × 143.9 MB; it was priced at 143.9 MB. Qwen3-30B-A3B (4 KV heads)
    tp1 -> tp8: each of 8 D ranks holds one head, so the P rank sends 8 heads, twice its own 4."""
    dsv3 = load_model("deepseek-ai/DeepSeek-V3")
    one_copy = disagg.kv_received_bytes_per_rank(dsv3, "auto", 2048, tp_decode=4)
    assert one_copy == pytest.approx(143.917056e6)
    sent = disagg.kv_sent_bytes_per_rank(dsv3, "auto", 2048, tp_prefill=1, tp_decode=4)
    assert sent == pytest.approx(4 * one_copy)
    assert disagg.kv_transfer_bytes_per_rank(dsv3, "auto", 2048, tp_prefill=1, tp_decode=4) == pytest.approx(
        575.668224e6
    )
    qwen = load_model("Qwen/Qwen3-30B-A3B")
    own = disagg.kv_received_bytes_per_rank(qwen, "auto", 2048, tp_decode=1)
    head = disagg.kv_received_bytes_per_rank(qwen, "auto", 2048, tp_decode=8)
    assert head == pytest.approx(own / 4)
    assert disagg.kv_sent_bytes_per_rank(qwen, "auto", 2048, tp_prefill=1, tp_decode=8) == pytest.approx(
        2 * own
    )
    # heads that split evenly: the P rank's own bytes (tp2 -> tp4 of 4 heads)
    assert disagg.kv_sent_bytes_per_rank(qwen, "auto", 2048, tp_prefill=2, tp_decode=4) == pytest.approx(
        own / 2
    )
