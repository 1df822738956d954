"""A deployment front's point carries the figures of its replica counts, not the slack of a solve.

mixed_encoder.py bounds flow_milli_rps by each role's round robin and tpot_us by each used engine's
TPOT; neither is tied to them, so a solve not proven optimal (a time limit) may stop with the flow
below what its roles carry. `pareto meta-llama/Llama-3.1-8B --cluster 2x8xH100 --disagg auto
--workload sharegpt --ttft-ms 1000 --tpot-ms 100 --request-rate 0.1 --time-limit 5` exited 3 on
P 2x tp1 | D 3x tp4 b48: throughput 33766320 in solver units vs 36169251 from the float model, whose
round robin the tables reproduce (`space.round_robin_milli_rps` · osl = 36169110). `front.decode_point`
now takes each objective from the counts' tables (`front.table_values`).
"""

from __future__ import annotations

import functools

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers import driver
from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.deployment import FleetModel
from autoparallel.solvers.deployment.front import decode_point
from autoparallel.solvers.deployment.mixed import MixedSpace, build_mixed_space
from autoparallel.solvers.deployment.mixed_encoder import build_mixed
from autoparallel.solvers.deployment.space import round_robin_milli_rps
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import PRESETS

NAMES = ("throughput", "tpot")


@functools.cache
def _space() -> MixedSpace:
    w = PRESETS["sharegpt"].model_copy(update={"ttft_ms": 1000.0, "tpot_ms": 100.0, "request_rate": 0.1})
    return build_mixed_space(FleetModel(load_model("meta-llama/Llama-3.1-8B"), w), Cluster.parse("2x8xH100"))


def _reproducer_counts(space: MixedSpace) -> tuple[int, ...]:
    """P 2x tp1 | D 3x tp4 b48 (the reproducer's point), of the loosest first-step tier (the faster
    tiers hold engines of the same shapes, rated for their own bounds: roles.py `step_ladder`)."""
    counts = [0] * len(space.engines)
    a = len(space.aggregated.engines)
    loosest = {t for t, (step_tier, _) in enumerate(space.tier_bounds) if step_tier == 0}
    for k, e in enumerate(space.roles.space.engines):
        if space.role_floors and not space.role_floors[k] & loosest:
            continue
        if e.role == "prefill" and e.tp == 1 and e.pp == 1:
            counts[a + k] = 2
        if e.role == "decode" and e.tp == 4 and e.pp == 1 and e.config.max_num_seqs == 48:
            counts[a + k] = 3
    assert sum(counts) == 5
    return tuple(counts)


def test_a_solution_with_slack_flow_decodes_to_its_counts_figures() -> None:
    """A valid CP-SAT solution of the mixed model at those counts, its flow and TPOT as slack as the
    model allows (what a time-limited solve may return): the point's vector is the counts' own."""
    space = _space()
    counts = _reproducer_counts(space)
    enc = build_mixed(space)
    for x, n in zip(enc.vars.replicas, counts, strict=True):
        enc.model.add(x == n)
    enc.model.minimize(enc.vars.flow_milli_rps - enc.vars.tpot_us)
    solver = cp_model.CpSolver()
    assert solver.solve(enc.model) == cp_model.OPTIMAL
    run = driver.Run(SolverSettings(), status="FEASIBLE")
    run.values = {n: int(solver.value(enc.objective_expr(n))) for n in NAMES}
    roles = space.split(counts)[1]
    picked = [(e, n) for e, n in zip(space.roles.space.engines, roles, strict=True) if n]
    carried = round_robin_milli_rps(picked, space.fleet_model.workload.isl)
    assert run.values["throughput"] < space.fleet_model.workload.osl * carried  # the slack is there
    point = decode_point(space, counts, NAMES, run)
    assert point.label == "P 2x tp1 | D 3x tp4 b48"
    assert point.vector[0] == space.fleet_model.workload.osl * carried
    assert abs(point.vector[0] - point.throughput_tokens_per_s * 1e3) < 1e-4 * point.vector[0]
    assert point.vector[1] == max(space.tpot_us(k) for k, n in enumerate(counts) if n)
    assert abs(point.vector[1] - point.tpot_ms * 1e3) <= 1.0
