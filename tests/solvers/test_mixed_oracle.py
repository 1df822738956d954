"""The mixed (aggregated + disaggregated) CP-SAT front == the brute-force front, on Hypothesis instances.

Instances: ≤ 8 GPUs (one or two 4-GPU H100 nodes), ≤ 3 aggregated, ≤ 2 prefill and ≤ 3 decode
engines drawn from the unpruned candidates the float model gives Llama-3.1-8B with an 8192-token
prompt (built once); the mode (auto / on / off), two or three objectives, the request rate and a cap
on requests in flight drawn.
The oracle (mixed_oracle.py) walks every replica-count vector of each allowed mode. About a fifth of
the 80 instances have both modes on their front (`--hypothesis-show-statistics`).
"""

from __future__ import annotations

import dataclasses
import functools

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.deployment.mixed import MixedSpace, build_mixed_space
from autoparallel.solvers.deployment.mixed_encoder import build_mixed
from autoparallel.solvers.deployment.mixed_oracle import brute_force_front
from autoparallel.solvers.deployment.roles import RoleSpace
from autoparallel.solvers.deployment.space import FleetModel
from autoparallel.solvers.pareto import Front, _front, _model_queries
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving
from tests.property_examples import examples

EXAMPLES = 80
NAMES = ("throughput", "tpot", "cost", "gpus")


@functools.cache
def base() -> MixedSpace:
    # rated for the largest cap drawn, so that the prefill engines carry the closed-loop rule's chords
    # (`client_rules.closed_loop_rule`; they hold for every smaller cap, and none applies without a cap)
    w = Serving(isl=8192, osl=128, ttft_ms=2000, concurrency=3000)
    fm = FleetModel(load_model("meta-llama/Llama-3.1-8B"), w)
    opts = ServingOptions(max_num_seqs=(2, 8, 32), enforce_eager=(False,))
    space = build_mixed_space(fm, Cluster.parse("2x4xH100"), opts, prune=False)
    assert {e.role for e in space.roles.space.engines} == {"prefill", "decode"}
    return space


@st.composite
def instances(draw: st.DrawFn) -> tuple[MixedSpace, tuple[str, ...]]:
    b = base()
    nodes = draw(st.integers(1, 2))
    fits = [i for i, e in enumerate(b.engines) if e.nodes <= nodes]
    a = len(b.aggregated.engines)
    agg = draw(st.lists(st.sampled_from([i for i in fits if i < a]), min_size=1, max_size=3, unique=True))
    pre = [i for i in fits if i >= a and b.engines[i].role == "prefill"]
    dec = [i for i in fits if i >= a and b.engines[i].role == "decode"]
    roles = draw(st.lists(st.sampled_from(pre), min_size=1, max_size=2, unique=True)) + draw(
        st.lists(st.sampled_from(dec), min_size=1, max_size=3, unique=True)
    )
    fm = b.fleet_model
    top = max((b.engines[i].capacity_milli_rps for i in agg + roles), default=1000)
    quarters = draw(st.one_of(st.none(), st.integers(1, 8)))
    rate = None if quarters is None else quarters * top / 4000
    cap = draw(st.sampled_from([None, None, 4, 10, 40, 400, 3000]))  # in flight (batches 2, 8, 32)
    update = {"request_rate": rate, "concurrency": cap}
    fleet = (dataclasses.replace(fm, workload=fm.workload.model_copy(update=update)),)
    cluster = Cluster(pools=(b.cluster.pools[0].model_copy(update={"nodes": nodes}),))
    role_ks = [i - a for i in roles]
    space = MixedSpace(
        dataclasses.replace(
            b.aggregated, engines=tuple(b.engines[i] for i in agg), cluster=cluster, models=fleet
        ),
        RoleSpace(
            dataclasses.replace(
                b.roles.space,
                engines=tuple(b.roles.space.engines[k] for k in role_ks),
                cluster=cluster,
                models=fleet,
            ),
            [b.roles.times[k] for k in role_ks],
            b.roles.decode_step_bound_s,
        ),
        [b.agg_tpot_us[i] for i in agg],
        [b.decode_tpot_us[k] for k in role_ks],
        draw(st.sampled_from(["auto", "on", "off"])),
    )
    names = tuple(draw(st.permutations(NAMES))[: draw(st.integers(2, 3))])
    return space, names


@settings(
    max_examples=examples(EXAMPLES),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(instances())
def test_cpsat_front_equals_brute_force(instance: tuple[MixedSpace, tuple[str, ...]]) -> None:
    space, names = instance
    oracle = brute_force_front(space, names)
    front: Front[tuple[int, ...]] = Front(objectives=names)
    cfg = SolverSettings(lexicographic_tolerance=0.0)
    queries = _model_queries(front, lambda: build_mixed(space), cfg)
    found = bool(space.engines) and _front(front, queries, lambda p, run: p)
    if not oracle:
        event("infeasible")
        assert not found
        return
    assert found and front.complete
    assert set(front.vectors) == oracle
    event(f"{len(oracle)} points")
    modes = {"disaggregated" if any(p[len(space.aggregated.engines) :]) else "aggregated" for p in front}
    event("both modes on the front" if len(modes) == 2 else f"{modes.pop()} only")
    event(f"mode {space.mode}, rate {'yes' if space.fleet_model.workload.request_rate else 'no'}")
