"""The engine dimension of the serving planner (vLLM, SGLang, TensorRT-LLM): CP-SAT against the
brute-force oracle, decoded plans against the engine's own float model, and the --engine auto
comparison's machinery (each engine's best from the same model with the engine fixed)."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from autoparallel.errors import InfeasibleError, InputError
from autoparallel.hardware import Cluster
from autoparallel.models import ModelSpec, load_model
from autoparallel.objectives import value
from autoparallel.perf.serving_engines import evaluate_engine
from autoparallel.solvers.oracle.serving import enumerate_serving
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import ServingOptions, build_space
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving
from tests.property_examples import examples

MODELS = ("meta-llama/Llama-3.1-8B", "Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-8B")
CLUSTERS = ("1x1xH100", "1x2xH100", "1x2xL4", "2x1xL40S", "2x4xL4")
ENGINES = ("vllm", "sglang", "trtllm")
SETTINGS = SolverSettings(workers=1, seed=0, time_limit_s=30.0)
ABS_TOL = {"throughput": 0.05, "ttft": 2e-3, "tpot": 2e-3, "cost": 1e-5, "memory": 1e-5}


@cache
def _model(name: str) -> ModelSpec:
    return load_model(name)


@cache
def _cluster(spec: str) -> Cluster:
    return Cluster.parse(spec)


workloads = st.builds(
    Serving,
    isl=st.sampled_from((128, 1024, 4096)),
    osl=st.sampled_from((32, 256)),
    concurrency=st.one_of(st.none(), st.integers(1, 64)),
    ttft_ms=st.one_of(st.none(), st.integers(50, 3000).map(float)),
    tpot_ms=st.one_of(st.none(), st.integers(5, 120).map(float)),
    request_rate=st.one_of(st.none(), st.sampled_from((0.5, 40.0))),
)


@st.composite
def options(draw: st.DrawFn) -> ServingOptions:
    engines = draw(st.lists(st.sampled_from(ENGINES), min_size=1, max_size=3, unique=True))
    seqs = draw(st.lists(st.sampled_from((1, 4, 16, 64, 256, 1024)), min_size=2, max_size=3, unique=True))
    return ServingOptions(
        engines=tuple(engines),
        max_num_seqs=tuple(sorted(seqs)),
        gpu_memory_utilizations=tuple(sorted(draw(st.sets(st.sampled_from((0.8, 0.92)), min_size=1)))),
        kv_cache_dtypes=tuple(draw(st.sets(st.sampled_from(("auto", "fp8")), min_size=1))),
        enforce_eager=tuple(draw(st.sets(st.booleans(), min_size=1))),
        expert_parallel=draw(st.booleans()),
        pp_values=(1, 2),
    )


@pytest.mark.parametrize("model", MODELS)
@settings(
    max_examples=examples(8),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    cluster=st.sampled_from(CLUSTERS),
    workload=workloads,
    objective=st.sampled_from(tuple(ABS_TOL)),
    opts=options(),
)
def test_solver_equals_oracle_with_the_engine_dimension(
    model: str, cluster: str, workload: Serving, objective: str, opts: ServingOptions
) -> None:
    spec, c = _model(model), _cluster(cluster)
    oracle = enumerate_serving(spec, c, workload, objective=objective, options=opts)
    try:
        sol = solve_serving(
            spec, c, workload, objective=objective, options=opts, settings=SETTINGS, runner_up=False
        )
    except InfeasibleError as exc:
        event("infeasible")
        assert oracle.config is None, f"solver infeasible ({exc}) but the oracle found {oracle.config}"
        return
    assert oracle.objective_value is not None, (
        f"the oracle found nothing, the solver {sol.engine} {sol.config}"
    )
    assert sol.solver.status == "OPTIMAL" and sol.engine in opts.engines
    event(f"plan on {sol.engine}")
    best, got = oracle.objective_value, sol.objective_value
    tol = ABS_TOL[objective] * (sol.config.replicas if objective == "throughput" else 1) + 1e-6 * abs(best)
    assert abs(got - best) <= tol, (got, best, sol.engine, sol.config, oracle.engine, oracle.config)
    if len(opts.engines) > 1:  # each engine's best is that engine's optimum, and none beats the plan
        assert [b.engine for b in sol.engines] == list(opts.engines)
        for b in sol.engines:
            alone = enumerate_serving(
                spec,
                c,
                workload,
                objective=objective,
                options=opts.model_copy(update={"engines": (b.engine,)}),
            )
            if b.solution is None:
                assert alone.config is None, (b.engine, alone.config)
                continue
            assert alone.objective_value is not None and b.solution.engine == b.engine
            assert abs(b.solution.objective_value - alone.objective_value) <= tol + 1e-6 * abs(got)


def test_the_winners_engine_is_not_solved_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proven optimum over all engines is its own engine's optimum: the comparison solves only the
    others (one CP-SAT optimization fewer per `plan --engine auto`), and reports the same best."""
    from autoparallel.solvers.serving import solve as serving_solve

    fixed: list[object] = []
    optimize = serving_solve.driver.optimize

    def counted(*args: object, **kwargs: object) -> object:
        if kwargs.get("fixed"):
            fixed.append(kwargs["fixed"])
        return optimize(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(serving_solve.driver, "optimize", counted)
    opts = ServingOptions(engines=ENGINES, max_num_seqs=(16, 256), pp_values=(1,))
    sol = solve_serving(
        _model("Qwen/Qwen3-8B"), _cluster("1x2xH100"), Serving(), options=opts, settings=SETTINGS
    )
    assert sol.solver.status == "OPTIMAL" and len(fixed) == len(ENGINES) - 1
    mine = next(b for b in sol.engines if b.engine == sol.engine)
    assert mine.solution is not None and mine.solution.config == sol.config


@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
@pytest.mark.parametrize(
    "model, cluster",
    [
        ("meta-llama/Llama-3.1-8B", "1x1xH100"),
        ("Qwen/Qwen3-30B-A3B", "1x2xH100"),
        ("Qwen/Qwen3-8B", "1x2xH100"),
    ],
)
def test_decoded_plan_equals_the_engines_float_model(engine: str, model: str, cluster: str) -> None:
    spec, c, w = _model(model), _cluster(cluster), Serving.preset("chatbot")
    sol = solve_serving(
        spec, c, w, options=ServingOptions(engines=(engine,)), settings=SETTINGS, runner_up=False
    )
    ev = evaluate_engine(spec, c, sol.config, w, engine, spec.name)
    assert sol.engine == engine and sol.engine_eval is not None and ev.fits
    assert sol.estimate.perf == ev.perf  # one cost model: the plan's numbers are evaluate_engine's
    assert sol.engine_eval.memory == ev.memory
    assert sol.objective_value == value(ev.perf, "throughput")
    assert ev.perf.batch_size == sol.config.max_num_seqs


def test_engine_tables_admit_exactly_what_the_float_model_admits() -> None:
    spec, c = _model("meta-llama/Llama-3.1-8B"), _cluster("1x1xH100")
    w = Serving(isl=4096, osl=512)
    opts = ServingOptions(engines=("sglang", "trtllm"), max_num_seqs=(64, 96, 128, 192, 256, 384))
    space = build_space(spec, c, w, opts)
    t = space.tables
    budget = space.budget_kib[space.engine_util]
    checked = 0
    for i, ok in enumerate(t.evaluated):
        s, r, b, m = space.unflat(i)
        if not ok and t.mem_used_kib[i] <= budget:
            continue
        config = space.config(s, r, b, space.engine_util, m, 1)
        ev = evaluate_engine(
            spec, c, config, w.model_copy(update={"concurrency": None}), space.runtimes[r].engine, "m"
        )
        runs_all = ev.perf.batch_size == config.max_num_seqs and ev.fits
        assert (t.mem_used_kib[i] <= budget and t.mml_used_kib[i] <= budget) == runs_all, (
            config,
            ev.perf.batch_limit,
        )
        checked += 1
    assert checked >= 12


def test_engines_keep_only_what_they_run() -> None:
    spec, c, w = _model("meta-llama/Llama-3.1-8B"), _cluster("1x1xH100"), Serving()
    space = build_space(spec, c, w, ServingOptions(engines=ENGINES, quantizations=(None, "fp8")))
    trt = {(r.quantization, r.kv_cache_dtype) for r in space.runtimes if r.engine == "trtllm"}
    assert trt == {(None, "auto")}  # no online weight quantization in TensorRT-LLM
    with pytest.raises(InputError, match="TensorRT-LLM does not quantize"):
        build_space(spec, c, w, ServingOptions(engines=("trtllm",), quantizations=("fp8",)))
    with pytest.raises(ValueError, match="engines must be among"):
        ServingOptions(engines=("tgi",))


def test_an_engine_that_cannot_hold_the_model_is_explained_in_its_own_terms() -> None:
    spec, c = _model("meta-llama/Llama-3.1-70B"), _cluster("1x1xH100")
    with pytest.raises(InfeasibleError) as err:
        solve_serving(spec, c, Serving(), options=ServingOptions(engines=("sglang",)), settings=SETTINGS)
    assert "no SGLang deployment" in str(err.value)
    (memory,) = [r for r in err.value.reasons if r.startswith("memory:")]
    assert "--mem-fraction-static" in memory and "gpu_memory_utilization" not in memory


@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
def test_the_memoized_vllm_report_gives_the_pool_of_the_real_config(engine: str) -> None:
    from autoparallel.configs import ServingConfig
    from autoparallel.memory.serving import serving_memory
    from autoparallel.memory.sglang import sglang_kv
    from autoparallel.memory.trtllm import trtllm_kv
    from autoparallel.perf.serving_engines import engine_kv_for

    spec, c = _model("Qwen/Qwen3-30B-A3B"), _cluster("1x2xH100")
    for eager in (False, True):
        for util in (0.8, 0.95):
            for seqs in (4, 512):
                config = ServingConfig(
                    tp=2,
                    max_num_seqs=seqs,
                    max_model_len=4096,
                    enforce_eager=eager,
                    gpu_memory_utilization=util,
                )
                direct = serving_memory(spec, c.gpu, config)
                if engine == "sglang":
                    want = sglang_kv(direct, c.gpu, context_len=4096, max_running_requests=seqs)
                else:
                    want = trtllm_kv(direct, c.gpu, max_batch_size=seqs, max_num_tokens=8192)
                assert engine_kv_for(engine, spec, c, config)[0] == want


def test_trtllm_attention_dp_ranks_are_single_gpus() -> None:
    # TensorRT-LLM's enable_attention_dp runs attention at tp=1 on every rank: an EP engine of tp=2 ×
    # 2 data-parallel ranks is not a TensorRT-LLM layout. The solver and the oracle both leave it out
    # for TensorRT-LLM, not for SGLang (whose --enable-dp-attention keeps tp / dp attention TP).
    spec, c, w = _model("Qwen/Qwen3-30B-A3B"), _cluster("1x4xH100"), Serving.preset("chatbot")
    for engine in ("trtllm", "sglang"):
        opts = ServingOptions(
            engines=(engine,), tp_values=(2,), max_num_seqs=(64, 256), enforce_eager=(False,)
        )
        space = build_space(spec, c, w, opts)
        tp_dp = [i for i, s in enumerate(space.shapes) if s.trtllm_problem is not None and not s.violations]
        assert tp_dp, "the space has an EP shape of tp=2 × 2 ranks"
        oracle = enumerate_serving(spec, c, w, objective="throughput", options=opts)
        sol = solve_serving(
            spec, c, w, objective="throughput", options=opts, settings=SETTINGS, runner_up=False
        )
        assert oracle.objective_value is not None and sol.solver.status == "OPTIMAL"
        assert abs(sol.objective_value - oracle.objective_value) <= 0.05 * sol.config.replicas + 1e-6
        offered = {
            s for s, _ in ((space.unflat(i)[0], 0) for i, ok in enumerate(space.tables.evaluated) if ok)
        }
        assert bool(offered & set(tp_dp)) == (engine == "sglang")
    with pytest.raises(InputError, match="enable_attention_dp"):
        cfg = sol.config.model_copy(update={"tp": 2, "replicas": 2, "enable_expert_parallel": True})
        evaluate_engine(spec, c, cfg, w, "trtllm", spec.name)


@pytest.mark.parametrize(
    ("family", "has_it", "lacks_it", "arch", "objective", "layout", "refused", "match"),
    [
        # --enable-dp-attention needs the model code to shard attention by the attention-TP size:
        # Qwen3-MoE has it, Mixtral (mixtral.py) does not.
        (
            "sglang_attention_dp",
            "Qwen/Qwen3-30B-A3B",
            "mistralai/Mixtral-8x7B-v0.1",
            "MixtralForCausalLM",
            "throughput",
            "dp_ranks",
            {"tp": 1, "pp": 1, "replicas": 4, "enable_expert_parallel": True},
            "attention data parallelism",
        ),
        # --pp-size > 1: ModelRunner asserts that the model's forward takes pp_proxy_tensors; Llama's
        # does, Gemma 2's does not.
        (
            "sglang_pipeline",
            "meta-llama/Llama-3.1-8B",
            "google/gemma-2-9b",
            "Gemma2ForCausalLM",
            "tpot",
            "stages",
            {"tp": 2, "pp": 2, "replicas": 1, "enable_expert_parallel": False},
            "no pipeline parallelism",
        ),
    ],
)
def test_sglang_layouts_only_where_its_model_code_has_them(
    family: str,
    has_it: str,
    lacks_it: str,
    arch: str,
    objective: str,
    layout: str,
    refused: dict[str, object],
    match: str,
) -> None:
    # The solver and the oracle both leave the layout out for the model whose SGLang code lacks it,
    # and agree on the optimum; the infeasibility explanation names the family, the architecture and
    # the shapes; evaluate refuses the layout in one sentence.
    from autoparallel.solvers.serving.explain import reason

    def uses(tp_pp_ep_replicas: tuple[int, int, bool, int]) -> bool:
        _, pp, ep, replicas = tp_pp_ep_replicas
        return ep and replicas > 1 if layout == "dp_ranks" else pp > 1

    c, w = _cluster("1x4xH100"), Serving.preset("chatbot")
    opts = ServingOptions(engines=("sglang",), max_num_seqs=(64, 256), enforce_eager=(False,))
    for name, offered in ((has_it, True), (lacks_it, False)):
        spec = _model(name)
        space = build_space(spec, c, w, opts)
        shapes = [
            i
            for i, s in enumerate(space.shapes)
            if uses((s.tp, s.pp, s.ep, s.ep_replicas)) and not s.violations
        ]
        assert shapes, f"the space has {layout} shapes"
        priced = {space.unflat(i)[0] for i, ok in enumerate(space.tables.evaluated) if ok}
        assert bool(priced & set(shapes)) == offered
        oracle = enumerate_serving(spec, c, w, objective=objective, options=opts)
        sol = solve_serving(spec, c, w, objective=objective, options=opts, settings=SETTINGS, runner_up=False)
        assert oracle.objective_value is not None and sol.solver.status == "OPTIMAL"
        tol = 0.05 * (sol.config.replicas if objective == "throughput" else 1) + 1e-6
        assert abs(sol.objective_value - oracle.objective_value) <= tol
        cfg = sol.config
        assert offered or not uses((cfg.tp, cfg.pp, cfg.enable_expert_parallel, cfg.replicas))
        if not offered:
            why = reason(space, family)
            assert arch in why and space.shapes[shapes[0]].label in why
    cfg = sol.config.model_copy(update=refused)
    with pytest.raises(InputError, match=match):
        evaluate_engine(_model(lacks_it), c, cfg, w, "sglang", lacks_it)


def test_each_engine_loads_gemma_on_a_t4_in_its_own_dtype() -> None:
    """Gemma-3-4B on one T4: vLLM runs it in float32 (16 GiB, more than the GPU), SGLang in float16
    (8 GiB): the solver's weight tables, the oracle and the float model all put it on SGLang alone."""
    spec, c = _model("google/gemma-3-4b-it"), _cluster("1x1xT4")
    w = Serving(isl=1024, osl=256)
    opts = ServingOptions(engines=("vllm", "sglang"), max_num_seqs=(1, 8, 32))
    oracle = enumerate_serving(spec, c, w, objective="throughput", options=opts)
    sol = solve_serving(spec, c, w, objective="throughput", options=opts, settings=SETTINGS, runner_up=False)
    assert sol.engine == oracle.engine == "sglang" and sol.solver.status == "OPTIMAL"
    assert abs(sol.objective_value - oracle.objective_value) <= ABS_TOL["throughput"]
    with pytest.raises(InfeasibleError, match="memory"):
        solve_serving(spec, c, w, options=ServingOptions(engines=("vllm",)), settings=SETTINGS)
