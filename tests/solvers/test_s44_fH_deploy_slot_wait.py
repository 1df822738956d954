"""The whole-cluster deployment's TTFT at an arrival rate counts the wait for a free slot, limit or not.

`plan meta-llama/Llama-3.1-8B --cluster 8xH100 --isl 1000 --osl 200 --request-rate 158` (no --ttft-ms)
said "TTFT 212 ms: full load's with the waits at that load" for the 8 x tp1 engines, max_num_seqs 414,
each at 19.75 of its 19.90 req/s: the slot wait was counted only with a TTFT limit
(`decoder.slot_queue` read `Serving.slot_rated`), though the same engine planned on its own at that
rate waits 1,679 ms (TTFT 1,891 ms). The limit now only decides whether the engines are rated by the
wait; without it an engine loaded to its full-load rate (a goodput plan short of the rate) waits without
bound, which the text says and JSON writes as null with why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel import api
from autoparallel.cli import main
from autoparallel.fleet import SATURATED_WHY, fleet_of_one, solve_fleet, ttft_text
from autoparallel.solvers.deployment import DeployedEngine
from autoparallel.workload import Serving

MODEL = "meta-llama/Llama-3.1-8B"


def _engine(rate: float, ttft_ms: float | None = None) -> DeployedEngine:
    w = Serving(isl=1000, osl=200, request_rate=rate, ttft_ms=ttft_ms)
    plan = solve_fleet(fleet_of_one(MODEL, w), "8xH100", objective="goodput")
    (engine,) = plan.deployment.engines
    return engine


def test_the_deployment_ttft_at_a_rate_counts_the_slot_wait_without_a_limit() -> None:
    e = _engine(158)
    assert (e.replicas, e.tp, e.max_num_seqs) == (8, 1, 414)
    # the same engine planned on its own at its share of the rate (one GPU, 158 / 8 req/s)
    alone = api.evaluate(
        MODEL, "1xH100", e.config, Serving(isl=1000, osl=200, request_rate=158 / 8), compare=False
    )
    assert alone.perf.slot_wait_ms > 1000
    assert e.queue_ms == pytest.approx(alone.perf.slot_wait_ms, rel=0.05)
    assert e.ttft_ms == pytest.approx(alone.perf.ttft_ms, rel=0.05)  # was 212 ms
    # a TTFT limit loose enough to rate the engines above the rate changes nothing but the rating
    limited = _engine(158, ttft_ms=5000)
    assert limited.ttft_ms == pytest.approx(e.ttft_ms, rel=1e-9)
    assert "its queue waits (1679 ms) included" in ttft_text(e.ttft_ms, e.queue_ms)


def test_a_saturated_deployment_is_unbounded_and_its_json_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"models:\n  - model: {MODEL}\n    request_rate: 160\n    isl: 1000\n    osl: 200\n")
    assert main(["plan", "--fleet", str(fleet), "--cluster", "8xH100"]) == 0
    text = capsys.readouterr().out
    assert "TTFT unbounded: the engines run saturated" in text
    assert "with the waits at that load" not in text
    assert main(["plan", "--fleet", str(fleet), "--cluster", "8xH100", "--json"]) == 0
    out = capsys.readouterr().out
    assert "Infinity" not in out and "NaN" not in out
    (engine,) = json.loads(out)["deployment"]["engines"]
    assert engine["ttft_ms"] is None and engine["queue_ms"] is None
    assert engine["null_reasons"] == {"ttft_ms": SATURATED_WHY, "queue_ms": SATURATED_WHY}


def test_without_a_rate_the_text_says_full_load_and_no_wait() -> None:
    assert ttft_text(212.3, 0.0) == "full-load TTFT 212 ms, no queue wait at that load"


def test_float_noise_is_no_queue_wait() -> None:
    """`TTFT 193 ms at that load, its queue waits (2.2e-16 ms) included`."""
    from autoparallel.fleet import ttft_text

    assert ttft_text(193.0, 2.2e-16) == "full-load TTFT 193 ms, no queue wait at that load"
    assert ttft_text(193.0, 0.5) == "TTFT 193 ms at that load, its queue waits (0.5 ms) included"
