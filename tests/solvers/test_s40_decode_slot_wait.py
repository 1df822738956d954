"""A disaggregated decode engine admits a transferred request only while fewer than max_num_seqs run,
so at an arrival rate with a TTFT limit its slots queue like an aggregated engine's (perf/slot_queue.py).
Rated at its full-load rate it was loaded to the last request/s, where the wait for a slot has no bound:
Qwen3-8B at 60 req/s planned six decode engines of 256 slots at 10.0 req/s each against a full-load
11.67, charging no wait. Each is now rated at the rate whose wait stays within one of its decode steps
(`roles.decode_slot_room_s`), the prefill budget keeps that step, and the TTFT names the wait."""

from __future__ import annotations

import json

import pytest

from autoparallel.cli import main
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.perf.serving import slot_variability
from autoparallel.perf.slot_queue import slot_wait_s
from autoparallel.solvers.deployment.roles import (
    DECODE_SLOT_WAIT_S,
    build_role_space,
    decode_slot_room_s,
    slot_reserve_s,
)
from autoparallel.solvers.deployment.space import FleetModel
from autoparallel.workload import Serving

RATED = [
    *("plan", "Qwen/Qwen3-8B", "--cluster", "1x8xH100", "--isl", "256", "--osl", "1024"),
    *("--ttft-ms", "300", "--tpot-ms", "25", "--disagg", "on", "--objective", "cost", "--json"),
]


def _plan(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)["deployment"]  # type: ignore[no-any-return]


def test_decode_engines_at_a_rate_are_rated_below_full_load(capsys: pytest.CaptureFixture[str]) -> None:
    d = _plan([*RATED, "--request-rate", "60"], capsys)
    parts = d["ttft_parts_ms"]
    assert 0.0 <= parts["decode_slot_wait"] <= min(e["decode_step_ms"] for e in d["decode"])
    for e in d["decode"]:
        full = e["max_num_seqs"] * e["dp"] / (1024 * e["decode_step_ms"] / 1e3)
        assert 0.5 * full < e["capacity_rps"] < full * (1 - 1e-3)
        assert e["load_rps"] <= e["capacity_rps"] * (1 + 1e-9)


def test_without_a_rate_decode_engines_run_at_full_load(capsys: pytest.CaptureFixture[str]) -> None:
    d = _plan(RATED, capsys)
    assert d["ttft_parts_ms"]["decode_slot_wait"] == 0.0
    for e in d["decode"]:
        full = e["max_num_seqs"] * e["dp"] / (1024 * e["decode_step_ms"] / 1e3)
        assert e["capacity_rps"] == pytest.approx(full, rel=2e-5)  # the JSON keeps 6 digits


@pytest.mark.parametrize("tpot_ms", [25.0, None])
def test_each_decode_rating_holds_its_step_and_wait_to_the_budgets_bound(tpot_ms: float | None) -> None:
    """The role space's float times: at its rated rate a decode engine's slots wait at most what its
    step leaves of its tier's first-step bound (the TPOT limit, or without one the slowest decode
    candidate's step, at the loosest), and at least DECODE_SLOT_WAIT_S (to the bisection's
    precision), the room the prefill budget keeps; its queue is the aggregated one's (slots pooled
    over its ranks, the whole stream's variability)."""
    w = Serving(isl=256, osl=1024, ttft_ms=100.0, tpot_ms=tpot_ms, request_rate=60.0)
    fm = FleetModel(load_model("Qwen/Qwen3-8B"), w)
    rs = build_role_space([fm], Cluster.parse("1x8xH100"))  # TTFT 100 ms: faster first-step tiers
    decode = [
        (e, t, tier)
        for tier in rs.tiers()
        for e, t in zip(tier.space.engines, tier.times, strict=True)
        if e.role == "decode"
    ]
    assert decode and len(rs.tiers()) > 1  # first-step tiers below the loosest bound
    for e, t, tier in decode:
        assert t.slot_queue is not None
        slots, lone, full_cycle, variability = t.slot_queue
        assert slots == e.config.max_num_seqs * e.dp and variability == slot_variability(w, split=True)
        assert lone < full_cycle == pytest.approx(1024 * t.decode_s)
        # every tier's bound, the loosest's the TPOT limit or the slowest decode candidate's step
        bound = tier.decode_step_bound_s[0]
        if not tier.step_tier and tpot_ms is not None:
            assert bound == tpot_ms / 1e3
        room = decode_slot_room_s(w, t.decode_s, bound)
        assert room == max(DECODE_SLOT_WAIT_S, bound - t.decode_s)
        assert t.decode_s <= bound + 1e-6
        assert slot_reserve_s(w) == DECODE_SLOT_WAIT_S == 1e-3
        assert slot_wait_s(t.slot_rps * e.dp, *t.slot_queue) <= room * (1 + 1e-6)
        assert slot_wait_s(t.slot_rps * e.dp * 1.01, *t.slot_queue) > room


def test_a_tight_ttft_at_a_rate_is_served_as_without_the_rate(capsys: pytest.CaptureFixture[str]) -> None:
    """Keeping a whole decode step for the slot wait made TTFT 130 ms at 50 req/s infeasible ("TTFT
    budget -18 ms") where the same deployment serves 80 req/s within it."""
    argv = ["plan", "meta-llama/Llama-3.1-8B-Instruct", "--cluster", "1x8xH100", "--ttft-ms", "130"]
    d = _plan([*argv, "--disagg", "on", "--json", "--request-rate", "50"], capsys)
    assert d["ttft_ms"] <= 130 and d["served_rps"] == pytest.approx(50)


def test_the_no_prefill_reason_names_the_decode_bound_it_took(capsys: pytest.CaptureFixture[str]) -> None:
    """The reason called the TPOT limit the budget takes for the first decode step "the first decode
    step", and printed a budget of -0.3 ms as "-0 ms" (gpt-oss-120b on 8x8xH200, TTFT 100 ms)."""
    argv = ["plan", "openai/gpt-oss-120b", "--cluster", "8x8xH200", "--disagg", "on", "--request-rate", "20"]
    assert main([*argv, "--ttft-ms", "51.8"]) == 1
    err = capsys.readouterr().err
    assert "TTFT budget 0 ms" in err and "-0 ms" not in err
    # the fastest first-step tier's reason (TTFT 100 ms plans since the tiers; it took TPOT 50 ms)
    assert (
        "the first decode step at its bound 2.1 ms (the fastest first-step tier's, within which its "
        "fastest decode engines step), 1 ms for a" in err
    )
