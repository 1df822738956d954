"""A prefill engine's data-parallel ranks are one queue: its API server sends each request to the least
loaded rank (vLLM `DPLBAsyncMPClient`), so a prompt waits only while every rank is busy (M/G/n, Allen and
Cunneen). Taken as n separate M/G/1 queues, DeepSeek-V3's 16-rank prefill engine on 16x8xH100 was
charged 1,726 ms of queueing at ρ 0.955 where the pooled ranks wait about 90, and rated that low."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main
from autoparallel.perf import disagg


def test_erlang_c_and_the_pooled_wait_have_their_textbook_values() -> None:
    assert disagg.erlang_c(1, 0.7) == 0.7
    assert disagg.erlang_c(2, 0.5) == pytest.approx(1 / 3)  # M/M/2 at a = 1
    # M/M/2, S = 1 s, 0.5 prompts/s per rank: Wq = C / (n μ − λ) = (1/3) / (2 − 1)
    assert disagg.prefill_wait_s(1.0, 0.5, 1.0, ranks=2) == pytest.approx(1 / 3)
    # one rank: Pollaczek-Khinchine, unchanged
    assert disagg.prefill_wait_s(0.1, 5.0, 2.25) == pytest.approx(0.1625)
    assert disagg.erlang_c(64, 0.5) < 1e-6 and disagg.erlang_c(64, 0.999) > 0.9


@pytest.mark.parametrize("cv2", [0.0, 0.5, 2.25])
def test_pooled_ranks_carry_more_within_the_same_budget(cv2: float) -> None:
    alone = disagg.max_prefill_utilisation(0.1, 0.4, cv2)
    pooled = disagg.max_prefill_utilisation(0.1, 0.4, cv2, ranks=16)
    assert alone < pooled < 1.0
    assert 0.1 + disagg.prefill_wait_s(0.1, pooled / 0.1, cv2, 16) == pytest.approx(0.4, rel=1e-9)
    assert disagg.max_prefill_utilisation(0.1, 0.4, cv2, ranks=1) == alone
    # Little's law per rank: ρ in prefill plus λ · W waiting
    rho = 0.9
    wait = disagg.prefill_wait_s(0.1, rho / 0.1, cv2, 4)
    assert disagg.prefill_in_system(rho, cv2, 4) == pytest.approx(rho + rho / 0.1 * wait)
    assert disagg.prefill_in_system(rho, cv2, 4) < disagg.prefill_in_system(rho, cv2)


def test_a_data_parallel_prefill_engine_waits_as_one_queue(capsys: pytest.CaptureFixture[str]) -> None:
    """Qwen3-30B-A3B on 2x8xH100, TTFT ≤ 600 ms: a tp1 ep4 prefill engine of 4 ranks runs at ρ 0.995,
    its prompts waiting 479 ms; four M/G/1 ranks at that load would wait at least their M/D/1 1.8 s."""
    argv = ["plan", "Qwen/Qwen3-30B-A3B", "--cluster", "2x8xH100", "--disagg", "on", "--ttft-ms", "600"]
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["deployment"]
    pooled = [e for e in d["prefill"] if e["dp"] > 1]
    assert pooled, d["prefill"]
    wait_ms = d["ttft_parts_ms"]["prefill_wait"]
    for e in pooled:
        s = e["prefill_ms"] / 1e3
        rho = e["load_rps"] / e["dp"] * s
        one_rank_floor_ms = rho * s / (2 * (1 - rho)) * 1e3  # M/D/1: no M/G/1 rank waits less
        assert wait_ms < one_rank_floor_ms
    assert d["ttft_ms"] <= 600
