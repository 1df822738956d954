"""First-decode-step tiers of the disaggregated spaces (roles.py `step_ladder`).

The prefill budget took the TPOT limit as every pair's first decode step, and a shape's decode engine
was its highest-capacity entry, whose step sits near the limit: Llama-3.1-70B on 1x8xH100 at TTFT
100 ms (128 / 2,048 tokens, 0.1 req/s) planned at TPOT 30 ms and exited 1 at 38 and 60 ms, a looser
limit refusing what a tighter one served. Each floor's space is now also built at faster bounds.
"""

from __future__ import annotations

import json
import math

import pytest

from autoparallel.cli import main
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.deployment.disagg_plan import decode_roles
from autoparallel.solvers.deployment.driver import optimize
from autoparallel.solvers.deployment.mixed import build_mixed_space
from autoparallel.solvers.deployment.mixed_encoder import build_mixed
from autoparallel.solvers.deployment.mixed_oracle import brute_force_front, scored
from autoparallel.solvers.deployment.roles import (
    DECODE_SLOT_WAIT_S,
    STEP_RATIO,
    STEP_TIERS,
    build_role_space,
    prefill_lead_s,
    step_ladder,
)
from autoparallel.solvers.deployment.space import FleetModel
from autoparallel.solvers.driver import Run
from autoparallel.solvers.pareto import Front, _front, _model_queries
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

ARGV = ["plan", "meta-llama/Llama-3.1-70B", "--cluster", "1x8xH100", "--disagg", "on", "--json"]
WORKLOAD = ["--request-rate", "0.1", "--ttft-ms", "100", "--isl", "128", "--osl", "2048"]


@pytest.mark.parametrize("tpot_ms", ["38"])  # 30 planned before; 25-60 at TTFT 90: below
def test_a_looser_tpot_limit_never_refuses_what_a_tighter_one_serves(
    tpot_ms: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*ARGV, *WORKLOAD, "--tpot-ms", tpot_ms]) == 0
    d = json.loads(capsys.readouterr().out)["deployment"]
    assert d["ttft_ms"] <= 100 and d["tpot_ms"] <= float(tpot_ms)
    assert d["served_rps"] == pytest.approx(0.1)


def test_the_ladder_snaps_geometric_bounds_to_steps_down_to_the_fastest() -> None:
    steps = [0.0081, 0.0122, 0.0175, 0.0214, 0.0274, 0.0314, 0.0361, 0.0700]
    ladder = step_ladder(0.060, steps)
    assert ladder[-1] == 0.0081 and ladder == sorted(ladder, reverse=True)
    assert set(ladder) <= set(steps) and len(ladder) <= STEP_TIERS - 1
    # each at most STEP_RATIO of the one before, none skipped that a target lands on
    assert ladder[0] <= 0.060 * STEP_RATIO and 0.0361 in ladder
    assert step_ladder(0.038, [0.0314, 0.0274, 0.0214, 0.01735]) == [0.0274, 0.0214, 0.01735]
    assert step_ladder(0.020, [0.020, 0.025]) == [] and step_ladder(0.020, []) == []


def test_every_tier_keeps_its_pairs_within_the_ttft_limit() -> None:
    """Each tier's decode engines step within its bound, its prefill engines are rated at the budget
    with that bound, and its optimum decodes (the float model re-checks the worst pair's TTFT against
    the limit: `decode_roles` raises otherwise)."""
    w = Serving(isl=128, osl=2048, ttft_ms=100.0, tpot_ms=60.0, request_rate=0.1)
    fm = FleetModel(load_model("meta-llama/Llama-3.1-70B"), w)
    cluster = Cluster.parse("1x8xH100")
    rs = build_role_space([fm], cluster)
    tiers = rs.tiers()
    assert len(tiers) > 1 and tiers[-1].step_tier == 0 and tiers[-1].decode_step_bound_s == [0.060]
    solved = 0
    for tier in tiers:
        bound = tier.decode_step_bound_s[0]
        decode = [e for e in tier.space.engines if e.role == "decode"]
        assert decode
        for k, e in enumerate(tier.space.engines):
            t = tier.times[k]
            if e.role == "decode":
                assert t.decode_s <= bound + 1e-6
            else:
                lead = prefill_lead_s(fm, cluster, e.pool, e.tp, decode, e.pp)
                assert t.budget_s == pytest.approx(0.100 - bound - DECODE_SLOT_WAIT_S - lead)
        run = Run(SolverSettings(time_limit_s=30))
        counts = optimize(tier.space, ("goodput",), run)
        if counts is None:  # the loosest tier's budget holds no prefill engine here, and the
            continue  # fastest tiers' decode slots may not carry the rate
        d = decode_roles(tier, counts, "goodput", run.stats())
        assert d.ttft_ms <= 100 and d.tpot_ms <= bound * 1e3 + 1e-6
        solved += 1
    assert solved


def test_no_faster_tier_where_the_ttft_limit_dwarfs_the_first_step() -> None:
    """Chatbot (TTFT 2 s, TPOT 50 ms): halving the first step raises no prefill rating by 5%, so the
    space is the loosest tier alone and costs one solve."""
    w = Serving.preset("chatbot").model_copy(update={"request_rate": 10.0})
    rs = build_role_space([FleetModel(load_model("Qwen/Qwen3-8B"), w)], Cluster.parse("1x8xH100"))
    assert [t.step_tier for t in rs.tiers()] == [0]


def test_the_mixed_front_over_first_step_tiers_equals_brute_force() -> None:
    """The mixed space carries the tiers as its floors (one per disaggregated point, mixed_encoder.py
    `link_floor`); its CP-SAT front equals the oracle's over the tiers' union."""
    w = Serving(isl=2048, osl=128, ttft_ms=120.0)
    fm = FleetModel(load_model("meta-llama/Llama-3.1-8B"), w)
    opts = ServingOptions(max_num_seqs=(2, 8, 32), enforce_eager=(False,))
    space = build_mixed_space(fm, Cluster.parse("1x8xH100"), opts, mode="on")
    assert len(space.tier_bounds) > 1 and 0 in {k for k, _ in space.tier_bounds}
    assert all(math.isfinite(b) and b > 0 for _, b in space.tier_bounds)
    names = ("throughput", "tpot")
    oracle = brute_force_front(space, names)
    front: Front[tuple[int, ...]] = Front(objectives=names)
    cfg = SolverSettings(lexicographic_tolerance=0.0)
    queries = _model_queries(front, lambda: build_mixed(space), cfg)
    assert _front(front, queries, lambda p, run: p) and front.complete
    assert oracle and set(front.vectors) == oracle
    # a faster tier's deployment is on it: one of its points has no deployment of the loosest tier
    loosest = {t for t, (k, _) in enumerate(space.tier_bounds) if k == 0}
    a = len(space.aggregated.engines)
    on_front: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for _, counts, vector in scored(space, names):
        if vector in oracle:
            on_front.setdefault(vector, []).append(counts)
    assert any(
        all(any(n and not space.role_floors[k - a] & loosest for k, n in enumerate(c) if k >= a) for c in cs)
        for cs in on_front.values()
    )


INSTRUCT = ["meta-llama/Llama-3.1-70B-Instruct", "--cluster", "1x8xH100", "--isl", "128", "--osl", "2048"]


@pytest.mark.parametrize("tpot", [[]])  # TPOT 38 and 60: `test_a_looser_tpot_limit_plans_no_less`
def test_the_ladder_takes_every_decode_entrys_step_not_each_shapes_chosen(
    tpot: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """TTFT 90 ms: the ladder's fastest bound came from each shape's highest-capacity entry (31.4 ms),
    so the 21.5 ms entry a TPOT 30 ms plan decodes on was never a bound and TPOT 38 exited 1."""
    argv = ["plan", *INSTRUCT, "--request-rate", "0.1", "--ttft-ms", "90", "--disagg", "on", "--json", *tpot]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)["deployment"]
    assert d["ttft_ms"] <= 90


def test_the_front_holds_a_faster_tiers_point_between_two_halvings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """TPOT 38 ms, TTFT 100 ms: halving (38, 19, 17.35 ms) skipped the 27.45 ms step of D tp4 b192, the
    point that carries 5.9k tokens/s at TPOT 30 ms; the front stopped at 944."""
    argv = ["pareto", *INSTRUCT, "--request-rate", "0.1", "--ttft-ms", "100", "--tpot-ms", "38"]
    assert main([*argv, "--disagg", "on", "--json"]) == 0
    points = json.loads(capsys.readouterr().out)["points"]
    assert max(p["throughput_tokens_per_s"] for p in points) > 5000
    assert all(p["ttft_ms"] <= 100 for p in points)


def test_a_rate_reason_quotes_the_most_any_tier_carries(capsys: pytest.CaptureFixture[str]) -> None:
    """The fastest tier's decode engines carry less (2.90 req/s); the loosest tier carries 3.33 (3.329,
    printed rounded down: `workload.rps_text`)."""
    argv = ["plan", "meta-llama/Llama-3.1-70B", *INSTRUCT[1:], "--request-rate", "5", "--ttft-ms", "150"]
    assert main([*argv, "--tpot-ms", "60", "--disagg", "on", "--objective", "throughput"]) == 1
    assert "the most any carries, 1P:1D on 6 GPUs, carries 3.32 req/s" in capsys.readouterr().err


def test_a_tie_keeps_the_loosest_tiers_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    """The same P tp2 | D tp2 is in the loosest and a faster tier; the faster tier's decode slots are
    rated within less room, so taking it reported 0.1399 req/s where the loosest carries 0.1612."""
    argv = [
        "plan",
        *INSTRUCT,
        "--request-rate",
        "0.1",
        "--ttft-ms",
        "130",
        "--tpot-ms",
        "38",
        "--disagg",
        "on",
    ]
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["deployment"]
    assert d["capacity_rps"] == pytest.approx(0.1612, abs=5e-4)


def test_a_pair_too_big_names_a_faster_tiers_bound_not_the_tpot_limit() -> None:
    """Where every tier's smallest pair is too big, the note is the smallest pair's, and a faster tier's
    decode engines are said to step within its bound (they said "meeting TPOT 30 ms")."""
    w = Serving(isl=128, osl=2048, ttft_ms=100.0, tpot_ms=30.0, request_rate=0.1)
    fm = FleetModel(load_model("meta-llama/Llama-3.1-70B-Instruct"), w)
    space = build_mixed_space(fm, Cluster.parse("1x4xH100"), mode="on")
    assert space.note.startswith("disaggregation needs a prefill and a decode engine")
    assert (
        "the smallest decode engine stepping within 19.1 ms (a faster first-step tier's bound)" in space.note
    )
    assert "meeting TPOT" not in space.note and "2 + 4 = 6 GPUs, the cluster has 4" in space.note


def test_a_looser_tpot_limit_plans_no_less(capsys: pytest.CaptureFixture[str]) -> None:
    """TTFT 90 ms: the tp4 prefill fits under a first step of about 22.5 ms; a geometric ladder from
    TPOT 30 ms stepped from 23.1 to 19.1 ms and planned D tp4 b48 (1,562 tokens/s) where b96 (21.5 ms,
    3,296 tokens/s) meets both limits, and TPOT 45 ms planned b96. The prefill shapes' critical bounds
    (`roles.critical_bounds`) put a tier where each just fits."""
    argv = ["plan", "meta-llama/Llama-3.1-70B", *INSTRUCT[1:], "--request-rate", "0.1", "--ttft-ms", "90"]
    carried = []
    for tpot in ("25", "30", "45", "60"):
        assert main([*argv, "--tpot-ms", tpot, "--disagg", "on", "--objective", "throughput", "--json"]) == 0
        d = json.loads(capsys.readouterr().out)["deployment"]
        carried.append(d["capacity_rps"])
        assert d["solver"]["status"] == "OPTIMAL" and d["ttft_ms"] <= 90
    assert carried == sorted(carried) and carried[1] * 2048 > 3200


def test_critical_bounds_put_a_tier_where_a_prefill_shape_just_fits() -> None:
    assert step_ladder(0.030, [0.0108, 0.0191, 0.0199, 0.0215, 0.0231], [0.0225]) == [
        0.0231,
        0.0215,
        0.0191,
        0.0108,
    ]
    assert 0.0215 not in step_ladder(0.030, [0.0108, 0.0191, 0.0199, 0.0215, 0.0231])


def test_no_tpot_limit_rates_decode_slots_as_a_limit_at_the_slowest_step() -> None:
    """Without a TPOT limit the loosest tier gave the decode slots 1 ms of room: gpt-oss-120b's D tp4
    b32 (7.15 ms step) was rated 13.74 req/s, against 14.46 at TPOT 20 ms, and the no-limit front did
    not dominate the TPOT 20 ms one. Now the loosest bound is the slowest candidate's step."""
    cluster = Cluster.parse("1x8xH100")
    rated = {}
    for tpot in (20.0, None):
        w = Serving(isl=8192, osl=256, ttft_ms=400.0, tpot_ms=tpot, request_rate=0.1)
        rs = build_role_space([FleetModel(load_model("openai/gpt-oss-120b"), w)], cluster)
        loosest = rs.tiers()[-1]
        assert loosest.step_tier == 0
        for e, t in zip(loosest.space.engines, loosest.times, strict=True):
            if e.role == "decode" and t.decode_s <= 0.020:
                rated[tpot, e.tp, e.config.max_num_seqs] = e.capacity_milli_rps
    both = {k[1:] for k in rated if k[0] is None} & {k[1:] for k in rated if k[0] == 20.0}
    assert both and all(rated[(None, *k)] >= rated[(20.0, *k)] for k in both)


def test_a_capped_disaggregated_front_decodes_within_the_closed_loops_margin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """64 clients: the solver's closed-loop flow lies a little below the float model's (its chords lie
    above the requests they bound); the point check took that for a disagreement and exited 3."""
    argv = ["pareto", "meta-llama/Llama-3.1-8B", "--cluster", "1x8xH100", "--isl", "2048", "--osl", "128"]
    assert main([*argv, "--concurrency", "64", "--disagg", "on", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["points"]


def test_plan_and_pareto_build_one_ladder_without_a_tpot_limit() -> None:
    """The mixed front's loosest bound counted decode entries over the cap, and its ladder every
    entry's step: the same workload got other bounds under `pareto` than under `plan`."""
    for update in ({}, {"concurrency": 16, "request_rate": None}):
        w = Serving(isl=1024, osl=256, ttft_ms=150.0, request_rate=20.0).model_copy(update=update)
        fm = FleetModel(load_model("meta-llama/Llama-3.1-8B"), w)
        cluster = Cluster.parse("1x8xH100")
        rs = build_role_space([fm], cluster)
        mixed = build_mixed_space(fm, cluster, mode="on")
        plan_bounds = {round(t.decode_step_bound_s[0], 9) for t in rs.tiers()}
        front_bounds = {round(b, 9) for _, b in mixed.tier_bounds} or {
            round(mixed.roles.decode_step_bound_s[0], 9)
        }
        # one loosest bound (the slowest decode candidate's step within the cap)
        assert rs.tiers()[-1].decode_step_bound_s == mixed.roles.decode_step_bound_s
        assert max(plan_bounds) == max(front_bounds)


def test_no_decode_engine_says_why_without_a_tpot_limit(capsys: pytest.CaptureFixture[str]) -> None:
    """The front's note said "meets TPOT None ms" where the model does not fit in memory at all."""
    argv = ["pareto", "meta-llama/Llama-3.1-70B", "--cluster", "1xH100", "--isl", "2048", "--osl", "256"]
    assert main([*argv, "--ttft-ms", "500", "--disagg", "on"]) == 1
    err = capsys.readouterr().err
    assert "None" not in err and "no engine fits in memory" in err and "131.4 GiB" in err


def test_a_disaggregated_plans_json_is_rounded_as_every_plans(capsys: pytest.CaptureFixture[str]) -> None:
    """The disaggregated deployment's JSON and plan file carried full floats (`capacity_rps:
    3.820258617613179`); they take `plan.round_floats` now, a capacity rounded down."""
    argv = ["plan", "meta-llama/Llama-3.1-70B", "--cluster", "2x8xH100", "--isl", "2048", "--osl", "256"]
    argv += ["--request-rate", "4", "--ttft-ms", "500", "--tpot-ms", "30", "--disagg", "on", "--json"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)["deployment"]
    for e in [*d["prefill"], *d["decode"]]:
        assert len(repr(e["capacity_rps"]).split(".")[-1]) <= 6 and len(repr(e["prefill_ms"])) <= 12


def test_the_mixed_decode_front_pruning_keeps_the_same_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """mixed._decode skips slot-rating entries that cannot be on their shape's front: the space is the
    one that rates every entry, engine for engine, tier for tier."""
    from autoparallel.solvers.deployment import mixed

    fm = FleetModel(
        load_model("meta-llama/Llama-3.1-70B-Instruct"),
        Serving(isl=128, osl=2048, ttft_ms=100.0, tpot_ms=38.0, request_rate=0.1),
    )

    def engines(space: mixed.MixedSpace) -> list[tuple[object, ...]]:
        """In order: CP-SAT's pick among equal deployments follows it (sorting hid a reordering)."""
        floors = space.role_floors or (frozenset(),) * len(space.roles.space.engines)
        pairs = zip(space.roles.space.engines, floors, strict=True)
        return [(e.role, e.shape, e.entry, e.rating, tuple(sorted(f))) for e, f in pairs]

    pruned = build_mixed_space(fm, Cluster.parse("1x8xH100"), mode="on")
    every = mixed._decode

    def rate_every_entry(*args: object, **kwargs: object) -> object:
        return every(*args, **{**kwargs, "fronts": False})  # type: ignore[arg-type]

    monkeypatch.setattr(mixed, "_decode", rate_every_entry)
    full = build_mixed_space(fm, Cluster.parse("1x8xH100"), mode="on")
    assert len(pruned.tier_bounds) > 1 and pruned.tier_bounds == full.tier_bounds
    assert engines(pruned) == engines(full)
