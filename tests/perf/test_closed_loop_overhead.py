"""A capped client (`vllm bench serve --max-concurrency`) holds its slot for a request's whole life, the
per-request overhead outside the GPU included (`limited_request_func`: `async with semaphore: await
request_func(...)`), so C clients complete C / (client-seen e2e) requests a second (Little's law).
The steady state (`perf.serving.closed_loop_rates`, used by `perf_at_batch`, the planner's tables and
the accuracy harness) and the replay (`serving_replay.rank_steps`' `loop`) both keep the overhead in
the cycle. And the largest CUDA-graph batch of the speed side follows the memory side's release rule."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

import autoparallel as ap
import autoparallel.perf.serving_load as sl
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.memory.vllm_profile import capture_sizes, cuda_graph_count
from autoparallel.memory.vllm_versions import parse_vllm_version, rules_for
from autoparallel.perf import serving as perf
from autoparallel.perf.serving import StepTimes, closed_loop_rates
from autoparallel.perf.serving_steps import vllm_graph_max_batch


def _times(ttft_s: float, step_s: float) -> StepTimes:
    return StepTimes(
        step_s=step_s, decode_s=step_s, prefill_s=ttft_s, prompt_s=ttft_s, ttft_s=ttft_s, memory_bound=True
    )


def _little(ttft_ms: float, tpot_ms: float, clients: int, osl: int) -> float:
    """Tokens/s of `clients` slots each cycling through TTFT + (osl − 1) · TPOT."""
    return clients * osl / ((ttft_ms + (osl - 1) * tpot_ms) / 1e3)


def test_closed_loop_rates_keeps_the_overhead_in_the_cycle() -> None:
    flat = lambda b: _times(0.1, 0.01)  # noqa: E731  (e = 0.13 s whatever the batch)
    # The cap binds: the engine holds 16 · 0.13 / 0.18 of the 16, tokens/s 16 · 4 / 0.18, no queue.
    loop = closed_loop_rates(flat, clients=16, limit=16, osl=4, overhead_s=0.05)
    assert loop.batch == pytest.approx(16 * 0.13 / 0.18)
    assert loop.tokens_per_s == pytest.approx(16 * 4 / 0.18)
    assert loop.ttft_s == pytest.approx(0.15) and loop.queue_s == 0.0
    # max_num_seqs 8 binds: X = 8 / 0.13 requests/s; the 16 − 8 − X · 0.05 neither running nor in
    # their overhead queue, so the slot's cycle (e + overhead + queue) is 16 / X again.
    full = closed_loop_rates(flat, clients=16, limit=8, osl=4, overhead_s=0.05)
    x = 8 / 0.13
    assert full.batch == 8 and full.tokens_per_s == pytest.approx(x * 4)
    assert full.queue_s == pytest.approx((16 - 8 - x * 0.05) / x)
    assert 0.13 + 0.05 + full.queue_s == pytest.approx(16 / x)
    # The engine's batch is the fixed point b = C · e(b) / (e(b) + overhead) when e grows with b.
    rising = lambda b: _times(0.05 + 0.002 * b, 0.01 + 0.001 * b)  # noqa: E731
    grown = closed_loop_rates(rising, clients=32, limit=32, osl=8, overhead_s=0.05)
    e = rising(grown.batch).ttft_s + 7 * rising(grown.batch).step_s
    assert grown.batch == pytest.approx(32 * e / (e + 0.05), rel=1e-6)


@pytest.mark.parametrize("model", ["Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-8B"])
@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_short_outputs_obey_littles_law_with_the_overhead(model: str, engine: str) -> None:
    """isl 256 / osl 4 / 16 clients: the steady state printed 315 tokens/s (SGLang, Qwen3-30B-A3B)
    where its own TTFT and TPOT give 255, the replay 592 where its own give 413."""
    work = ap.Serving(isl=256, osl=4, concurrency=16, num_prompts=1000)
    r = ap.evaluate(model, "1xH100", ap.ServingConfig(), work, compare=False, engine=engine)
    p, b = r.perf, r.benchmark
    assert b is not None
    assert p.output_tokens_per_s == pytest.approx(_little(p.ttft_ms, p.tpot_ms, 16, 4), rel=0.02)
    assert b.output_tokens_per_s == pytest.approx(_little(b.mean_ttft_ms, b.mean_tpot_ms, 16, 4), rel=0.05)


@pytest.mark.parametrize("model", ["Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-8B"])
@pytest.mark.parametrize("engine", ["vllm", "trtllm"])
def test_steady_state_and_replay_agree_on_spread_lengths(model: str, engine: str) -> None:
    work = ap.Serving(isl=256, osl=4, concurrency=16, num_prompts=1000, isl_cv=0.5, osl_cv=0.5)
    r = ap.evaluate(model, "1xH100", ap.ServingConfig(), work, compare=False, engine=engine)
    assert r.benchmark is not None
    assert r.perf.output_tokens_per_s == pytest.approx(r.benchmark.output_tokens_per_s, rel=0.15)


def test_the_capped_client_sends_the_overhead_after_a_finish() -> None:
    finish = np.array([3.0, 1.0, 4.0, 2.0])
    assert sl._send_times(finish, 2, np.zeros(4), 0.5).tolist() == [0.0, 0.0, 1.5, 2.5]
    assert sl._send_times(finish, 2, np.array([0.5, 1.0, 2.0, 6.0]), 0.5).tolist() == [0.5, 1.0, 2.0, 6.0]


def test_the_replay_releases_each_request_the_overhead_after_a_finish() -> None:
    """One client, fixed lengths: each request reaches the engine `overhead` after the previous one's
    last token, so the run lasts n · (engine time + overhead) and TTFT is one request's alone."""
    work = ap.Serving(isl=256, osl=4, concurrency=1, num_prompts=20)
    r = ap.evaluate("Qwen/Qwen3-8B", "1xH100", ap.ServingConfig(), work, compare=False)
    b = r.benchmark
    assert b is not None
    overhead = perf.efficiency_for(get_gpu("H100-SXM"), "vllm").request_overhead_s
    e2e_s = (b.mean_ttft_ms + 3 * b.mean_tpot_ms) / 1e3
    assert b.duration_s == pytest.approx(20 * e2e_s, rel=1e-6)
    assert b.duration_s > 20 * overhead + 20 * (e2e_s - overhead) * 0.999


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_the_planner_tables_take_the_same_closed_loop(engine: str) -> None:
    """The planner's table entries (vLLM: `space.replica_perf`; SGLang: `space._engine_entry`) price a
    capped client as `evaluate` does: the decoder re-checks the plan's TTFT, TPOT and tokens/s against
    the float model of the whole workload (InternalError otherwise)."""
    work = ap.Serving(isl=256, osl=4, concurrency=16)
    options = ap.ServingOptions(engines=(engine,), max_num_seqs=(8, 16, 32), enforce_eager=(False,))
    plan = ap.solve("Qwen/Qwen3-8B", "1xH100", work, options=options)
    p = plan.perf
    assert plan.engine == engine
    assert p.output_tokens_per_s == pytest.approx(_little(p.ttft_ms, p.tpot_ms, 16, 4), rel=0.02)


def test_the_accuracy_harness_prices_capped_rows_by_the_same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    acc = importlib.import_module("benchmarks.serving_accuracy")
    seen: list[dict[str, Any]] = []
    real = acc.closed_loop_rates

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(acc, "closed_loop_rates", spy)
    row = {
        "row_id": "T1",
        "notes": "",
        "model": "Qwen/Qwen3-8B",
        "quantization": "bf16/native",
        "gpu_type": "H100-SXM-80GB",
        "engine": "vLLM",
        "engine_version": "v0.11.0",
        "benchmark_type": "online serving",
        "num_gpus": "1",
        "tp": "1",
        "pp": "1",
        "ep": "",
        "dp": "",
        "dp_attention": "",
        "isl": "233",
        "osl": "221",
        "dataset": "ShareGPT",
        "num_prompts": "100",
        "request_rate": "inf",
        "max_concurrency": "4",
        "output_tok_s_total": "500",
        "mean_tpot_ms": "7.4",
        "mean_ttft_ms": "64",
    }
    if acc.kind_of(row) != "concurrency-capped":
        pytest.skip("the harness reads this row as another kind")
    out = {r.what: r.predicted for r in acc.predict(row)}
    assert len(seen) == 1 and seen[0]["clients"] == 4
    overhead = perf.efficiency_for(get_gpu("H100-SXM"), "vllm").request_overhead_s
    assert seen[0]["overhead_s"] == overhead
    assert out["output tok/s"] == pytest.approx(_little(out["TTFT ms"], out["TPOT ms"], 4, 221), rel=1e-9)


@pytest.mark.parametrize(("version", "largest"), [("0.19", 512), ("0.27", 512), ("0.32", 1024)])
def test_blackwell_graph_reach_follows_the_release_rule(
    version: str, largest: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B200 at max_num_seqs 1024: memory (`cuda_graph_count`) captured to 512 before 0.28 while the
    speed side ran decode batches to 1,024 in graphs."""
    b200 = get_gpu("B200")
    rules = rules_for(parse_vllm_version(version))
    tokens = 16384
    assert vllm_graph_max_batch(1024, tokens, b200, version) == largest
    # The memory side: as many graphs as the sizes up to `largest` (piecewise, and FULL ones up to
    # max_num_seqs where the release captures them).
    sizes = [s for s in capture_sizes(1024, tokens, blackwell=True) if s <= largest]
    full = [s for s in sizes if s <= 1024] if rules.full_cuda_graphs else []
    assert cuda_graph_count(rules, 1024, tokens, True) == len(sizes) + len(full)
    assert sizes[-1] == largest
    # The callers pass the release: the steady state and the replay.
    seen: dict[str, object] = {}
    real = perf.perf_at_batch

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen["steady"] = kwargs["graph_max_batch"]
        return real(*args, **kwargs)

    monkeypatch.setattr(perf, "perf_at_batch", spy)
    cfg = ap.ServingConfig(max_num_seqs=1024, max_num_batched_tokens=tokens)
    cluster = Cluster.parse("1x1xB200")
    from autoparallel.models import load_model

    model = load_model("Qwen/Qwen3-8B")
    work = ap.Serving(isl=256, osl=64, num_prompts=8)
    perf.evaluate_serving(model, cluster, cfg, work, vllm_version=version)

    def record(*args: object, **kwargs: object) -> object:
        seen["replay"] = kwargs["graph_max_batch"]
        raise StopIteration

    monkeypatch.setattr(sl, "simulate_benchmark", record)
    with pytest.raises(StopIteration):
        sl.run_benchmark(model, cluster, cfg, work, vllm_version=version)
    assert seen == {"steady": largest, "replay": largest}
