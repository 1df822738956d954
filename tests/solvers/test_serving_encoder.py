"""The serving CP-SAT model, one constraint family at a time, on tiny models (feasible / infeasible)."""

from __future__ import annotations

import pytest

from autoparallel.errors import InfeasibleError, InternalError, SolverTimeoutError
from autoparallel.hardware import Cluster
from autoparallel.models import ModelSpec, load_model, spec_from_config
from autoparallel.solvers.driver import set_objective
from autoparallel.solvers.serving.decoder import decode
from autoparallel.solvers.serving.encoder import build
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import ServingOptions, build_space
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

SMALL = ServingOptions(max_num_seqs=(1, 4, 16, 64, 256))
SETTINGS = SolverSettings(workers=1, seed=0, time_limit_s=10.0)


def _tiny(**overrides: object) -> ModelSpec:
    config: dict[str, object] = dict(
        model_type="llama",
        architectures=["LlamaForCausalLM"],
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        vocab_size=32000,
        max_position_embeddings=16384,
        torch_dtype="bfloat16",
        tie_word_embeddings=False,
        rms_norm_eps=1e-5,
        head_dim=128,
    )
    config.update(overrides)
    return spec_from_config(config, name="tiny-llama")


def _tiny_moe() -> ModelSpec:
    return spec_from_config(
        dict(
            model_type="mixtral",
            architectures=["MixtralForCausalLM"],
            hidden_size=1024,
            intermediate_size=2048,
            num_hidden_layers=4,
            num_attention_heads=8,
            num_key_value_heads=4,
            vocab_size=32000,
            max_position_embeddings=16384,
            torch_dtype="bfloat16",
            tie_word_embeddings=False,
            num_local_experts=8,
            num_experts_per_tok=2,
            rms_norm_eps=1e-5,
        ),
        name="tiny-moe",
    )


def _reasons(exc: pytest.ExceptionInfo[InfeasibleError]) -> list[str]:
    return [r.split(":", 1)[0] for r in exc.value.reasons]


# ----- feasible baseline --------------------------------------------------------------------------
def test_tiny_model_feasible_and_checked_by_the_float_model() -> None:
    sol = solve_serving(
        _tiny(), Cluster.parse("1x2xL4"), Serving(isl=512, osl=128), options=SMALL, settings=SETTINGS
    )
    assert sol.solver.status == "OPTIMAL" and sol.solver.gap == 0
    assert sol.estimate.fits and sol.estimate.perf.batch_size == sol.config.max_num_seqs
    assert sol.config.gpus <= 2
    assert sol.objective_value == pytest.approx(sol.estimate.perf.output_tokens_per_s)
    assert sol.settings == SETTINGS and sol.solver.seed == 0 and sol.solver.workers == 1


# ----- one family at a time -----------------------------------------------------------------------
def test_memory_family_infeasible_names_weights_with_numbers() -> None:
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(
            load_model("meta-llama/Llama-3.1-405B"),
            Cluster.parse("1x4xL4"),
            Serving.preset("chatbot"),
            settings=SETTINGS,
        )
    assert _reasons(exc) == ["memory"]
    text = str(exc.value)
    assert "weights alone need" in text and "GiB" in text and "4×L4" in text and "0.92" in text


def test_memory_family_limits_the_batch() -> None:
    # Llama-3.1-8B on one L4: weights fit, the KV cache holds only a few long sequences.
    w = Serving(isl=8192, osl=1024)
    sol = solve_serving(
        load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x1xL4"), w, options=SMALL, settings=SETTINGS
    )
    assert sol.config.max_num_seqs < 256
    assert any(b.startswith("kv_cache") for b in sol.binding)
    assert sol.estimate.perf.kv_capacity_seqs >= sol.config.max_num_seqs


def test_max_model_len_family() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    w = Serving(isl=1024, osl=256)
    ok = solve_serving(model, Cluster.parse("1x1xL4"), w, options=SMALL, settings=SETTINGS)
    assert ok.config.max_model_len == w.context_len
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(
            model,
            Cluster.parse("1x1xL4"),
            w,
            settings=SETTINGS,
            options=SMALL.model_copy(update={"max_model_lens": (131072,)}),
        )
    assert _reasons(exc) == ["max_model_len"]


def test_context_beyond_the_model_is_infeasible() -> None:
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(_tiny(), Cluster.parse("1x1xH100"), Serving(isl=20000, osl=100), settings=SETTINGS)
    assert _reasons(exc) == ["max_model_len"]


def test_architecture_family() -> None:
    odd = _tiny(num_attention_heads=6, num_key_value_heads=6, head_dim=128)
    w = Serving(isl=512, osl=128)
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(
            odd,
            Cluster.parse("1x8xH100"),
            w,
            settings=SETTINGS,
            options=SMALL.model_copy(update={"tp_values": (4,)}),
        )
    assert _reasons(exc) == ["tp_divides_heads"]
    assert "6 attention heads are not divisible by tp=4" in str(exc.value)
    sol = solve_serving(odd, Cluster.parse("1x8xH100"), w, options=SMALL, settings=SETTINGS)
    assert 6 % sol.config.tp == 0


@pytest.mark.parametrize("limit_ms, feasible", [(2.0, False), (200.0, True)])
def test_tpot_slo_family(limit_ms: float, feasible: bool) -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    w = Serving(isl=1024, osl=256, tpot_ms=limit_ms)
    if feasible:
        sol = solve_serving(model, Cluster.parse("1x1xH100"), w, options=SMALL, settings=SETTINGS)
        assert sol.estimate.perf.tpot_ms <= limit_ms
    else:
        with pytest.raises(InfeasibleError) as exc:
            solve_serving(model, Cluster.parse("1x1xH100"), w, options=SMALL, settings=SETTINGS)
        assert _reasons(exc) == ["tpot_slo"]
        assert "2 ms" in exc.value.reasons[0]


@pytest.mark.parametrize("limit_ms, feasible", [(1.0, False), (5000.0, True)])
def test_ttft_slo_family(limit_ms: float, feasible: bool) -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    w = Serving(isl=4096, osl=256, ttft_ms=limit_ms)
    if feasible:
        sol = solve_serving(model, Cluster.parse("1x2xH100"), w, options=SMALL, settings=SETTINGS)
        assert sol.estimate.perf.ttft_ms <= limit_ms
    else:
        with pytest.raises(InfeasibleError) as exc:
            solve_serving(model, Cluster.parse("1x2xH100"), w, options=SMALL, settings=SETTINGS)
        assert _reasons(exc) == ["ttft_slo"]


@pytest.mark.parametrize("rate, feasible", [(1e4, False), (1.0, True)])
def test_request_rate_family(rate: float, feasible: bool) -> None:
    w = Serving(isl=512, osl=128, request_rate=rate)
    if feasible:
        sol = solve_serving(_tiny(), Cluster.parse("1x1xL4"), w, options=SMALL, settings=SETTINGS)
        assert sol.estimate.perf.requests_per_s >= rate
    else:
        with pytest.raises(InfeasibleError) as exc:
            solve_serving(_tiny(), Cluster.parse("1x1xL4"), w, options=SMALL, settings=SETTINGS)
        assert _reasons(exc) == ["request_rate"]


def test_concurrency_family_fills_every_replica_and_runs_the_share() -> None:
    """Replicas ≤ ⌈C / max_num_seqs⌉ (no replica idles) and each runs min(max_num_seqs, C / replicas)."""
    w = Serving(isl=512, osl=128, concurrency=6)
    sol = solve_serving(_tiny(), Cluster.parse("1x4xL4"), w, options=SMALL, settings=SETTINGS)
    b, r = sol.config.max_num_seqs, sol.config.replicas
    assert b * (r - 1) < 6
    assert sol.estimate.perf.batch_size == min(b, 6 / r)


def test_an_uneven_share_runs_every_client() -> None:
    """15 clients on two replicas: max_num_seqs 8 runs 8 and 7 (7.5 each), none queued; the old rule
    (max_num_seqs × replicas ≤ 15) ran 7 and 7 with one waiting a whole request in the queue."""
    w = Serving(isl=512, osl=128, concurrency=15, ttft_ms=None, tpot_ms=None)
    options = SMALL.model_copy(update={"max_num_seqs": (7, 8, 12), "tp_values": (1,)})
    sol = solve_serving(_tiny(), Cluster.parse("1x2xL4"), w, options=options, settings=SETTINGS)
    assert (sol.config.replicas, sol.config.max_num_seqs) == (2, 8)  # not 12: it runs no more
    assert sol.estimate.perf.batch_size == 7.5
    assert any(b.startswith("concurrency") and "runs no more" in b for b in sol.binding)


def test_replicas_fill_the_cluster_for_throughput() -> None:
    sol = solve_serving(
        _tiny(), Cluster.parse("1x4xL4"), Serving(isl=512, osl=128), options=SMALL, settings=SETTINGS
    )
    assert sol.config.gpus == 4
    assert any(b.startswith("gpus") for b in sol.binding)


def test_expert_parallel_shapes_fix_replicas_to_the_ep_group() -> None:
    model = _tiny_moe()
    space = build_space(model, Cluster.parse("1x8xH100"), Serving(isl=512, osl=128), SMALL)
    ep = [s for s in space.shapes if s.ep]
    assert ep and all(s.tp * s.ep_replicas <= 8 and not s.violations for s in ep)
    forced = SMALL.model_copy(update={"tp_values": (1,), "pp_values": (1,)})
    sol = solve_serving(
        model, Cluster.parse("1x8xH100"), Serving(isl=512, osl=128), options=forced, settings=SETTINGS
    )
    assert sol.config.tp == 1 and sol.config.replicas == 8
    dense = build_space(_tiny(), Cluster.parse("1x8xH100"), Serving(isl=512, osl=128), SMALL)
    assert not any(s.ep for s in dense.shapes)


def test_runtime_knobs_quantization_kv_dtype_and_eager() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    w = Serving(isl=8192, osl=1024)
    opts = SMALL.model_copy(update={"kv_cache_dtypes": ("auto", "fp8"), "quantizations": (None, "fp8")})
    sol = solve_serving(model, Cluster.parse("1x1xL4"), w, options=opts, settings=SETTINGS)
    plain = solve_serving(model, Cluster.parse("1x1xL4"), w, options=SMALL, settings=SETTINGS)
    assert sol.config.kv_cache_dtype == "fp8" or sol.config.quantization == "fp8"
    assert sol.objective_value > plain.objective_value
    eager_only = SMALL.model_copy(update={"enforce_eager": (True,)})
    eager = solve_serving(model, Cluster.parse("1x1xL4"), w, options=eager_only, settings=SETTINGS)
    assert eager.config.enforce_eager and eager.estimate.memory.cuda_graph_gib == 0


# ----- objectives, decoding, solver status ----------------------------------------------------------
@pytest.mark.parametrize(
    "objective",
    ["throughput", "ttft", "tpot", "cost", "memory", ("tpot", "cost"), {"throughput": 1.0, "tpot": 1.0}],
)
def test_objectives(objective: object) -> None:
    sol = solve_serving(
        _tiny(),
        Cluster.parse("1x2xL4"),
        Serving(isl=512, osl=128),
        options=SMALL,
        objective=objective,
        settings=SETTINGS,
        runner_up=False,
    )  # type: ignore[arg-type]
    assert sol.estimate.fits


def test_single_objectives_pull_the_batch_apart() -> None:
    args = (_tiny(), Cluster.parse("1x2xL4"), Serving(isl=512, osl=128))
    fast = solve_serving(*args, objective="tpot", options=SMALL, settings=SETTINGS)
    busy = solve_serving(*args, objective="throughput", options=SMALL, settings=SETTINGS)
    assert fast.config.max_num_seqs == 1 and busy.config.max_num_seqs == 256
    assert fast.estimate.perf.tpot_ms < busy.estimate.perf.tpot_ms


def test_lexicographic_tolerance_trades_primary_for_secondary() -> None:
    args = (_tiny(), Cluster.parse("1x2xL4"), Serving(isl=512, osl=128))
    exact = solve_serving(*args, objective="tpot", options=SMALL, settings=SETTINGS)
    loose = solve_serving(
        *args,
        objective="tpot",
        options=SMALL,
        settings=SETTINGS.model_copy(update={"lexicographic_tolerance": 0.5}),
    )
    assert loose.estimate.perf.tpot_ms <= exact.estimate.perf.tpot_ms * 1.5 + 1e-6
    assert loose.estimate.perf.output_tokens_per_s >= exact.estimate.perf.output_tokens_per_s


def test_runner_up_has_another_shape_and_says_why() -> None:
    sol = solve_serving(
        load_model("meta-llama/Llama-3.1-8B"),
        Cluster.parse("1x4xH100"),
        Serving.preset("chatbot"),
        options=SMALL,
        settings=SETTINGS,
    )
    assert sol.runner_up is not None
    a, b = sol.config, sol.runner_up.config
    assert (a.tp, a.pp, a.enable_expert_parallel) != (b.tp, b.pp, b.enable_expert_parallel)
    assert "throughput" in sol.runner_up.why_lost
    assert sol.runner_up.estimate.perf.output_tokens_per_s <= sol.estimate.perf.output_tokens_per_s + 1e-6


def test_deterministic_for_fixed_settings() -> None:
    args = (load_model("meta-llama/Llama-3.1-8B"), Cluster.parse("1x8xH100"), Serving.preset("chatbot"))
    one = solve_serving(*args, options=SMALL, settings=SETTINGS)
    two = solve_serving(*args, options=SMALL, settings=SETTINGS)
    multi = solve_serving(*args, options=SMALL, settings=SETTINGS.model_copy(update={"workers": 2}))
    assert one.config == two.config
    assert multi.objective_value == pytest.approx(one.objective_value)


def test_decoder_raises_when_tables_and_float_model_disagree() -> None:
    space = build_space(_tiny(), Cluster.parse("1x1xL4"), Serving(isl=512, osl=128), SMALL)
    enc = build(space)
    set_objective(enc, "tpot")
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    assert solver.solve(enc.model) == cp_model.OPTIMAL
    point = enc.read(solver)
    decode(space, point)  # consistent
    space.tables.step_us[point.entry(space)] += 1000
    with pytest.raises(InternalError, match="TPOT"):
        decode(space, point)


def test_time_limit_maps_to_timeout_or_a_solution() -> None:
    tiny_limit = SolverSettings(time_limit_s=1e-6)
    try:
        sol = solve_serving(
            _tiny(),
            Cluster.parse("1x2xL4"),
            Serving(isl=512, osl=128),
            options=SMALL,
            settings=tiny_limit,
            runner_up=False,
        )
    except SolverTimeoutError:
        return
    assert sol.solver.status in ("OPTIMAL", "FEASIBLE")
    assert sol.solver.time_limit_s == 1e-6


@pytest.mark.parametrize(
    "model, cluster, shape_filter, runtime",
    [
        ("meta-llama/Llama-3.1-8B", "1x1xL4", lambda s: s.tp == 1, dict()),
        (
            "meta-llama/Llama-3.1-70B",
            "1x8xH100",
            lambda s: (s.tp, s.pp) == (2, 4),
            dict(enforce_eager=(True,)),
        ),
        (
            "Qwen/Qwen3-30B-A3B",
            "1x8xH100",
            lambda s: s.ep and s.ep_replicas == 4,
            dict(kv_cache_dtypes=("fp8",)),
        ),
        ("google/gemma-2-9b", "1x2xL4", lambda s: s.pp == 2, dict(quantizations=("fp8",))),
        ("deepseek-ai/DeepSeek-V3", "2x8xH200", lambda s: (s.tp, s.pp) == (8, 2), dict()),
    ],
)
def test_memory_terms_match_serving_memory(
    model: str, cluster: str, shape_filter: object, runtime: dict[str, object]
) -> None:
    """The tables' per-term sum equals vLLM's accounting in memory/serving.py, stage by stage."""
    from autoparallel.memory.serving import serving_memory
    from autoparallel.solvers.serving.memory_terms import MemoryTerms

    space = build_space(
        load_model(model),
        Cluster.parse(cluster),
        Serving(isl=1024, osl=256),
        SMALL.model_copy(update=runtime),
    )
    terms = MemoryTerms(space.model, space.cluster, space.rules, space.workload)
    shapes = [i for i, s in enumerate(space.shapes) if shape_filter(s) and not s.violations]  # type: ignore[operator]
    assert shapes
    for s in shapes:
        for b in range(len(space.batches)):
            config = space.config(s, 0, b, 0, 0, space.shapes[s].ep_replicas or 1)
            report = serving_memory(space.model, space.cluster.gpu, config)
            _, _, fixed, tokens = terms.terms(
                space.shapes[s], space.runtimes[0], config.max_num_seqs, config.max_model_len
            )
            budget = report.budget_gib * 2**30
            expected = max(budget - st.kv_cache_gib * 2**30 for st in report.stages)
            assert fixed == pytest.approx(expected, rel=1e-9, abs=64)
            assert tokens == report.max_num_batched_tokens


def test_no_placeable_shape_names_the_placement_rule() -> None:
    from autoparallel.errors import InfeasibleError
    from autoparallel.hardware import Cluster
    from autoparallel.models import load_model
    from autoparallel.solvers.serving.solve import solve_serving
    from autoparallel.solvers.serving.space import ServingOptions
    from autoparallel.workload import Serving

    model = load_model("meta-llama/Llama-3.1-8B")
    with pytest.raises(InfeasibleError) as info:
        solve_serving(
            model,
            Cluster.parse("1x8xH100"),
            Serving.preset("chatbot"),
            options=ServingOptions(tp_values=(3,), pp_values=(1,)),
        )
    assert "placement" in str(info.value) and "inside one node" in str(info.value)


def test_a_memory_reason_beside_other_families_says_which_plans_it_rules_out() -> None:
    """When memory rules out only some plans (an SLO the rest), its reason counts those and names the
    smallest, instead of calling the best plan's need, which fits, larger than the GPU ("6.65 GiB ... >
    72.85 GiB" for Kimi-K2 on 512x8xH100)."""
    import re

    from autoparallel.solvers.serving.explain import reason
    from autoparallel.solvers.serving.space import complete_tables

    space = complete_tables(
        build_space(
            load_model("meta-llama/Llama-3.1-70B"),
            Cluster.parse("1x8xH100"),
            Serving(),
            ServingOptions(engines=("vllm", "sglang")),
        )
    )
    text = reason(space, "memory")
    found = re.search(r"([\d,]+) of the ([\d,]+) plans .* needing ([\d.]+) GiB per GPU of ([\d.]+) GiB", text)
    assert found is not None, text
    unfit, valid, need, top = (float(g.replace(",", "")) for g in found.groups())
    assert 0 < unfit < valid and need > top


def test_a_rate_a_hair_above_capacity_is_infeasible_not_an_internal_error() -> None:
    """The demand rounded to the nearest milli-token while the capacity rounded down: an arrival rate
    1e-9 above the best plan's requests/s passed CP-SAT and the float model refused the decoded plan
    (exit 3, "solver and float model disagree"). Demands round up (units.py)."""
    from autoparallel import api

    w = Serving(isl=1024, osl=256, request_rate=1.0)
    kw = {"options": SMALL, "settings": SETTINGS}
    cap = api.solve("Qwen/Qwen3-8B", "1xH100", w, **kw).perf.requests_per_s
    above = w.model_copy(update={"request_rate": cap * (1 + 1e-9)})
    with pytest.raises(InfeasibleError, match="request_rate"):
        api.solve("Qwen/Qwen3-8B", "1xH100", above, **kw)


def test_a_client_queue_counts_in_the_tables_ttft() -> None:
    """1,000 clients in flight on one H100 whose engine runs at most 256: the rest queue, and the
    table's TTFT (µs) must be what the float model says at the decoded replica count, queue included
    (it planned max_num_seqs 192 at "TTFT 155 ms" while each request waited ~48 s behind 808 others)."""
    from autoparallel import api

    kw = {"options": SMALL, "settings": SETTINGS}
    w = Serving(isl=1024, osl=256, concurrency=1000, ttft_ms=2000)
    with pytest.raises(InfeasibleError, match="ttft_slo"):
        api.solve("Qwen/Qwen3-8B", "1xH100", w, **kw)
    loose = api.solve("Qwen/Qwen3-8B", "1xH100", w.model_copy(update={"ttft_ms": 10**6}), **kw)
    queued = 1000 - loose.config.max_num_seqs
    assert loose.perf.ttft_ms > queued * 256 / loose.perf.output_tokens_per_s * 1e3


def test_under_a_concurrency_cap_each_shape_may_run_its_share_of_the_clients() -> None:
    """1,000 clients on eight H100s: the 2^k / 3·2^k grid has no 125, so the plan ran 8 x 96 with 232
    queued (TTFT 1.8 s) or called a 500 ms TTFT infeasible, where 8 x 125 holds every client (TTFT
    about 120 ms). The share concurrency // replicas joins the default grid (`batch_domain`)."""
    from autoparallel import api

    w = Serving(isl=1024, osl=256, concurrency=1000, ttft_ms=500)
    plan = api.solve("meta-llama/Llama-3.1-8B", "1x8xH100", w, settings=SETTINGS)
    assert plan.config.replicas * plan.config.max_num_seqs == 1000 and plan.perf.ttft_ms < 500
    assert plan.config.max_num_seqs not in ServingOptions().max_num_seqs  # 125 at tp1, 250 at tp2
