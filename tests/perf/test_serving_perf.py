"""The serving cost model: physics sanity, and calibration pins against the reference benchmarks."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.hardware import Cluster
from autoparallel.memory.vllm_config import load_dtype
from autoparallel.models import load_model
from autoparallel.perf.serving import (
    ReplicaShape,
    efficiency_for,
    evaluate_serving,
    replica_step_times,
    stage_step_s,
)
from autoparallel.perf.serving_facts import model_facts
from autoparallel.perf.serving_steps import (
    _hop_s,
    rotation_s,
    sampler_s,
    schedules_ahead,
    vllm_async_scheduling,
)
from autoparallel.workload import Serving

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "inference_benchmarks_dev.csv"
H100 = Cluster.parse("1x8xH100")
CHAT = Serving(isl=1024, osl=256)


def _times(model: str, cluster: Cluster, batch: float, decode_only: bool = False, **shape: object) -> float:
    args: dict[str, object] = dict(
        tp=1, pp=1, ep_ranks=1, quantization=None, kv_cache_dtype="auto", enforce_eager=False
    )
    args.update(shape)
    times = replica_step_times(
        load_model(model),
        cluster,
        ReplicaShape(**args),  # type: ignore[arg-type]
        batch=batch,
        isl=1024,
        osl=256,
        batched_tokens=8192,
    )
    return times.decode_s if decode_only else times.step_s


# ----- physics ------------------------------------------------------------------------------------
def test_small_batch_decode_is_weight_streaming() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    eff = efficiency_for(H100.gpu)
    times = replica_step_times(
        model,
        H100,
        ReplicaShape(1, 1, 1, None, "auto", False),
        batch=1,
        isl=1024,
        osl=256,
        batched_tokens=8192,
    )
    floor = model.weight_bytes() / (H100.gpu.hbm_tbps * 1e12 * eff.hbm_fraction)
    assert times.memory_bound
    assert floor < times.decode_s < floor * 1.05 + eff.step_overhead_s + 1e-3


def test_step_time_and_throughput_grow_with_batch() -> None:
    steps = [_times("meta-llama/Llama-3.1-8B", H100, b) for b in (1, 8, 64, 256)]
    assert steps == sorted(steps)
    rates = [b / t for b, t in zip((1, 8, 64, 256), steps, strict=True)]
    assert rates == sorted(rates)


def test_large_batch_becomes_compute_bound() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    shape = ReplicaShape(1, 1, 1, None, "auto", False)
    _, small = stage_step_s(
        model, H100, shape, decode_seqs=1, context_tokens=1100, prefill_tokens=4, prefill_context=512
    )
    _, big = stage_step_s(
        model, H100, shape, decode_seqs=512, context_tokens=1100, prefill_tokens=2048, prefill_context=512
    )
    assert small and not big


def test_tensor_parallel_shortens_the_step() -> None:
    steps = [_times("meta-llama/Llama-3.1-70B", H100, 8, tp=tp) for tp in (2, 4, 8)]
    assert steps[0] > steps[1] > steps[2]
    assert steps[2] > steps[0] / 4  # all-reduces keep it from scaling perfectly


def test_pcie_tensor_parallel_pays_more_for_all_reduce() -> None:
    nvlink = _times("meta-llama/Llama-3.1-8B", H100, 64, tp=2) / _times("meta-llama/Llama-3.1-8B", H100, 64)
    l40s = Cluster.parse("1x4xL40S")
    pcie = _times("meta-llama/Llama-3.1-8B", l40s, 64, tp=2) / _times("meta-llama/Llama-3.1-8B", l40s, 64)
    assert pcie > nvlink


def test_pipeline_across_nodes_pays_the_network() -> None:
    one = _times("meta-llama/Llama-3.1-70B", Cluster.parse("1x8xH100"), 64, tp=4, pp=2)
    two = _times("meta-llama/Llama-3.1-70B", Cluster.parse("2x4xH100"), 64, tp=4, pp=2)
    assert two > one


def test_moe_decode_reads_only_routed_experts() -> None:
    # A pure decode step of one sequence touches 2 of Mixtral's 8 experts per layer; 64 touch all.
    one = _times("mistralai/Mixtral-8x7B-v0.1", H100, 1, decode_only=True, tp=2)
    many = _times("mistralai/Mixtral-8x7B-v0.1", H100, 64, decode_only=True, tp=2)
    model = load_model("mistralai/Mixtral-8x7B-v0.1")
    all_experts = model.weight_bytes() / 2 / (H100.gpu.hbm_tbps * 1e12)
    assert one < all_experts / 2
    assert many > one * 2


def test_expert_parallel_shards_experts_over_replicas() -> None:
    model = load_model("Qwen/Qwen3-30B-A3B")
    cfg = ServingConfig(tp=1, replicas=8, enable_expert_parallel=True, max_num_seqs=64, max_model_len=2048)
    est = evaluate_serving(model, H100, cfg, CHAT)
    plain = evaluate_serving(model, H100, cfg.model_copy(update={"enable_expert_parallel": False}), CHAT)
    assert est.fits and plain.fits
    assert est.memory.weights_gib < plain.memory.weights_gib / 3


def test_eager_costs_latency_and_frees_graph_memory() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    cfg = ServingConfig(tp=1, max_num_seqs=32, max_model_len=2048)
    graphs = evaluate_serving(model, H100, cfg, CHAT)
    eager = evaluate_serving(model, H100, cfg.model_copy(update={"enforce_eager": True}), CHAT)
    assert eager.perf.tpot_ms > graphs.perf.tpot_ms
    assert eager.memory.cuda_graph_gib == 0 < graphs.memory.cuda_graph_gib
    assert eager.perf.kv_capacity_seqs >= graphs.perf.kv_capacity_seqs


def test_fp8_kv_cache_doubles_capacity() -> None:
    model = load_model("meta-llama/Llama-3.1-70B")
    cfg = ServingConfig(tp=4, max_num_seqs=512, max_model_len=2048)
    auto = evaluate_serving(model, H100, cfg, CHAT)
    fp8 = evaluate_serving(model, H100, cfg.model_copy(update={"kv_cache_dtype": "fp8"}), CHAT)
    assert fp8.perf.kv_capacity_seqs == pytest.approx(2 * auto.perf.kv_capacity_seqs, rel=0.02)


def test_batch_limits_and_fleet_totals() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    cfg = ServingConfig(tp=1, replicas=4, max_num_seqs=256, max_model_len=2048)
    capped = evaluate_serving(model, H100, cfg, CHAT.model_copy(update={"concurrency": 40}))
    assert capped.perf.batch_size == 10 and capped.perf.batch_limit == "concurrency"
    free = evaluate_serving(model, H100, cfg, CHAT)
    p = free.perf
    assert p.batch_limit == "max_num_seqs" and p.batch_size == 256
    assert p.output_tokens_per_s == pytest.approx(4 * p.output_tokens_per_s_per_replica)
    assert p.output_tokens_per_s_per_gpu == pytest.approx(p.output_tokens_per_s / 4)
    assert p.requests_per_s == pytest.approx(p.output_tokens_per_s / 256)
    usd = H100.gpu.usd_per_hour * 4 / (p.output_tokens_per_s * 3600) * 1e6
    assert p.usd_per_million_tokens == pytest.approx(usd)
    assert p.ttft_ms > p.prefill_ms and p.tpot_ms >= p.decode_step_ms


def test_kv_cache_limits_the_batch_on_a_small_gpu() -> None:
    cfg = ServingConfig(tp=1, max_num_seqs=1024, max_model_len=16384)
    est = evaluate_serving(
        load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x1xL4"), cfg, Serving(isl=8192, osl=1024)
    )
    assert est.fits and est.perf.batch_limit == "kv_cache"
    assert 0 < est.perf.batch_size == est.perf.kv_capacity_seqs < 1024
    assert est.perf.kv_headroom_gib >= 0


def test_problems_and_slo_violations_are_reported() -> None:
    est = evaluate_serving(
        load_model("meta-llama/Llama-3.1-70B"),
        Cluster.parse("1x1xL4"),
        ServingConfig(max_model_len=1024),
        CHAT.model_copy(update={"tpot_ms": 1.0}),
    )
    assert not est.fits and est.problems
    assert any("shorter than the workload's requests" in p for p in est.problems)
    assert any("TPOT" in v for v in est.slo_violations)


# ----- calibration pins (reference rows) ------------------------------------------------------------
def _row(row_id: str) -> dict[str, str]:
    if not REFERENCE.exists():
        pytest.skip(f"reference data not found at {REFERENCE}")
    with REFERENCE.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["row_id"] == row_id:
                return row
    pytest.skip(f"row {row_id} not in the reference data")


def test_pin_vllm_qwen3_8b_h100_concurrency_4() -> None:
    """I301: vLLM 0.11, Qwen3-8B bf16, 1×H100, 4 concurrent ShareGPT requests."""
    row = _row("I301")
    w = Serving(isl=round(float(row["isl"])), osl=round(float(row["osl"])), concurrency=4)
    est = evaluate_serving(
        load_model("Qwen/Qwen3-8B"),
        Cluster.parse("1x1xH100"),
        ServingConfig(max_num_seqs=1024, max_model_len=4096),
        w,
    )
    assert est.perf.tpot_ms == pytest.approx(float(row["mean_tpot_ms"]), rel=0.10)
    assert est.perf.ttft_ms == pytest.approx(float(row["mean_ttft_ms"]), rel=0.25)
    assert est.perf.output_tokens_per_s == pytest.approx(float(row["output_tok_s_total"]), rel=0.25)


# ----- pipeline stages never shorten one sequence ---------------------------------------------------
@pytest.mark.parametrize(
    "model, tp",
    [
        ("deepseek-ai/DeepSeek-V3", 8),  # MoE + MLA: fewer sequences per stage must not mean fewer experts
        ("mistralai/Mixtral-8x7B-v0.1", 2),  # MoE
        ("meta-llama/Llama-3.1-70B", 4),  # dense
    ],
)
def test_pipeline_stages_never_lower_single_sequence_tpot(model: str, tp: int) -> None:
    cluster = Cluster.parse("16x8xH100")
    steps = [_times(model, cluster, 1, tp=tp, pp=pp) for pp in (1, 2, 4, 8)]
    decodes = [_times(model, cluster, 1, decode_only=True, tp=tp, pp=pp) for pp in (1, 2, 4, 8)]
    assert steps == sorted(steps), steps
    assert decodes == sorted(decodes), decodes


def test_pipeline_stages_never_lower_tpot_at_concurrency_one() -> None:
    model = load_model("Qwen/Qwen3-30B-A3B")
    one = Serving(isl=1024, osl=256, concurrency=1)
    tpots = []
    for pp in (1, 2, 4, 8):
        cfg = ServingConfig(tp=1, pp=pp, max_num_seqs=64, max_model_len=2048)
        est = evaluate_serving(model, H100, cfg, one)
        assert est.fits and est.perf.batch_size == 1
        tpots.append(est.perf.tpot_ms)
    assert tpots == sorted(tpots), tpots


def test_wide_ep_overlap_and_fp8_dispatch_only_shorten_the_step() -> None:
    """Cross-node EP (DeepSeek-V3 over 4 nodes) by top-k all-to-all (TensorRT-LLM's pricing; in
    vLLM the two options select DeepEP): FP8 dispatch halves the dispatch bytes, overlap hides the
    all-to-all under compute."""
    model, cluster = load_model("deepseek-ai/DeepSeek-V3"), Cluster.parse("4x8xH100")
    base = dict(
        tp=1,
        pp=1,
        ep_ranks=32,
        quantization=None,
        kv_cache_dtype="auto",
        enforce_eager=False,
        engine="trtllm",
    )

    def step(**extra: object) -> float:
        shape = ReplicaShape(**{**base, **extra})  # type: ignore[arg-type]
        t, _ = stage_step_s(
            model, cluster, shape, decode_seqs=128, context_tokens=1100, prefill_tokens=0, prefill_context=0
        )
        return t

    plain, fp8, overlap, both = (
        step(),
        step(fp8_dispatch=True),
        step(ep_overlap=True),
        step(ep_overlap=True, fp8_dispatch=True),
    )
    assert plain > fp8 > both and plain > overlap >= both


def test_vllm_exchanges_experts_by_all_gather_and_reduce_scatter() -> None:
    """vLLM's default `allgather_reducescatter` exchange (`AgRsAll2AllManager`): the dispatch gathers
    every token of the EP group onto every rank, so its bytes grow with the DP ranks and not with
    top-k (Mixtral's top-2 at DP 8 moves 4x what a top-2 all-to-all would); without DP there is no
    exchange, the MoE output is all-reduced over TP; with TP and DP each TP rank dispatches its
    1/tp shard and the MoE output is all-gathered back over TP (`use_sequence_parallel_moe`)."""
    from autoparallel.perf import comm
    from autoparallel.perf.serving_steps import _comm_parts_s, _link

    cluster = Cluster.parse("1x8xH100")
    mixtral = load_model("mistralai/Mixtral-8x7B-Instruct-v0.1")
    f = model_facts(mixtral, None)
    msg = 4096 * f.hidden * 2.0
    link = _link(cluster, 8, 1)
    dp8 = ReplicaShape(1, 1, 8, None, "auto", False)
    gather = comm.all_gather_s(8 * msg, 8, link) + comm.reduce_scatter_s(8 * msg, 8, link)
    assert _comm_parts_s(cluster, dp8, f, 1.0, 4096, 0) == pytest.approx((0.0, f.moe_layers * gather))
    top2 = _comm_parts_s(cluster, replace(dp8, engine="trtllm"), f, 1.0, 4096, 0)[1]
    assert 3.5 < gather * f.moe_layers / top2 < 4.0  # (7/8 of 8 msg) / (7/8 of 2 msg), less the latencies
    tp8 = ReplicaShape(8, 1, 8, None, "auto", False)  # EP inside one TP group: no exchange
    dense = 2 * f.layers * comm.all_reduce_s(msg, 8, link)
    assert _comm_parts_s(cluster, tp8, f, 1.0, 4096, 0) == pytest.approx((dense, 0.0))
    tp2dp4 = ReplicaShape(2, 1, 8, None, "auto", False)
    tp_link = _link(cluster, 2, 1)
    tp_s = (2 * f.layers - f.moe_layers) * comm.all_reduce_s(
        msg, 2, tp_link
    ) + f.moe_layers * comm.all_gather_s(msg, 2, tp_link)
    ep_s = f.moe_layers * (comm.all_gather_s(4 * msg, 8, link) + comm.reduce_scatter_s(4 * msg, 8, link))
    assert _comm_parts_s(cluster, tp2dp4, f, 1.0, 4096, 0) == pytest.approx((tp_s, ep_s))


def test_ampere_gemms_reach_more_of_their_peak_than_hoppers() -> None:
    """No reference row runs on Ampere: its factors are Hopper's with the GEMM fractions scaled by
    the measured maximum achievable matmul FLOPS (A100 85.9 % of peak, H100 80.1 %), so an A100's
    compute-bound step is 989 / 312 × 0.801 / 0.859 ≈ 2.95× an H100's, not the 3.2× of the peaks."""
    from autoparallel.hardware import get_gpu
    from autoparallel.perf.serving_efficiency import MAMF_FRACTION, SCHEDULER_S_PER_REQUEST

    a100, h100 = efficiency_for(get_gpu("A100-80G")), efficiency_for(get_gpu("H100"))
    assert a100.flops_fraction / h100.flops_fraction == pytest.approx(
        MAMF_FRACTION["ampere"] / MAMF_FRACTION["hopper"]
    )
    assert a100.flops_fraction > h100.flops_fraction
    assert a100.hbm_fraction == h100.hbm_fraction
    for engine in ("sglang", "trtllm"):  # no engine-specific Ampere factors: vLLM's kernels' fractions
        other = efficiency_for(get_gpu("A100-80G"), engine)
        kernels = {"request_step_overhead_s", "source"}
        assert other.model_dump(exclude=kernels) == a100.model_dump(exclude=kernels)
        # ... and the engine's own host cost per request, which follows its code, not the GPU.
        hopper = efficiency_for(get_gpu("H100"), engine).request_step_overhead_s
        assert other.request_step_overhead_s == hopper == SCHEDULER_S_PER_REQUEST[engine]
    assert SCHEDULER_S_PER_REQUEST["sglang"] < a100.request_step_overhead_s == SCHEDULER_S_PER_REQUEST["vllm"]


def test_a_request_rate_below_capacity_runs_the_batch_littles_law_gives() -> None:
    """`perf` is full load; at an arrival rate λ a replica holds b = λ / replicas · (prefill + (osl −
    1) · T(b)) requests. The batch grows with the rate and stays under full load, and so do TPOT and
    TTFT; no rate, or one the deployment cannot sustain, gives none."""
    from autoparallel.perf.serving_engines import at_request_rate

    model, cluster = load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x2xH100")
    cfg = ServingConfig(replicas=2, max_num_seqs=256, max_model_len=2048)
    seen = []
    for rate in (0.5, 4.0, 12.0):
        w = CHAT.model_copy(update={"request_rate": rate})
        full = evaluate_serving(model, cluster, cfg, w).perf
        at = at_request_rate(model, cluster, cfg, w, full)
        assert at is not None and at.request_rate == rate
        cycle_s = (at.ttft_ms - full.efficiency.request_overhead_s * 1e3 + (w.osl - 1) * at.tpot_ms) / 1e3
        if at.batch_size >= 1:
            assert at.batch_size == pytest.approx(rate / cfg.replicas * cycle_s, rel=0.02)
        assert at.batch_size < full.batch_size and at.tpot_ms < full.tpot_ms
        seen.append(at)
    assert seen[0].batch_size < seen[1].batch_size < seen[2].batch_size
    assert seen[0].tpot_ms <= seen[1].tpot_ms < seen[2].tpot_ms
    assert (
        at_request_rate(model, cluster, cfg, CHAT, evaluate_serving(model, cluster, cfg, CHAT).perf) is None
    )
    flood = CHAT.model_copy(update={"request_rate": 1e5})
    assert (
        at_request_rate(model, cluster, cfg, flood, evaluate_serving(model, cluster, cfg, flood).perf) is None
    )


def test_poisson_weights_are_a_poisson_count() -> None:
    from autoparallel.perf.serving_steps import poisson_weights

    for mean in (0.0, 0.3, 5.0, 2000.0):
        counts, p = poisson_weights(mean)
        assert p.sum() == pytest.approx(1.0)
        assert counts @ p == pytest.approx(mean, rel=1e-4, abs=1e-9)
        if mean:  # strata (2000: 16 points) keep the spread between their means, most of it
            spread = (counts - mean) ** 2 @ p
            assert mean * (0.9 if len(p) <= 16 else 0.999) < spread <= mean * 1.0001
    assert len(poisson_weights(2000.0)[0]) == 16 and len(poisson_weights(5.0)[0]) < 30


@pytest.mark.parametrize(
    ("engine", "rate"),
    [("vllm", 10.0), ("vllm", 30.0), ("vllm", 45.0), ("trtllm", 45.0), ("sglang", 10.0), ("sglang", 30.0)],
)
def test_the_steady_state_at_a_rate_agrees_with_the_replay_of_those_arrivals(
    engine: str, rate: float
) -> None:
    """Two evaluators of one step model: the analytic steady state at λ requests/s (whole prompts,
    a Poisson count of them per step, each engine's prompt-step policy, Little's law) and the
    step-by-step replay of 4,000 prompts sent at λ (`perf/serving_load.py`). They share only the
    step cost (`rotation_s`) and the policies' tables, and agree within 10 % on the running batch,
    TPOT and TTFT. Spreading the prompt tokens evenly over the steps, as the model did, fails
    this: a step's time is convex in its prompt tokens; vLLM at 45 requests/s gave 8.7 ms where the
    replay measures 14. Near saturation the mean-value model and the replay part
    (SGLang, whose decodes wait out every prompt step, at 45 requests/s: TPOT 27.5 ms against the
    replay's 45), so that is not pinned."""
    from autoparallel import api

    model, cluster = load_model("Qwen/Qwen3-8B"), Cluster.parse("1x1xH100")
    cfg = ServingConfig(max_num_seqs=1024, max_model_len=1024)
    w = Serving(isl=238, osl=202, request_rate=rate, num_prompts=4000)
    plan = api.evaluate(model, cluster, cfg, w, compare=False, engine=engine)
    at, run = plan.at_request_rate, plan.benchmark
    assert at is not None and run is not None
    assert at.batch_size == pytest.approx(run.mean_batch, rel=0.1)
    assert at.tpot_ms == pytest.approx(run.mean_tpot_ms, rel=0.1)
    assert at.ttft_ms == pytest.approx(run.mean_ttft_ms, rel=0.1)


@pytest.mark.parametrize("concurrency", [32, 64])
def test_full_load_under_a_cap_agrees_with_the_replay_of_that_client(concurrency: int) -> None:
    """The closed loop (a client that keeps c ShareGPT requests in flight): the steady state takes a
    Poisson count of whole prompts per step, those replacing the requests that finished, of
    ShareGPT's spread of lengths, and its TPOT is within 5 % of the replay of 4,000 such prompts
    under that cap. An even share of prompt tokens per step gave 7.7 and 8.3 ms where the replay
    measures 8.7 and 10.7; whole prompts of the mean length, 8.2 and 9.9."""
    from autoparallel import api
    from autoparallel.workload import PRESETS

    model, cluster = load_model("Qwen/Qwen3-8B"), Cluster.parse("1x1xH100")
    cfg = ServingConfig(max_num_seqs=1024, max_model_len=2048)
    w = PRESETS["sharegpt"].model_copy(update={"concurrency": concurrency, "num_prompts": 4000})
    plan = api.evaluate(model, cluster, cfg, w, compare=False)
    assert plan.benchmark is not None and plan.perf.batch_size == concurrency
    assert plan.perf.tpot_ms == pytest.approx(plan.benchmark.mean_tpot_ms, rel=0.05)
    assert plan.perf.ttft_ms == pytest.approx(plan.benchmark.mean_ttft_ms, rel=0.1)


def test_nvfp4_gemms_run_on_fp4_tensor_cores_where_the_gpu_has_them() -> None:
    """NVFP4 weights stream at 0.5625 bytes per weight everywhere; their GEMMs run at the FP4 peak on
    Blackwell and as BF16 (vLLM's FP4 Marlin, W4A16) on Hopper."""
    from autoparallel.models.parse_quant import quant_from_config

    base = load_model("meta-llama/Llama-3.1-8B")
    qc = {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16, "exclude_modules": ["lm_head"]}
    nvfp4 = base.model_copy(update={"quantization": quant_from_config({"quantization_config": qc}, "q")})
    shape = ReplicaShape(1, 1, 1, None, "auto", False)
    b200 = Cluster.parse("1x1xB200")

    def step(model: object, cluster: Cluster, fp8: bool = False) -> float:
        s = ReplicaShape(1, 1, 1, "fp8" if fp8 else None, "auto", False)
        t, _ = stage_step_s(
            model,  # type: ignore[arg-type]
            cluster,
            s,
            decode_seqs=1024,
            context_tokens=64,
            prefill_tokens=8192,
            prefill_context=512,
        )
        return t

    assert (
        step(nvfp4, b200) < step(base, b200, fp8=True) < step(base, b200)
    )  # compute-bound: FP4 < FP8 < BF16
    small = dict(decode_seqs=1, context_tokens=64, prefill_tokens=0, prefill_context=0)
    t4, mem4 = stage_step_s(nvfp4, H100, shape, **small)  # type: ignore[arg-type]
    t16, mem16 = stage_step_s(base, H100, shape, **small)  # type: ignore[arg-type]
    assert mem4 and mem16 and t4 < 0.5 * t16  # weight streaming: a quarter of the linear bytes
    assert step(nvfp4, H100) == pytest.approx(step(base, H100), rel=0.1)  # W4A16 at the BF16 peak


def test_sglang_runs_block_fp8_experts_at_tritons_rate() -> None:
    """SGLang 0.5.6 runs block-FP8 MoE on Hopper with its Triton fused-MoE kernel (no DeepEP), which
    reaches about 0.20 of the FP8 peak at prefill sizes where vLLM's experts are charged 0.45: a
    prefill step's expert GEMMs cost more under SGLang; a small decode step streams the same weights."""
    from autoparallel.models.parse_quant import quant_from_config
    from autoparallel.perf.serving_efficiency import TRITON_BLOCK_FP8_FRACTION

    base = load_model("Qwen/Qwen3-30B-A3B")
    qc = {"quant_method": "fp8", "weight_block_size": [128, 128], "activation_scheme": "dynamic"}
    fp8 = base.model_copy(update={"quantization": quant_from_config({"quantization_config": qc}, "q")})
    h100 = H100.model_copy(update={"gpus_per_node": 1})
    assert efficiency_for(h100.gpu, "sglang").block_fp8_moe_flops_fraction == TRITON_BLOCK_FP8_FRACTION
    assert efficiency_for(h100.gpu, "vllm").block_fp8_moe_flops_fraction is None

    def step(model: object, engine: str, **work: float) -> float:
        shape = ReplicaShape(1, 1, 1, "fp8", "auto", False, engine=engine)
        t, _ = stage_step_s(model, h100, shape, **work)  # type: ignore[arg-type]
        return t

    prefill = dict(decode_seqs=0, context_tokens=0, prefill_tokens=8192, prefill_context=1024)
    decode = dict(decode_seqs=4, context_tokens=1024, prefill_tokens=0, prefill_context=0)
    assert step(fp8, "sglang", **prefill) > 1.2 * step(fp8, "vllm", **prefill)
    assert step(fp8, "sglang", **decode) == pytest.approx(step(fp8, "vllm", **decode))
    assert step(base, "sglang", **prefill) == pytest.approx(step(base, "vllm", **prefill))  # BF16 experts


def test_sglang_shards_experts_by_all_reduce_not_all_to_all() -> None:
    """SGLang without DeepEP moves no token by all-to-all: with attention DP every layer gathers the DP
    ranks' hidden states and scatters the MLP output (two all-reduces of the gathered buffer in a
    step with prompt tokens, one all-gather + reduce-scatter in a decode step); without it the MoE
    output is all-reduced over TP. FP8 dispatch and dispatch overlap, all-to-all options, change
    nothing there."""
    from autoparallel.perf import comm
    from autoparallel.perf.serving_facts import model_facts
    from autoparallel.perf.serving_steps import _comm_parts_s, _link

    model, cluster = load_model("deepseek-ai/DeepSeek-V3"), Cluster.parse("1x8xH200")
    f = model_facts(model, None)
    dp8 = ReplicaShape(1, 1, 8, None, "auto", False, engine="sglang")
    msg = 1024 * f.hidden * 2.0
    ar = comm.all_reduce_s(8 * msg, 8, _link(cluster, 8, 1))
    assert _comm_parts_s(cluster, dp8, f, 1.0, 1024, 1024) == pytest.approx((0.0, 2 * f.layers * ar))
    assert _comm_parts_s(cluster, dp8, f, 1.0, 1024, 0) == pytest.approx((0.0, f.layers * ar))
    mixed = _comm_parts_s(cluster, dp8, f, 1.0, 1024, 512)[1]  # each part its own way
    assert f.layers * ar < mixed < 2 * f.layers * ar
    tp8 = ReplicaShape(8, 1, 8, None, "auto", False, engine="sglang")
    tp_ar = comm.all_reduce_s(msg, 8, _link(cluster, 8, 1))
    assert _comm_parts_s(cluster, tp8, f, 1.0, 1024, 1024) == pytest.approx((2 * f.layers * tp_ar, 0.0))
    vllm = ReplicaShape(1, 1, 8, None, "auto", False)
    assert _comm_parts_s(cluster, vllm, f, 1.0, 1024, 1024) == _comm_parts_s(cluster, vllm, f, 1.0, 1024, 0)

    def step(**extra: object) -> float:
        shape = ReplicaShape(1, 1, 8, None, "auto", False, engine="sglang", **extra)  # type: ignore[arg-type]
        t, _ = stage_step_s(
            model, cluster, shape, decode_seqs=128, context_tokens=1100, prefill_tokens=0, prefill_context=0
        )
        return t

    assert step() == step(fp8_dispatch=True)


def test_a_decode_step_reads_and_writes_the_linear_attention_state() -> None:
    """Qwen3-Next's 36 Gated DeltaNet layers keep a recurrent state per sequence (32 value heads x
    128 x 128 SSM, plus a 3 x 8192 convolution state), which a decode step reads and writes back:
    at TP4 vLLM keeps it in BF16, SGLang its SSM part in float32. A transformer has none."""
    from autoparallel.hardware import get_gpu
    from autoparallel.perf.serving_facts import linear_state_bytes_per_sequence_per_gpu
    from autoparallel.perf.serving_steps import ReplicaShape, stage_step_s

    nxt = load_model("Qwen/Qwen3-Next-80B-A3B-Instruct")
    conv, ssm = 3 * 8192 // 4, 32 * 128 * 128 // 4
    assert linear_state_bytes_per_sequence_per_gpu(nxt, 4, 1, engine="vllm") == 36 * (2 * conv + 2 * ssm)
    assert linear_state_bytes_per_sequence_per_gpu(nxt, 4, 1, engine="sglang") == 36 * (2 * conv + 4 * ssm)
    assert linear_state_bytes_per_sequence_per_gpu(load_model("Qwen/Qwen3-8B"), 4, 1, engine="vllm") == 0.0
    cluster = Cluster.from_shape(nodes=1, gpus_per_node=4, gpu=get_gpu("H200"))
    shape = ReplicaShape(
        tp=4, pp=1, ep_ranks=1, quantization=None, kv_cache_dtype="auto", enforce_eager=False
    )

    def step(seqs: int) -> float:
        return stage_step_s(
            nxt, cluster, shape, decode_seqs=seqs, context_tokens=1, prefill_tokens=0, prefill_context=0
        )[0]

    # 256 more sequences move at least their state twice through HBM (a 1-token context adds ~no KV).
    state = linear_state_bytes_per_sequence_per_gpu(nxt, 4, 1, engine="vllm")
    assert step(512) - step(256) >= 2 * 256 * state / (cluster.gpu.hbm_tbps * 1e12)


def test_the_sampler_moves_every_decode_sequences_logits() -> None:
    """After the LM head, a greedy step moves each decode sequence's logits through HBM: 12 bytes per
    vocabulary entry on vLLM and SGLang (bf16 written and read, float32 written and read by argmax),
    the 4-byte floor on TensorRT-LLM; with tensor parallelism the vocabulary slices are all-gathered
    first. Llama 4's 202,048-token vocabulary at 1,024 sequences is 2.5 GB a step on vLLM."""
    maverick = load_model("meta-llama/Llama-4-Maverick-17B-128E-Instruct")
    cluster = Cluster.from_shape(nodes=1, gpus_per_node=8, gpu=H100.gpu)
    one = ReplicaShape(1, 1, 1, None, "auto", False)
    hbm = H100.gpu.hbm_tbps * 1e12 * efficiency_for(H100.gpu).hbm_fraction
    vllm_s = sampler_s(maverick, cluster, one, 1024)
    assert vllm_s == pytest.approx(1024 * 202048 * 12 / hbm, rel=1e-12)
    assert sampler_s(maverick, cluster, replace(one, engine="sglang"), 1024) == pytest.approx(vllm_s)
    assert sampler_s(maverick, cluster, replace(one, engine="trtllm"), 1024) == pytest.approx(vllm_s / 3)
    assert sampler_s(maverick, cluster, replace(one, tp=8), 1024) > vllm_s  # + the all-gather
    assert sampler_s(load_model("meta-llama/Llama-3.1-8B"), cluster, one, 1024) == pytest.approx(
        vllm_s * 128256 / 202048
    )


# ----- the scheduler's host time per running request ----------------------------------------------
def test_vllm_schedules_asynchronously_from_0_14_and_with_pipeline_stages_from_0_15() -> None:
    assert not vllm_async_scheduling("v0.13.0")
    assert not vllm_async_scheduling("0.11.0")
    assert vllm_async_scheduling("0.14.0")
    assert vllm_async_scheduling("0.32")
    # Pipeline stages: not in 0.14 (its release notes), from 0.15 on.
    assert not vllm_async_scheduling("0.14.0", pp=2)
    assert vllm_async_scheduling("0.15.0", pp=2) and vllm_async_scheduling("0.32", pp=4)
    config = ServingConfig(tp=1, pp=1, max_num_seqs=256, max_model_len=4096)
    assert not ReplicaShape.of(config, "0.13.0").async_scheduling
    assert ReplicaShape.of(config).async_scheduling


def test_synchronous_scheduling_adds_the_scheduler_pass_to_every_step() -> None:
    """vLLM before 0.14 schedules between GPU steps: the step grows by the measured scheduler time per
    running request; from 0.14 it hides under a GPU step longer than itself."""
    eff = efficiency_for(H100.gpu)
    assert eff.request_step_overhead_s > 0
    for batch in (8.0, 256.0):
        sync = _times("meta-llama/Llama-3.1-8B", H100, batch, decode_only=True, async_scheduling=False)
        hidden = _times("meta-llama/Llama-3.1-8B", H100, batch, decode_only=True)
        assert sync - hidden == pytest.approx(eff.request_step_overhead_s * batch, rel=1e-6)
        # The same with pipeline stages: the shape says how the release schedules them.
        staged = _times("meta-llama/Llama-3.1-8B", H100, batch, decode_only=True, pp=2)
        staged_sync = _times(
            "meta-llama/Llama-3.1-8B", H100, batch, decode_only=True, pp=2, async_scheduling=False
        )
        assert staged_sync > staged
    # Where the scheduler outlasts the GPU step, the asynchronous step lasts as long as the scheduler.
    tiny = load_model("Qwen/Qwen3-0.6B")
    shape = ReplicaShape(1, 1, 1, None, "auto", False)
    work = {"decode_seqs": 4096, "context_tokens": 64, "prefill_tokens": 0, "prefill_context": 0}
    gpu_only = stage_step_s(tiny, H100, shape, **work)[0] + sampler_s(tiny, H100, shape, 4096)
    step, _ = rotation_s(tiny, H100, shape, **work)
    scheduler_s = eff.request_step_overhead_s * 4096
    assert scheduler_s > gpu_only  # the case this checks: the pass outlasts the GPU step
    assert step == pytest.approx(scheduler_s + eff.step_overhead_s, rel=1e-9)


def test_sglang_overlaps_its_scheduler_pass_except_with_stages_or_mamba_caches() -> None:
    """SGLang's measured pass (a quarter of vLLM's) hides under the GPU step with its overlap scheduler,
    which 0.5.6 turns off with pipeline stages and for Qwen3-Next (its Mamba radix cache): there the
    pass adds to every step."""
    from autoparallel.perf.serving_efficiency import SCHEDULER_S_PER_REQUEST

    per_request = efficiency_for(H100.gpu, "sglang").request_step_overhead_s
    assert per_request == SCHEDULER_S_PER_REQUEST["sglang"] < SCHEDULER_S_PER_REQUEST["vllm"]
    work = {"decode_seqs": 256.0, "context_tokens": 1024, "prefill_tokens": 0, "prefill_context": 0}
    eight = load_model("meta-llama/Llama-3.1-8B")
    for model, pp, ahead in (
        (eight, 1, True),
        (eight, 2, False),
        (load_model("Qwen/Qwen3-Next-80B-A3B-Instruct"), 1, False),
    ):
        cluster = Cluster.from_shape(nodes=1, gpus_per_node=8, gpu=H100.gpu)
        shape = ReplicaShape(4 if pp == 1 else 2, pp, 1, None, "auto", False, engine="sglang")
        assert schedules_ahead(model, shape) is ahead
        step, _ = rotation_s(model, cluster, shape, **work)
        facts = model_facts(model, None, load_dtype(model, cluster.gpu, "sglang"))
        gpu_s = (
            pp * stage_step_s(model, cluster, shape, **work)[0]
            + (pp - 1) * _hop_s(cluster, shape, facts, 256.0)
            + sampler_s(model, cluster, shape, 256.0)
        )
        host_s = per_request * 256.0
        expected = max(gpu_s, host_s) if ahead else gpu_s + host_s
        assert step == pytest.approx(expected + efficiency_for(H100.gpu, "sglang").step_overhead_s, rel=1e-9)


@pytest.mark.parametrize("osl", [2, 16, 40])
def test_full_load_with_short_outputs_keeps_to_the_token_budget(osl: int) -> None:
    """A closed loop replaces each finished request with a prompt: past budget · osl / (isl + osl)
    decoding sequences the prompts outrun the budget. The rotation past the budget was credited a
    token per decode per step while its work counted each decode once, so the loop ran away: 62
    tokens/s at osl 40 where the replay of the same requests (`serving_load`) gives 1,031."""
    import autoparallel as ap

    work = ap.Serving(isl=1024, osl=osl, num_prompts=2000)
    ev = ap.with_benchmark(
        ap.evaluate("Qwen/Qwen3-8B", "1x1xH100", ap.ServingConfig(max_model_len=2048), work)
    )
    assert ev.benchmark is not None
    assert ev.perf.output_tokens_per_s == pytest.approx(ev.benchmark.output_tokens_per_s, rel=0.1)


def test_the_running_set_holds_long_outputs_longer() -> None:
    """Requests run for their osl steps, so the running set samples them in proportion to their
    output length: ShareGPT's running context is 480 tokens, not isl + osl/2 = 339. One H100 was
    planned to hold 1,121 such sequences (the replay peaks at 849) and to sustain 48 requests/s,
    where its own replay of those arrivals queues without end."""
    import autoparallel as ap

    share = ap.Serving.preset("sharegpt")
    assert share.running_context == pytest.approx(480, rel=0.02)
    fixed = ap.Serving(isl=238, osl=202)
    assert fixed.running_context == 238 + 101
    ev = ap.evaluate(
        "Qwen/Qwen3-8B", "1x1xH100", ap.ServingConfig(), share.model_copy(update={"request_rate": 48.0})
    )
    assert any("arrival rate 48" in p for p in ev.problems)
    assert ev.perf.kv_capacity_seqs < 900


def test_tensorrt_reserves_each_running_requests_whole_output() -> None:
    """TensorRT-LLM's GUARANTEED_NO_EVICT scheduler admits a request with the blocks of its prompt and
    whole output (`SCHEDULING` no_evict, as the replay reserves them): Llama 3.1 70B on 2 H100s holds
    60,352 tokens, 29 requests of ceil(2000 / 32) × 32, not 40 of the running context isl + osl/2.
    SGLang keeps the running context; spread outputs weight the reserve by output length."""
    from autoparallel.perf.serving_engines import evaluate_engine, held_tokens

    model, cluster = load_model("meta-llama/Llama-3.1-70B"), Cluster.parse("1x2xH100")
    work = Serving(isl=1000, osl=1000)
    ev = evaluate_engine(model, cluster, ServingConfig(tp=2, max_num_seqs=512), work, "trtllm", "m")
    assert ev.memory.kv_cache_tokens == 60352
    assert (ev.perf.kv_capacity_seqs, ev.perf.batch_limit) == (60352 // 2016, "kv_cache")
    assert held_tokens(work, "sglang", 1) == 1500
    spread = work.model_copy(update={"osl_cv": 1.0})
    assert held_tokens(spread, "trtllm", 32) == 3008  # 1000 + 1000 · (1 + 1), in 32-token blocks


def test_an_engine_pool_shorter_than_max_model_len_caps_requests_instead_of_refusing_to_start() -> None:
    """SGLang starts with a pool under its context length and caps requests there (`tp_worker`
    `max_req_len`); TensorRT-LLM lowers `max_seq_len` to the pool. Gemma 3 27B on one H100 at 131,072
    tokens holds about 31,000 tokens under SGLang and 51,000 under TensorRT-LLM: a 2,500-token
    workload fits both, a 91,000-token one neither."""
    from autoparallel.perf.serving_engines import evaluate_engine

    model, cluster = load_model("google/gemma-3-27b-it"), Cluster.parse("1x1xH100")
    config = ServingConfig(max_model_len=131072, max_num_seqs=8)
    for engine in ("sglang", "trtllm"):
        short = evaluate_engine(model, cluster, config, Serving(isl=2000, osl=500), engine, "m")
        assert short.fits and short.memory.kv_cache_tokens < 131072
        long = evaluate_engine(model, cluster, config, Serving(isl=90000, osl=1000), engine, "m")
        assert not long.fits and "caps a request" in long.problems[0]


def test_the_steady_state_decodes_within_the_cuda_graphs_reach_as_the_replay_does() -> None:
    """The replay padded a TensorRT-LLM decode batch to its captured size and ran a batch above the
    largest capture without graphs; the steady state (the planner's tables, `evaluate`) did neither:
    batch 300 priced at 300 rows where TensorRT-LLM runs its 512 graph."""
    from autoparallel.perf.serving_steps import ReplicaShape, replica_step_times

    model, cluster = load_model("meta-llama/Llama-3.1-8B-Instruct"), Cluster.parse("1x1xH100")
    base = ReplicaShape(1, 1, 1, None, "auto", False, engine="trtllm")

    def decode_ms(shape: ReplicaShape, batch: float) -> float:
        times = replica_step_times(model, cluster, shape, batch=batch, isl=512, osl=1024, batched_tokens=8192)
        return times.decode_s * 1e3

    plain = decode_ms(base, 300.0)
    padded = decode_ms(replace(base, graph_sizes=(256, 512, 1024)), 300.0)
    assert plain * 1.1 < padded < decode_ms(base, 512.0)  # GEMMs at 512 rows, attention over 300
    captured = decode_ms(replace(base, graph_max_batch=512), 300.0)
    eager = decode_ms(replace(base, graph_max_batch=256), 300.0)
    assert captured == pytest.approx(plain) and eager > plain


def test_sglang_attention_dp_reads_its_mlps_sharded_over_the_whole_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SGLang's attention DP runs the dense MLPs, shared experts and LM head over tp x dp (as its memory
    rule holds them); the step read them as sharded over the attention TP alone (DeepSeek-V3 DP8:
    about 4.9 GB per step too many)."""
    import autoparallel.perf.serving_steps as steps

    model, cluster = load_model("deepseek-ai/DeepSeek-V3"), Cluster.parse("1x8xH200")
    shape = steps.ReplicaShape(1, 1, 8, None, "auto", False, engine="sglang")

    def decode_s() -> float:
        return steps.replica_step_times(
            model, cluster, shape, batch=64.0, isl=1000, osl=1000, batched_tokens=8192
        ).decode_s

    facts = model_facts(model, None, load_dtype(model, cluster.gpu, "sglang"))
    assert facts.mlp_bytes > 3e9  # DeepSeek-V3 FP8: three dense layers and 58 shared experts
    sharded = decode_s()
    steps._STEP_TIMES.clear()
    monkeypatch.setattr(steps, "model_facts", lambda *a, **k: replace(facts, mlp_bytes=0.0))
    assert decode_s() > sharded


def test_an_evaluation_does_not_depend_on_what_was_evaluated_before() -> None:
    """The KV layout is memoized: its key holds everything it reads. Outputs of spread lengths raise
    the running context (`Serving.running_context`), and two custom GPUs may share a name; keyed on
    (isl, osl) and the GPU's name, an evaluation returned the layout of the call before it (1,121
    sequences for 881; a solve then failed the tables-vs-float check)."""
    from autoparallel.api import evaluate
    from autoparallel.hardware import GPU, get_gpu
    from autoparallel.perf import serving

    config = ServingConfig(tp=1, max_num_seqs=1024)
    spread = Serving(isl=238, osl=202, osl_cv=1.0)
    h100 = get_gpu("H100")
    half = h100.model_copy(update={"memory_gib": h100.memory_gib / 2})

    def seqs(workload: Serving, gpu: GPU = h100) -> int:
        cluster = Cluster.from_shape(nodes=1, gpus_per_node=2, gpu=gpu)
        return evaluate("Qwen/Qwen3-8B", cluster, config, workload, compare=False).perf.kv_capacity_seqs

    serving._LAYOUTS.clear()
    alone, alone_half = seqs(spread), seqs(spread, half)
    serving._LAYOUTS.clear()
    seqs(Serving(isl=238, osl=202))
    assert seqs(spread) == alone
    serving._LAYOUTS.clear()
    seqs(spread)
    assert seqs(spread, half) == alone_half


def test_a_prompt_in_a_pipeline_takes_at_least_its_prefill_alone() -> None:
    """A rotation spreads its prompts over the micro-batches in flight, but a new request's prompt
    rides whole in its own: Qwen3-32B tp4 pp2 at 2 running sequences gave a first token 28.5 ms after
    arrival, faster than its 1,024-token prompt alone through both stages (44.7 ms)."""
    model = load_model("Qwen/Qwen3-32B")
    for batch in (1.0, 2.0, 16.0):
        times = replica_step_times(
            model,
            H100,
            ReplicaShape(4, 2, 1, None, "auto", False),
            batch=batch,
            isl=1024,
            osl=256,
            batched_tokens=8192,
        )
        assert times.ttft_s >= times.prefill_s, batch


def test_one_client_decodes_alike_on_one_replica_or_eight() -> None:
    """One request in flight over eight replicas ran each at a batch of 1/8: TPOT 7.63 ms where one
    replica gives 12.20 (a lone request decodes at a batch of one wherever it runs)."""
    from autoparallel import api

    w = Serving(isl=100000, osl=512, concurrency=1)
    one, eight = (
        api.evaluate("meta-llama/Llama-3.1-8B", c, ServingConfig(replicas=r), w, compare=False).perf
        for c, r in (("1xH100", 1), ("1x8xH100", 8))
    )
    assert eight.tpot_ms == pytest.approx(one.tpot_ms) and eight.output_tokens_per_s == pytest.approx(
        one.output_tokens_per_s
    )


def test_a_finite_benchmark_never_runs_more_than_its_prompts() -> None:
    """1,000 prompts sent at once cannot keep 16 x 256 slots busy: the plan claimed 106,791 tokens/s
    at a batch its own replay never reached (peak 63), where 8 x 125 replays 18 % faster. The
    prompts cap the requests in flight (`Serving.in_flight`), as a client's concurrency does."""
    from autoparallel import api

    w = Serving.preset("batch")
    assert w.in_flight == 1000 and w.closed_loop is None  # a drain, not a closed loop
    assert w.model_copy(update={"request_rate": 5.0}).closed_loop is None
    plan = api.solve("meta-llama/Llama-3.1-8B", "2x8xH100", w)
    assert plan.config.replicas * plan.config.max_num_seqs <= 1000
    at = api.evaluate("meta-llama/Llama-3.1-8B", "2x8xH100", ServingConfig(replicas=16, max_num_seqs=256), w)
    assert at.perf.batch_size == pytest.approx(1000 / 16)


def test_prompts_sent_at_once_drain_their_queue() -> None:
    """1,000 ShareGPT prompts at once on an engine of 64 slots: nothing replaces a finished request,
    so the k-th queued waits k completions (a drain, mean (n − b)(n − b + 1) / 2n), not the
    (n − b) a closed loop of 1,000 clients waits (44 s where the replay measured 26 s on a fixed
    1024/256 shape). Spread lengths run no waves, and the mean agrees with the replay."""
    from autoparallel import api

    w = Serving.preset("sharegpt")
    assert w.closed_loop is None and w.model_copy(update={"concurrency": 1000}).closed_loop == 1000
    plan = api.evaluate("Qwen/Qwen3-8B", "1xH100", ServingConfig(max_num_seqs=64), w)
    assert plan.benchmark is not None
    assert plan.perf.ttft_ms == pytest.approx(plan.benchmark.mean_ttft_ms, rel=0.1)


def test_one_client_on_aligned_ranks_decodes_at_a_pure_step() -> None:
    """One client over a DP4 + EP engine: its rank steps at a batch of one, and the three other
    ranks hold nobody, so no prompt of theirs stretches its steps (TPOT was 4.09 ms against a 3.92 ms
    decode step, the replay's 3.92: each idle rank was charged a request's prompts)."""
    from autoparallel import api

    w = Serving(isl=1024, osl=256, concurrency=1)
    cfg = ServingConfig(replicas=4, enable_expert_parallel=True, max_num_seqs=64, max_model_len=2048)
    perf = api.evaluate("Qwen/Qwen3-30B-A3B", "1x4xH100", cfg, w, compare=False).perf
    assert perf.tpot_ms == pytest.approx(perf.decode_step_ms, rel=1e-6)
