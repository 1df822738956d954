"""The finite-benchmark replay (perf/serving_load.py): N prompts at once, scheduler, KV, tail."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import autoparallel.perf.serving_load as sl
import autoparallel.perf.serving_replay as sr
from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError
from autoparallel.hardware import Cluster
from autoparallel.models import ModelSpec, load_model
from autoparallel.perf.serving import evaluate_serving
from autoparallel.perf.serving_load import (
    arrival_times,
    draw_lengths,
    run_benchmark,
    simulate_benchmark,
    weighted_percentiles,
)
from autoparallel.workload import Serving

H100 = Cluster.parse("1x1xH100")
CFG = ServingConfig(max_num_seqs=256, max_model_len=4096)


@pytest.fixture(scope="module")
def qwen8b():  # type: ignore[no-untyped-def]
    return load_model("Qwen/Qwen3-8B")


def test_lengths_keep_their_mean_and_spread() -> None:
    x = draw_lengths(200, 1.0, 4000, 7)
    assert abs(x.mean() - 200) < 1.0
    assert 0.7 < x.std() / x.mean() < 1.2
    assert (draw_lengths(200, 1.0, 4000, 7) == x).all()  # deterministic
    assert (draw_lengths(300, 0.0, 5, 7) == 300).all()


def test_fixed_lengths_approach_the_steady_state(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """Many fixed-length prompts keep the batch full: the run's rate nears b / T(b), a bit below it
    (ramp-up and the last wave)."""
    w = Serving(isl=256, osl=256, num_prompts=4096)
    steady = evaluate_serving(qwen8b, H100, CFG, w).perf.output_tokens_per_s
    run = run_benchmark(qwen8b, H100, CFG, w)
    assert run.preemptions == 0 and run.peak_batch == 256
    assert 0.75 * steady < run.output_tokens_per_s < 1.05 * steady


def test_length_spread_adds_a_ramp_down_tail(qwen8b) -> None:  # type: ignore[no-untyped-def]
    fixed = run_benchmark(qwen8b, H100, CFG, Serving(isl=220, osl=200, num_prompts=1000))
    spread = run_benchmark(qwen8b, H100, CFG, Serving(isl=220, osl=200, num_prompts=1000, isl_cv=1, osl_cv=1))
    assert spread.tail_fraction > fixed.tail_fraction
    assert spread.output_tokens_per_s < fixed.output_tokens_per_s
    # per-request TPOT weights short requests (which decode beside prompt chunks) as much as long ones
    assert spread.mean_tpot_ms != pytest.approx(spread.mean_itl_ms, rel=0.01)


def test_a_full_kv_cache_preempts_and_still_finishes(qwen8b) -> None:  # type: ignore[no-untyped-def]
    w = Serving(isl=512, osl=512, num_prompts=300)
    roomy = simulate_benchmark(
        qwen8b, H100, CFG, w, kv_blocks=100_000, block_size=16, blocks_per_seq=48, batched_tokens=8192
    )
    tight = simulate_benchmark(
        qwen8b, H100, CFG, w, kv_blocks=3_000, block_size=16, blocks_per_seq=48, batched_tokens=8192
    )
    assert roomy.preemptions == 0 and tight.preemptions > 0
    assert tight.peak_batch < roomy.peak_batch
    assert tight.duration_s > roomy.duration_s


def test_prompt_chunks_lengthen_the_decode_steps_beside_them(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """Long prompts interleaved by chunked prefill: the ITL of a burst exceeds a pure decode step's."""
    w = Serving(isl=4000, osl=64, num_prompts=200)
    run = run_benchmark(qwen8b, H100, CFG, w)
    pure = evaluate_serving(qwen8b, H100, CFG, w.model_copy(update={"concurrency": round(run.mean_batch)}))
    assert run.mean_itl_ms > pure.perf.decode_step_ms
    # a smaller step budget spreads the prompts over more steps: first tokens come later
    small = run_benchmark(qwen8b, H100, CFG.model_copy(update={"max_num_batched_tokens": 1024}), w)
    assert small.mean_ttft_ms > run.mean_ttft_ms


def test_without_chunked_prefill_a_prompt_waits_for_a_step_with_room_for_all_of_it(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """TensorRT-LLM without `enable_chunked_prefill`: two 1,000-token prompts never share a 1,500-token
    step, so the prompts take one step each (20) where chunks pack them into 14."""
    w = Serving(isl=1000, osl=64, num_prompts=20)
    kw = dict(kv_blocks=100_000, block_size=32, blocks_per_seq=34, batched_tokens=1500, engine="trtllm")
    chunked = simulate_benchmark(qwen8b, H100, CFG, w, **kw)  # type: ignore[arg-type]
    whole = simulate_benchmark(qwen8b, H100, CFG, w, chunked_prefill=False, **kw)  # type: ignore[arg-type]
    assert whole.steps >= chunked.steps + 5
    with pytest.raises(InputError, match="chunked prefill off"):
        simulate_benchmark(qwen8b, H100, CFG, w.model_copy(update={"isl": 2000}), chunked_prefill=False, **kw)  # type: ignore[arg-type]


def test_replicas_share_the_prompts(qwen8b) -> None:  # type: ignore[no-untyped-def]
    w = Serving(isl=220, osl=200, num_prompts=1000, isl_cv=1, osl_cv=1)
    one = run_benchmark(qwen8b, H100, CFG, w)
    four = run_benchmark(qwen8b, Cluster.parse("1x4xH100"), CFG.model_copy(update={"replicas": 4}), w)
    assert one.output_tokens_per_s < four.output_tokens_per_s < 4 * one.output_tokens_per_s
    assert np.isfinite(four.mean_ttft_ms)


def test_the_longest_request_of_the_whole_draw_sets_a_replicated_runs_duration(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """Eight replicas deal one draw of 1,000 requests between them: the run lasts at least as long
    as the longest output of all 1,000 takes to decode one token per step at batch 1."""
    from autoparallel.perf.serving_load import LENGTH_SEED
    from autoparallel.perf.serving_steps import ReplicaShape, rotation_s

    w = Serving(isl=220, osl=200, num_prompts=1000, isl_cv=1, osl_cv=1)
    cluster = Cluster.parse("1x8xH100")
    cfg = CFG.model_copy(update={"replicas": 8})
    run = run_benchmark(qwen8b, cluster, cfg, w)
    longest = int(draw_lengths(200, 1.0, 1000, LENGTH_SEED + 1).max())
    step, _ = rotation_s(
        qwen8b,
        cluster,
        ReplicaShape.of(cfg),
        decode_seqs=1,
        context_tokens=220,
        prefill_tokens=0.0,
        prefill_context=0.0,
    )
    assert run.duration_s > longest * step


def _spans_and_steps(
    model: ModelSpec, monkeypatch: pytest.MonkeyPatch, w: Serving, kv_blocks: int
) -> tuple[sl.BenchmarkRun, sl.BenchmarkRun]:
    """The replay of `w` with decode spans, then stepping one engine step at a time."""

    def run() -> sl.BenchmarkRun:
        return simulate_benchmark(
            model, H100, CFG, w, kv_blocks=kv_blocks, block_size=16, blocks_per_seq=46, batched_tokens=2048
        )

    fast = run()
    monkeypatch.setattr(sr, "_decode_span", lambda *a, **k: 0)
    return fast, run()


def test_decode_spans_agree_with_stepping_one_by_one(qwen8b, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A KV-starved run (preemptions): jumping over the decode-only steps up to the next preemption
    gives the step-by-step replay's answer (the span's mean context differs by < 1 %)."""
    w = Serving(isl=128, osl=600, num_prompts=60, osl_cv=0.5)
    fast, slow = _spans_and_steps(qwen8b, monkeypatch, w, kv_blocks=400)
    assert fast.preemptions == slow.preemptions > 0
    assert fast.steps == slow.steps
    assert fast.output_tokens_per_s == pytest.approx(slow.output_tokens_per_s, rel=0.01)
    assert fast.mean_tpot_ms == pytest.approx(slow.mean_tpot_ms, rel=0.01)
    for metric in ("median_itl_ms", "p99_itl_ms", "median_tpot_ms", "p99_tpot_ms", "p99_ttft_ms"):
        assert getattr(fast, metric) == pytest.approx(getattr(slow, metric), rel=0.02), metric


def test_decode_spans_end_at_the_next_arrival(qwen8b, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """At 20 requests/s a span ends at the first step past the next arrival, where stepping one by one
    admits it. The span's steps all take its mean step time, so its boundaries (and the step an
    arrival waits for) shift a little and a preempting run's trajectory drifts: within a few % of
    the step-by-step replay, not equal to it. The mean TTFT of 60 requests, 270 preemptions among
    them, moves most with which request a drifted boundary preempts: 1,465 vs 1,630 ms at 20/s (after
    the LM head was priced on sampled tokens only), 1,445 vs 1,459 at 19/s, 1,568 vs 1,546 at 21/s."""
    w = Serving(isl=128, osl=600, num_prompts=60, osl_cv=0.5, request_rate=20.0)
    fast, slow = _spans_and_steps(qwen8b, monkeypatch, w, kv_blocks=1000)
    assert fast.preemptions == pytest.approx(slow.preemptions, rel=0.1) and slow.preemptions > 0
    assert fast.steps == pytest.approx(slow.steps, rel=0.01)
    for metric in ("output_tokens_per_s", "mean_tpot_ms", "p99_ttft_ms", "p99_tpot_ms"):
        assert getattr(fast, metric) == pytest.approx(getattr(slow, metric), rel=0.03), metric
    assert fast.mean_ttft_ms == pytest.approx(slow.mean_ttft_ms, rel=0.12)


def test_cuda_graph_padding_runs_the_gemms_at_the_captured_size(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """TensorRT-LLM with `enable_padding` replays a decode batch of 600 as its 1,024 graph: the GEMMs
    (compute-bound there) do 1,024 rows of work, so the run is slower than unpadded; attention still
    reads only the real sequences' KV, so with every size captured nothing is padded."""
    from autoparallel.memory.trtllm import padded_cuda_graph_batch_sizes

    assert padded_cuda_graph_batch_sizes(2048) == (1, 2, 4, *range(8, 129, 8), 256, 512, 1024, 2048)
    w = Serving(isl=128, osl=512, num_prompts=600)
    cfg = CFG.model_copy(update={"max_num_seqs": 600, "quantization": "fp8"})

    def run(sizes: tuple[int, ...]) -> float:
        return simulate_benchmark(
            qwen8b,
            H100,
            cfg,
            w,
            kv_blocks=40000,
            block_size=16,
            blocks_per_seq=40,
            batched_tokens=8192,
            engine="trtllm",
            graph_batch_sizes=sizes,
        ).output_tokens_per_s

    plain, every, padded = run(()), run(tuple(range(1, 601))), run((1024,))
    assert every == pytest.approx(plain, rel=1e-9)
    assert padded < 0.9 * plain


def test_tensorrt_keeps_graphs_up_to_its_largest_decode_batch() -> None:
    """`_filter_cuda_graph_batch_sizes`: sizes above min(max_batch_size, max_num_tokens) are dropped,
    and with padding the largest decode batch itself is captured instead (a batch of 2,095 under a
    2,304 cap runs as 2,304, not as the options file's 4,096)."""
    from autoparallel.memory.trtllm import captured_batch_sizes

    asked = (1, 2, 4, 8, 512, 1024, 2048, 4096, 8192)
    assert captured_batch_sizes(asked, 2304, 2560) == (1, 2, 4, 8, 512, 1024, 2048, 2304)
    assert captured_batch_sizes(asked, 4096, 8192) == (1, 2, 4, 8, 512, 1024, 2048, 4096)
    assert captured_batch_sizes(asked, 8192, 2048) == (1, 2, 4, 8, 512, 1024, 2048)


def test_weighted_percentiles_are_numpys_on_the_repeated_list() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(size=200)
    weights = rng.integers(1, 40, size=200)
    repeated = np.repeat(values, weights)
    qs = (0.0, 10.0, 50.0, 73.3, 99.0, 100.0)
    assert weighted_percentiles(values, weights, qs) == pytest.approx(list(np.percentile(repeated, qs)))
    assert weighted_percentiles(np.zeros(0), np.zeros(0, dtype=np.int64), (50.0,)) == [0.0]


def test_prompts_admitted_together_decode_in_lock_step(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """Eight fixed-length prompts in one step: every gap is one decode step (median = P99 = mean ITL),
    every request has the same TTFT and TPOT."""
    run = run_benchmark(qwen8b, H100, CFG, Serving(isl=256, osl=64, num_prompts=8))
    assert run.median_itl_ms == pytest.approx(run.p99_itl_ms, rel=0.02)
    assert run.median_itl_ms == pytest.approx(run.mean_itl_ms, rel=0.02)
    assert run.median_ttft_ms == pytest.approx(run.p99_ttft_ms) == pytest.approx(run.mean_ttft_ms)
    assert run.median_tpot_ms == pytest.approx(run.p99_tpot_ms) == pytest.approx(run.mean_tpot_ms)


def test_a_decode_that_waits_out_prompt_only_steps_sees_one_long_gap(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """SGLang runs prompt-only steps while prompts wait (its default): the first requests' second
    token waits for every later prompt, so its P99 gap spans many steps. vLLM's mixed steps give
    each decode a token per step: its longest gaps are single mixed steps."""
    w = Serving(isl=2000, osl=8, num_prompts=64)
    kw = dict(kv_blocks=100_000, block_size=16, blocks_per_seq=126, batched_tokens=8192)
    sglang = simulate_benchmark(qwen8b, H100, CFG, w, engine="sglang", **kw)  # type: ignore[arg-type]
    vllm = simulate_benchmark(qwen8b, H100, CFG, w, engine="vllm", **kw)  # type: ignore[arg-type]
    assert sglang.p99_itl_ms > 5 * sglang.median_itl_ms
    assert sglang.p99_itl_ms > 3 * vllm.p99_itl_ms
    assert sglang.p99_ttft_ms >= sglang.median_ttft_ms


def test_peak_output_tokens_per_second(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """A run shorter than one second puts every token in its first second; a long one peaks above
    its mean rate and below the whole output."""
    short = run_benchmark(qwen8b, H100, CFG, Serving(isl=256, osl=64, num_prompts=8))
    assert short.duration_s < 1.0
    assert short.peak_output_tokens_per_s == 8 * 64
    w = Serving(isl=220, osl=200, num_prompts=1000, isl_cv=1, osl_cv=1)
    long = run_benchmark(qwen8b, Cluster.parse("1x2xH100"), CFG.model_copy(update={"replicas": 2}), w)
    assert (
        long.output_tokens_per_s < long.peak_output_tokens_per_s < long.output_tokens_per_s * long.duration_s
    )


def test_sglang_admits_a_prompt_only_when_all_of_it_fits(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """SGLang's `PrefillAdder` starts a prompt only when the whole prompt and its (clipped) output fit
    the free pool less what the running requests may still write: long prompts that only fit a few at a
    time are admitted a few at a time, never half-prefilled into a full pool (the replay used to admit
    them chunk by chunk and stop with "no progress")."""
    w = Serving(isl=3000, osl=50, num_prompts=16)
    kw = dict(kv_blocks=10_000, block_size=1, blocks_per_seq=3050, batched_tokens=512)
    cfg = CFG.model_copy(update={"max_model_len": 4096})
    run = simulate_benchmark(qwen8b, H100, cfg, w, engine="sglang", **kw)  # type: ignore[arg-type]
    assert run.preemptions == 0
    assert run.peak_batch <= 3  # 3 × (3,000 + 50) tokens fit 10,000; a fourth whole prompt does not


def _fake_rank(works: list[sr.Work], got: list[tuple[float, int]]) -> sr.Rank:
    """A replica that asks for `works` in turn and records what the driver sends back."""
    for work in works:
        got.append((yield work))
    none = np.zeros(0)
    return sr.ReplicaRun(none, none, 0, 0, 0.0, 0, 0.0, none, none, none, none)


def _work(seqs: float, prompt: float = 0.0, span: int = 1) -> sr.Work:
    """`seqs` decodes (padded to a captured 8) or, with `prompt`, a prompt chunk beside them."""
    padded = None if prompt else 8.0
    return sr.Work(seqs, 100.0, prompt, 50.0 if prompt else 0.0, 1.0, padded, False, span)


def test_lockstep_steps_last_as_long_as_the_slowest_rank() -> None:
    """Aligned forward passes: every rank's step takes the slowest rank's time, decode spans run
    together only as far as every rank can, and (SGLang, TensorRT-LLM) a rank carrying a prompt
    chunk makes the others' decode run without CUDA graphs."""
    seen: list[sr.Work] = []

    def price(w: sr.Work) -> float:
        seen.append(w)
        return w.decode_seqs + w.prefill_tokens

    a_got: list[tuple[float, int]] = []
    b_got: list[tuple[float, int]] = []
    a = _fake_rank([_work(4.0, span=5), _work(4.0, span=3)], a_got)
    b = _fake_rank([_work(1.0, prompt=10.0), _work(2.0, span=6)], b_got)
    sr.lockstep([a, b], price, "eager")
    assert a_got == [(11.0, 1), (4.0, 3)] and b_got == a_got
    first_a = seen[0]
    assert first_a.eager and first_a.padded_seqs is None  # its decode graph is taken away
    assert not seen[2].eager and seen[2].padded_seqs == 8.0  # decode-only everywhere: graphs again
    seen.clear()
    sr.lockstep([_fake_rank([_work(4.0)], []), _fake_rank([_work(1.0, prompt=10.0)], [])], price, "piecewise")
    assert not seen[0].eager and seen[0].padded_seqs is None  # vLLM: piecewise, no full-graph padding


def test_lockstep_never_runs_faster_than_independent_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    """DP + EP ranks of one engine replay in lock-step: with a spread of lengths (ranks dealt
    different work) the run is no faster and its gaps no shorter than the same ranks replayed on
    their own; with fixed lengths (identical ranks) nothing changes."""
    moe = load_model("Qwen/Qwen3-30B-A3B")
    cluster = Cluster.parse("1x2xH100")
    cfg = ServingConfig(replicas=2, enable_expert_parallel=True, max_num_seqs=128, max_model_len=4096)
    spread = Serving(isl=300, osl=200, num_prompts=200, isl_cv=1, osl_cv=1)
    fixed = Serving(isl=300, osl=200, num_prompts=200)
    aligned = {w.isl_cv: run_benchmark(moe, cluster, cfg, w) for w in (spread, fixed)}

    def independent(ranks: list[sr.Rank], price: object, graphs: str) -> list[sr.ReplicaRun]:
        return [sr.alone(rank, price) for rank in ranks]  # type: ignore[arg-type]

    monkeypatch.setattr(sl, "lockstep", independent)
    alone = {w.isl_cv: run_benchmark(moe, cluster, cfg, w) for w in (spread, fixed)}
    assert aligned[1.0].duration_s > alone[1.0].duration_s
    assert aligned[1.0].mean_itl_ms > alone[1.0].mean_itl_ms
    assert aligned[0.0] == alone[0.0]


@pytest.mark.parametrize(("engine", "eager"), [("vllm", False), ("sglang", True), ("trtllm", True)])
def test_a_step_carrying_a_prompt_runs_as_the_engine_runs_it(qwen8b, engine: str, eager: bool) -> None:  # type: ignore[no-untyped-def]
    """vLLM runs a mixed step in its piecewise CUDA graphs; SGLang and TensorRT-LLM replay graphs for
    decode-only batches only, so a step carrying a prompt chunk pays the eager launch cost."""
    seen: list[sr.Work] = []
    original = sl._step_s

    def spy(*args: object) -> float:
        seen.append(args[-1])  # type: ignore[arg-type]
        return original(*args)  # type: ignore[arg-type]

    w = Serving(isl=512, osl=16, num_prompts=32)
    kw = dict(kv_blocks=100_000, block_size=16, blocks_per_seq=34, batched_tokens=2048)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sl, "_step_s", spy)
        simulate_benchmark(qwen8b, H100, CFG, w, engine=engine, **kw)  # type: ignore[arg-type]
    prompts = [s for s in seen if s.prefill_tokens > 0]
    decodes = [s for s in seen if s.prefill_tokens == 0]
    assert prompts and decodes
    assert all(s.eager == eager for s in prompts)
    assert not any(s.eager for s in decodes)


def test_sglang_decodes_take_no_slots_in_a_prompt_only_step() -> None:
    """A decode waiting out SGLang's prompt-only step writes nothing and is given no new KV slot: the
    replay used to reserve one for every running request, so a prompt admitted against the free pool
    no longer fitted once those were taken, and `plan --engine sglang --workload batch` for
    Llama-3.1-70B on 8×H100 (tp 1, pp 8) stopped with "no progress"."""
    from autoparallel.workload import PRESETS

    model = load_model("meta-llama/Llama-3.1-70B-Instruct")
    cfg = ServingConfig(tp=1, pp=8, max_num_seqs=768, max_model_len=2048)
    run = run_benchmark(model, Cluster.parse("1x8xH100"), cfg, PRESETS["batch"], engine="sglang")
    assert run.peak_batch == 768 and run.output_tokens_per_s > 0


def test_sharegpt_shape_keeps_the_published_short_output_share() -> None:
    """The ShareGPT output shape, drawn at the histogram's own mean, holds its short share (448 of
    2,104 outputs at 20 tokens or fewer) and median bucket (979 at 100 or fewer), where a log-normal
    of spread 1 and the same mean puts about 1 % under 20."""
    from autoparallel.workload import SHAREGPT_OSL_QUANTILES

    lengths = draw_lengths(202, 0.0, 2104, seed=3, quantiles=SHAREGPT_OSL_QUANTILES)
    assert abs((lengths <= 20).mean() - 448 / 2104) < 0.02
    assert abs((lengths <= 100).mean() - 979 / 2104) < 0.03
    assert abs(lengths.mean() - 202) < 1
    lognormal = draw_lengths(202, 1.0, 2104, seed=3)
    assert (lognormal <= 20).mean() < 0.03


def test_send_times_of_a_capped_client() -> None:
    """Two in flight: the first two go at t = 0, each later one as the next earlier one ends."""
    finish = np.array([5.0, 3.0, 9.0, 4.0])
    assert sl._send_times(finish, 2, np.zeros(4)).tolist() == [0.0, 0.0, 3.0, 4.0]
    assert sl._send_times(finish, 8, np.zeros(4)).tolist() == [0.0] * 4
    # at a rate: a request is sent at its arrival, or later when no slot is free then
    assert sl._send_times(finish, 2, np.array([0.5, 1.0, 2.0, 6.0])).tolist() == [0.5, 1.0, 3.0, 6.0]


def test_arrivals_are_those_vllm_bench_serve_draws() -> None:
    """`vllm bench serve --request-rate 4 --num-prompts 2000`: exponential gaps of mean 1/4 s, scaled
    so that the last prompt goes at exactly 2000 / 4 s; deterministic; inf sends all at t = 0."""
    sends = arrival_times(2000, 4.0)
    gaps = np.diff(np.concatenate([[0.0], sends]))
    assert sends[-1] == pytest.approx(500.0) and (gaps > 0).all()
    assert gaps.mean() == pytest.approx(0.25)
    assert 0.9 < gaps.std() / gaps.mean() < 1.1  # exponential: spread 1
    assert (arrival_times(2000, 4.0) == sends).all()
    assert (arrival_times(5, None) == 0).all()
    for n in range(1, 200):  # the burstiest shape: finite sends, the last at n / R
        sends = arrival_times(n, 2.0, burstiness=0.01)
        assert np.isfinite(sends).all() and sends[-1] == pytest.approx(n / 2.0)


def test_prompts_sent_at_a_rate_are_served_as_they_come(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """Far below the replica's capacity, a run at 2 requests/s delivers the offered load (rate × mean
    output, the last send at N / rate), each prompt's TTFT is about one prefill (not the queue of a
    burst) and the batch stays near rate × e2e (Little's law); near and past capacity, TTFT and TPOT
    grow, and at a rate no engine keeps up with the run approaches the burst."""
    burst = Serving(isl=220, osl=200, num_prompts=400, isl_cv=1, osl_cv=1)
    slow = run_benchmark(qwen8b, H100, CFG, burst.model_copy(update={"request_rate": 2.0}))
    assert "400 prompts at 2 requests/s, Poisson arrivals" in slow.title
    assert slow.duration_s > 400 / 2.0
    assert 0.9 * 2.0 * 200 < slow.output_tokens_per_s <= 2.0 * 200 * 1.01
    assert slow.mean_ttft_ms < 100 and slow.p99_ttft_ms < 200
    e2e_s = (slow.mean_ttft_ms + slow.mean_tpot_ms * 199) / 1e3
    # Little's law on the time-averaged batch: L = (N / duration) x W, N / duration just under 2/s
    # (2.82 against 2.97)
    assert slow.mean_batch == pytest.approx(2.0 * e2e_s, rel=0.1)
    assert slow.peak_batch < 20 and slow.preemptions == 0
    runs = [
        run_benchmark(qwen8b, H100, CFG, burst.model_copy(update={"request_rate": rate}))
        for rate in (8, 32, 1e4)
    ]
    ttft = [slow.mean_ttft_ms] + [r.mean_ttft_ms for r in runs]
    tpot = [slow.mean_tpot_ms] + [r.mean_tpot_ms for r in runs]
    assert ttft == sorted(ttft) and tpot == sorted(tpot)
    at_once = run_benchmark(qwen8b, H100, CFG, burst)
    assert runs[-1].output_tokens_per_s == pytest.approx(at_once.output_tokens_per_s, rel=0.02)
    assert runs[-1].mean_ttft_ms == pytest.approx(at_once.mean_ttft_ms, rel=0.05)


def test_lock_step_ranks_wait_for_their_own_arrivals(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """Data-parallel ranks that share experts (vLLM DP + EP) step together: at a low rate most steps
    run one rank's few requests while the others idle, so the run delivers the offered load with
    single-request latencies; the run still finishes when every rank has long waits."""
    moe = load_model("Qwen/Qwen3-30B-A3B")
    cluster = Cluster.parse("1x8xH100")
    cfg = ServingConfig(tp=1, replicas=8, enable_expert_parallel=True, max_num_seqs=256, max_model_len=4096)
    w = Serving(isl=220, osl=200, num_prompts=200, osl_cv=1, request_rate=1.0)
    run = run_benchmark(moe, cluster, cfg, w)
    assert 0.9 * 200 < run.output_tokens_per_s <= 200 * 1.01
    assert run.peak_batch <= 3 and run.mean_ttft_ms < 150
    busier = run_benchmark(moe, cluster, cfg, w.model_copy(update={"request_rate": 40.0}))
    assert busier.mean_tpot_ms > run.mean_tpot_ms


def test_a_rate_and_a_cap_together(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """`--request-rate 50 --max-concurrency 4`: the cap binds (4 in flight complete far fewer than 50 a
    second), so TTFT counts from each send, which waits for a free slot, not from the arrival."""
    w = Serving(isl=220, osl=200, num_prompts=100, request_rate=50.0, concurrency=4)
    run = run_benchmark(qwen8b, H100, CFG, w)
    assert run.peak_batch == 4 and "at most 4 in flight" in run.title and "50 requests/s" in run.title
    assert run.mean_ttft_ms < 200
    assert run.duration_s > 100 / 50.0 * 3  # the cap, not the rate, sets the pace


def test_a_concurrency_cap_keeps_that_many_in_flight_and_times_ttft_from_each_send(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """`vllm bench serve --max-concurrency 8`: the replica runs at most 8 requests however large its
    own limit, TTFT counts from each prompt's send (about one prefill, not the queue), and the run
    takes longer than the same prompts sent at once."""
    at_once = Serving(isl=220, osl=200, num_prompts=200)
    capped = at_once.model_copy(update={"concurrency": 8})
    free = run_benchmark(qwen8b, H100, CFG, at_once)
    run = run_benchmark(qwen8b, H100, CFG, capped)
    assert run.max_concurrency == 8 and run.peak_batch == 8 and "at most 8 in flight" in run.title
    assert run.p99_ttft_ms < 0.2 * free.p99_ttft_ms and run.p99_ttft_ms < 250  # 8 prompts' prefill
    assert run.duration_s > free.duration_s and run.mean_tpot_ms < free.mean_tpot_ms
    two = run_benchmark(qwen8b, Cluster.parse("1x2xH100"), CFG.model_copy(update={"replicas": 2}), capped)
    assert two.peak_batch == 4  # the cap is over the deployment, dealt over its replicas


@pytest.mark.parametrize(
    ("gpu", "tokens", "graphs"), [("H100", 8192, 512), ("B200", 8192, 1024), ("H100", 384, 384)]
)
def test_vllm_replay_runs_graphs_as_far_as_the_memory_model_captures(
    qwen8b: ModelSpec, monkeypatch: pytest.MonkeyPatch, gpu: str, tokens: int, graphs: int
) -> None:
    """vLLM 0.32 captures decode graphs up to min(2 x max_num_seqs, 512, or 1024 on data-centre
    Blackwell, max_num_batched_tokens) (`_set_cudagraph_sizes`); the replay runs larger decode batches
    eagerly. Its reach is the memory model's capture list (`vllm_profile.capture_sizes`), one rule for
    the graphs' memory and for which batches they cover: it was a flat 512, so a B200 decode batch of
    600 paid eager launches that vLLM does not."""
    from autoparallel.memory.vllm_profile import capture_sizes

    seen: dict[str, object] = {}

    def record(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        raise StopIteration

    monkeypatch.setattr(sl, "simulate_benchmark", record)
    cfg = CFG.model_copy(update={"max_num_seqs": 1024, "max_num_batched_tokens": tokens})
    with pytest.raises(StopIteration):
        run_benchmark(qwen8b, Cluster.parse(f"1x1x{gpu}"), cfg, Serving(isl=256, osl=64, num_prompts=8))
    assert seen["graph_max_batch"] == graphs == capture_sizes(1024, tokens, blackwell=gpu == "B200")[-1]


def test_a_replay_too_long_to_run_is_refused_up_front(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """1,000 prompts of 30,000 output tokens on a pool that holds 4 of them at once: 250 waves stepped
    one step at a time (a Llama 4 Scout batch of million-token outputs ran until it was killed); the
    estimate refuses it at once and says what to change."""
    cfg = ServingConfig(max_num_seqs=256, max_model_len=40_000)
    w = Serving(isl=100, osl=30_000, num_prompts=1000)
    with pytest.raises(InputError, match=r"about [\d,]+ scheduler passes .*at most 250,000"):
        simulate_benchmark(
            qwen8b, H100, cfg, w, kv_blocks=4_000, block_size=16, blocks_per_seq=2500, batched_tokens=8192
        )


def test_a_replay_that_outruns_the_estimate_stops_at_the_pass_limit(
    qwen8b, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The estimate is a guess (it counts KV waves, not arrivals); the scheduler passes themselves are
    counted too (a backstop): 300 prompts at 0.5 requests/s find the engine idle each time, a few
    passes each (10^6 of them at that rate met the limit after about 18 s)."""
    monkeypatch.setattr(sl, "MAX_REPLAY_PASSES", 50)
    w = Serving(isl=200, osl=50, num_prompts=300, request_rate=0.5)
    with pytest.raises(InputError, match="ran past its budget of 50 scheduler passes"):
        simulate_benchmark(
            qwen8b, H100, CFG, w, kv_blocks=30_000, block_size=16, blocks_per_seq=16, batched_tokens=8192
        )


def test_a_pass_is_charged_by_its_running_requests_and_its_prompt() -> None:
    budget = sr.PassBudget(4.0, "a run")
    budget.charge(0)
    budget.charge(sr.PASS_REQUEST_WEIGHT)
    budget.charge_prompt()
    assert budget.spent == 3.0 + sr.PROMPT_PASS_UNITS and budget.passes == 2
    with pytest.raises(InputError, match=r"budget of 4 scheduler passes \(a run; a pass with b"):
        budget.charge(0)


def test_steps_with_a_prompt_are_charged(qwen8b, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A pass whose step admits a prompt costs about 50 µs more (the L4 replay of 131,072 fixed-length
    prompts, a prompt at 98% of its passes, took 10.5 s to reach a budget that counted only the
    batch): every prompt chunk the replay schedules is charged."""
    budgets: list[sr.PassBudget] = []

    def recorded(limit: float, run: str) -> sr.PassBudget:
        budgets.append(sr.PassBudget(limit, run))
        return budgets[-1]

    monkeypatch.setattr(sl, "PassBudget", recorded)
    monkeypatch.setattr(sr, "PROMPT_PASS_UNITS", 1000.0)  # prompt charges stand out of the rest
    w = Serving(isl=200, osl=4, num_prompts=50)
    simulate_benchmark(
        qwen8b, H100, CFG, w, kv_blocks=30_000, block_size=16, blocks_per_seq=16, batched_tokens=256
    )
    # 10,000 prompt tokens through a 256-token step budget: at least 40 steps carry a prompt chunk.
    assert budgets[-1].spent >= 40 * 1000.0 > 2 * budgets[-1].passes


def test_the_replicas_share_the_pass_budget(qwen8b, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Eight replicas dealt unequal shares of spread lengths: a budget just above what the whole run
    spends lets it finish, though the busiest share spends more than an eighth of it (split evenly,
    it ran out: 5,000 ShareGPT-like prompts on a 64-rank DP + EP engine were refused after 4 s of a
    5 s replay), and one just below refuses it, naming the whole run."""
    shares: list[sr.PassBudget] = []
    replay = sl.rank_steps

    @dataclass
    class Tallied:
        """The run's budget, with what one share spends of it."""

        run: sr.PassBudget
        share: sr.PassBudget

        def charge(self, running: int) -> None:
            self.share.charge(running)
            self.run.charge(running)

        def charge_prompt(self) -> None:
            self.share.charge_prompt()
            self.run.charge_prompt()

    def tallied(*args: object, passes: sr.PassBudget, **kwargs: object) -> sr.Rank:
        shares.append(sr.PassBudget(float("inf"), "one share"))
        return replay(*args, passes=Tallied(passes, shares[-1]), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sl, "rank_steps", tallied)
    cfg = CFG.model_copy(update={"replicas": 8})
    w = Serving(isl=200, osl=100, num_prompts=400, isl_cv=1.0, osl_cv=1.0)

    def run() -> sl.BenchmarkRun:
        return simulate_benchmark(
            qwen8b,
            Cluster.parse("1x8xH100"),
            cfg,
            w,
            kv_blocks=2_000,
            block_size=16,
            blocks_per_seq=20,
            batched_tokens=2048,
        )

    run()
    total = sum(share.spent for share in shares)
    assert len(shares) == 8 and max(share.spent for share in shares) > total / 8 * 1.01
    monkeypatch.setattr(sl, "MAX_REPLAY_PASSES", total * 1.01)
    run()
    monkeypatch.setattr(sl, "MAX_REPLAY_PASSES", total * 0.9)
    with pytest.raises(InputError, match=r"400 prompts of \d+ \+ \d+ tokens over 8 replica\(s\)"):
        run()


def test_a_capped_client_is_not_mistaken_for_kv_pressure(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """A client that keeps 2 of 1,000 prompts in flight runs 500 waves, but with room in the pool its
    decode spans jump to each finish: it is not refused as a full pool would be (the first estimate
    counted the cap as the pool and refused `plan --workload batch --concurrency 4`)."""
    w = Serving(isl=1024, osl=1024, num_prompts=1000, concurrency=2)
    run = simulate_benchmark(
        qwen8b, H100, CFG, w, kv_blocks=100_000, block_size=16, blocks_per_seq=256, batched_tokens=8192
    )
    assert run.peak_batch == 2 and run.preemptions == 0


def test_a_concurrency_cap_holds_over_data_parallel_replicas() -> None:
    """At --concurrency 1 four replicas each took one slot (ceil(1 / 4)): four requests ran at once and
    the replay finished 4x sooner than one replica's."""
    import autoparallel as ap

    work = ap.Serving.preset("chatbot").model_copy(update={"concurrency": 1, "num_prompts": 12})
    runs = [
        ap.with_benchmark(
            ap.evaluate("Qwen/Qwen3-8B", "1x4xH100", ap.ServingConfig(replicas=r), work)
        ).benchmark
        for r in (1, 4)
    ]
    assert runs[1] is not None and runs[0] is not None
    assert runs[1].duration_s == pytest.approx(runs[0].duration_s, rel=0.02)


def test_a_client_cap_above_the_engines_limit_queues_in_the_server(qwen8b) -> None:  # type: ignore[no-untyped-def]
    """`vllm bench serve --max-concurrency` caps only the client: with 200 or 1,000 in flight and
    max_num_seqs 16, the rest wait in the server's queue and TTFT counts from each send. The replay
    used the engine's limit as the client's too, so caps of 16, 200 and 1,000 gave one TTFT; the
    steady state gave the same TTFT at every cap. Both now charge the wait, and agree (Little's law:
    (200 − 16) queued, each waiting that many completions) on a run long enough for its start to fade."""
    cfg = CFG.model_copy(update={"max_num_seqs": 16})
    ttfts = []
    for cap in (16, 200, 1000):
        work = Serving(isl=256, osl=64, isl_cv=0.5, osl_cv=0.5, num_prompts=1500, concurrency=cap)
        run = run_benchmark(qwen8b, H100, cfg, work)
        steady = evaluate_serving(qwen8b, H100, cfg, work).perf
        assert run.peak_batch == 16
        ttfts.append(run.mean_ttft_ms)
        if cap == 200:
            assert steady.ttft_ms == pytest.approx(run.mean_ttft_ms, rel=0.15)
    assert ttfts[0] * 5 < ttfts[1] < ttfts[2]
