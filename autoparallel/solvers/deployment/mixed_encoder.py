"""CP-SAT model of a mixed space (mixed.py): aggregated and disaggregated deployments, the mode a decision.

Variables and constraints (on top of the deployment encoder's node families, over all engines:
`pool_nodes[p]` and the per-size packing rules of the engines narrower than a node,
`encoder.post_node_packing`, one per power-of-two size s: Σ_{gpus_e ≥ s} gpus_e · r_e ≤ s⌊D / s⌋ ·
small_nodes[p], exact under first-fit decreasing on NVLink domains of any width, D = 36 or 72 GPUs
on GB200 too; the GPU count alone holds only where every size divides D):
    disaggregated            ∈ {0, 1}: 0 ⇒ every role replica is 0; 1 ⇒ every aggregated replica is 0
    flow_milli_rps           0 unless disaggregated; each role's used replicas carry flow / n (round
                             robin, encoder.py):
                             used_e ⇒ prefill_milli_tps_e · Σ_P r ≥ isl · flow,
                             used_e ⇒ capacity_milli_rps_e · Σ_D r ≥ flow
    deployed                 ¬disaggregated ⇒ Σ_A r_e ≥ 1;  disaggregated ⇒ Σ_P r_e ≥ 1 and Σ_D r_e ≥ 1
    concurrency (with a cap) Σ_e in_flight_e · r_e ≤ concurrency (aggregated and decode engines)
    closed_loop (with a cap) the cap's requests hold every request's cycle through the roles, the
                             prefill ranks' queues included (`encoder.post_closed_loop`, the
                             deployment encoder's rule; trivial at flow 0, so aggregated points
                             pass it)
    client_queue (a cap and a TTFT limit; aggregated engines only) the C − H requests the engines do
                             not hold wait (C − H) / X s in the server's queue (Little's law), and
                             used_e ⇒ queue_room_e · X ≥ (C − H) · units_per_rps · 10⁶ (H, X: the
                             aggregated engines' requests held and capacity); the deployment
                             encoder's family, encoder.add_client_queue (`add_client_queue` below)
    used[e]                  r_e ≥ 1 ⇒ used[e];   used[e] ⇒ tpot_us ≥ TPOT_e (A and D)
    demand (with a rate)     Σ_A capacity_e · r_e + flow ≥ rate × 1000
    link_floor (several link floors, mixed.py)  floor[t] ∈ {0, 1}, Σ_t floor[t] = disaggregated, and
                             r_e ≤ max_e · Σ_{t ∈ floors_e} floor[t] for every role engine: a
                             disaggregated point takes its prefill engines from one floor and its
                             decode engines from the pools at or above it (`MixedSpace.role_floors`)
Objectives (solver units):
    throughput  max osl · (Σ_A capacity_milli_rps_e · r_e + flow_milli_rps)     milli-tokens/s
    tpot        min tpot_us (the slowest engine's TPOT: an aggregated engine's step with prefill
                interference, or a decode engine's pure decode step)                  µs
    cost        min Σ micro_usd_per_hour_e · r_e                                    µ$ per hour
    gpus        min Σ gpus_e · r_e
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoparallel.solvers import units
from autoparallel.solvers.cpsat import CpModel, cp_model
from autoparallel.solvers.deployment import encoder
from autoparallel.solvers.deployment.client_rules import closed_loop_rule, role_queue_room_us
from autoparallel.solvers.deployment.encoder import DeploymentVars, EncodedDeployment, used_literals
from autoparallel.solvers.deployment.mixed import OBJECTIVES, MixedSpace
from autoparallel.solvers.deployment.space import Engine

LinearExpr = cp_model.LinearExpr


def max_replicas(space: MixedSpace, e: Engine) -> int:
    return space.aggregated.max_replicas(e)


@dataclass
class MixedVars:
    replicas: list[cp_model.IntVar]
    disaggregated: cp_model.IntVar
    flow_milli_rps: cp_model.IntVar
    tpot_us: cp_model.IntVar
    small_nodes: list[cp_model.IntVar]
    families: dict[str, cp_model.IntVar] = field(default_factory=dict)


@dataclass
class MixedEncoding:
    """The CP-SAT model of a mixed space (module doc); a `solvers.driver.Encoding` of replica counts."""

    model: cp_model.CpModel
    vars: MixedVars
    space: MixedSpace
    explain: bool = False
    """No free constraint families (`client_queue[0]`, the one it has, is fixed on): the mixed front says
    why nothing exists from its spaces (front._why_none)."""

    @property
    def families(self) -> dict[str, cp_model.IntVar]:
        return self.vars.families

    def maximized(self, name: str) -> bool:
        return OBJECTIVES[name].maximize

    def objective_scale(self, name: str) -> int:
        s = self.space
        if name == "tpot":
            return max([*s.agg_tpot_us, *s.decode_tpot_us, 1])
        per = {
            "throughput": lambda e: (
                s.fleet_model.workload.osl * max(e.capacity_milli_rps, e.prefill_milli_tps)
            ),
            "cost": lambda e: e.micro_usd_per_hour,
            "gpus": lambda e: e.gpus,
        }[name]
        return max(1, sum(per(e) * max_replicas(s, e) for e in s.engines))

    def objective_expr(self, name: str) -> cp_model.LinearExprT:
        s, v = self.space, self.vars
        engines = s.engines
        if name == "throughput":
            a = len(s.aggregated.engines)
            osl = s.fleet_model.workload.osl
            agg = LinearExpr.weighted_sum(v.replicas[:a], [osl * e.capacity_milli_rps for e in engines[:a]])
            return agg + osl * v.flow_milli_rps
        if name == "tpot":
            return v.tpot_us
        if name == "cost":
            return LinearExpr.weighted_sum(v.replicas, [e.micro_usd_per_hour for e in engines])
        if name == "gpus":
            return LinearExpr.weighted_sum(v.replicas, [e.gpus for e in engines])
        raise KeyError(name)

    def read(self, solver: cp_model.CpSolver) -> tuple[int, ...]:
        return tuple(int(solver.value(x)) for x in self.vars.replicas)

    def hint(self, point: tuple[int, ...]) -> None:
        self.model.clear_hints()
        for x, n in zip(self.vars.replicas, point, strict=True):
            self.model.add_hint(x, n)

    def shape_literals(self, point: tuple[int, ...]) -> list[cp_model.IntVar]:
        return []


def build_mixed(space: MixedSpace, *, client_queue: bool = True) -> MixedEncoding:
    """Variables and constraints of the module doc (`client_queue=False`: without the client's queue,
    to tell whether it is what rules every deployment out, front._why_none)."""
    model = CpModel()
    engines = space.engines
    fm = space.fleet_model
    a = len(space.aggregated.engines)
    r = [
        model.new_int_var(0, max_replicas(space, e), f"replicas[{e.role} | pool {e.pool} | {e.label} #{k}]")
        for k, e in enumerate(engines)
    ]
    d = model.new_bool_var("disaggregated")
    if space.mode == "on" or not a:
        model.add(d == 1)
    if space.mode == "off" or a == len(engines):
        model.add(d == 0)
    top_flow = sum(e.capacity_milli_rps * max_replicas(space, e) for e in engines[a:] if e.role == "decode")
    flow = model.new_int_var(0, top_flow, "flow_milli_rps")
    top_tpot = max([*space.agg_tpot_us, *space.decode_tpot_us, 0])
    tpot = model.new_int_var(0, top_tpot, "tpot_us")
    small = [
        model.new_int_var(0, pool.nodes, f"small_nodes[pool {p}]")
        for p, pool in enumerate(space.cluster.pools)
    ]
    v = MixedVars(r, d, flow, tpot, small)
    used = used_literals(model, r)
    for k in range(len(engines)):
        model.add(r[k] == 0).only_enforce_if(d if k < a else d.Not())
        if space.tpot_us(k):
            model.add(tpot >= space.tpot_us(k)).only_enforce_if(used[k])
    for p, pool in enumerate(space.cluster.pools):
        wide = [k for k, e in enumerate(engines) if e.pool == p and e.nodes]
        narrow = [k for k, e in enumerate(engines) if e.pool == p and not e.nodes]
        nodes = LinearExpr.weighted_sum([r[k] for k in wide], [engines[k].nodes for k in wide])
        model.add(nodes + small[p] <= pool.nodes).with_name(f"pool_nodes[{p}]")
        encoder.post_node_packing(
            model, p, pool.gpus_per_node, [(r[k], engines[k].gpus) for k in narrow], small[p], []
        )
    prefill = [k for k in range(a, len(engines)) if engines[k].role == "prefill"]
    decode = [k for k in range(a, len(engines)) if engines[k].role == "decode"]
    model.add(flow == 0).only_enforce_if(d.Not())  # aggregated: no role replica carries anything
    for role, ks, need in (("prefill", prefill, fm.workload.isl * flow), ("decode", decode, flow)):
        n = LinearExpr.sum([r[k] for k in ks])
        rated = LinearExpr.weighted_sum([r[k] for k in ks], [engines[k].rating for k in ks])
        model.add(rated >= need).with_name(f"{role}_rated")  # implied (n × least ≤ Σ); a tighter LP
        for k in ks:
            model.add(engines[k].rating * n >= need).only_enforce_if(used[k]).with_name(
                f"{role}_balance[{k}]"
            )
    add_link_floors(model, space, r, d)
    model.add(LinearExpr.sum(r[:a]) >= 1).only_enforce_if(d.Not()).with_name("aggregated_deployed")
    model.add(LinearExpr.sum([r[k] for k in prefill]) >= 1).only_enforce_if(d).with_name("prefill_deployed")
    model.add(LinearExpr.sum([r[k] for k in decode]) >= 1).only_enforce_if(d).with_name("decode_deployed")
    if fm.concurrency is not None:  # aggregated and decode slots (`encoder.add_concurrency`)
        ks = [k for k, e in enumerate(engines) if e.role != "prefill"]
        held = LinearExpr.weighted_sum([r[k] for k in ks], [engines[k].in_flight for k in ks])
        model.add(held <= fm.concurrency).with_name("concurrency")
    rule = closed_loop_rule(space.roles.space, 0)
    if rule is not None:  # the deployment encoder's closed-loop rule on the role engines
        encoder.post_closed_loop(model, fm.name, rule, r[a:], flow, [])
    if client_queue:
        add_client_queue(model, space, r, v.families)
        add_role_client_queue(model, space, flow, used)
    if fm.demand_milli_rps:
        capacity = LinearExpr.weighted_sum(r[:a], [e.capacity_milli_rps for e in engines[:a]]) + flow
        model.add(capacity >= fm.demand_milli_rps).with_name("demand_milli_rps")
    return MixedEncoding(model, v, space)


def add_link_floors(
    model: cp_model.CpModel, space: MixedSpace, replicas: list[cp_model.IntVar], d: cp_model.IntVar
) -> None:
    """One link floor per disaggregated point (module doc, `link_floor`); nothing with one floor."""
    if len(space.floors) < 2:
        return
    a = len(space.aggregated.engines)
    floor = [model.new_bool_var(f"link_floor[{t}]") for t in range(len(space.floors))]
    model.add(LinearExpr.sum(floor) == d).with_name("link_floor")
    for k, ts in enumerate(space.role_floors):
        e = space.engines[a + k]
        allowed = LinearExpr.sum([floor[t] for t in sorted(ts)])
        model.add(replicas[a + k] <= max_replicas(space, e) * allowed).with_name(
            f"link_floor[{e.role} | pool {e.pool} | {e.label} #{a + k}]"
        )


def add_role_client_queue(
    model: cp_model.CpModel, space: MixedSpace, flow: cp_model.IntVar, used: list[cp_model.IntVar]
) -> None:
    """A closed-loop client of the disaggregated points: for every used decode engine,
    used[e] ⇒ ⌊(limit + T_e) / q⌋ · flow ≥ (K / q) · C, as `encoder.add_role_client_queue` (mean TTFT
    C / flow − T by Little's law, `client_rules.role_queue_room_us`)."""
    fm = space.fleet_model
    a = len(space.aggregated.engines)
    ks = [k for k in range(a, len(space.engines)) if role_queue_room_us(fm, space.engines[k]) is not None]
    if not ks or fm.queue_clients is None:
        return
    rooms = [role_queue_room_us(fm, space.engines[k]) or 0 for k in ks]
    q = encoder.role_queue_time_unit_us(space.roles.space, 0, max(rooms))
    scale = fm.units_per_rps * units.US_PER_S // q
    for k, room in zip(ks, rooms, strict=True):
        rule = model.add(room // q * flow >= scale * fm.queue_clients).only_enforce_if(used[k])
        rule.with_name(f"client_queue[decode {space.engines[k].label} #{k}]")


def add_client_queue(
    model: cp_model.CpModel,
    space: MixedSpace,
    replicas: list[cp_model.IntVar],
    families: dict[str, cp_model.IntVar],
) -> None:
    """A closed-loop client's queue on the aggregated engines: the deployment encoder's
    `encoder.add_client_queue` over the aggregated candidates (`space.aggregated`, their replica
    counts, their capacity Σ_A capacity_milli_rps_e · r_e), so the mixed front and the deployment
    planner hold the same integer rule. Every aggregated engine is 0 in a disaggregated point, so the
    rule binds aggregated points only: a disaggregated model is not charged the queue (docs/design.md).
    `families` receives the family's literal, fixed on."""
    agg = space.aggregated
    a = len(agg.engines)
    capacity = LinearExpr.weighted_sum(replicas[:a], [e.capacity_milli_rps for e in agg.engines])
    view = EncodedDeployment(
        model,
        DeploymentVars(replicas[:a], [], [capacity], [], families),
        agg,
        hard_demand=False,
        explain=False,
    )
    encoder.add_client_queue(view)
