"""CP-SAT model of the deployment: integer replica counts per candidate engine.

Variables (named for debug dumps):
    replicas[e]            ∈ 0 .. max replicas of engine e on its pool (one per model × pool × shape)
    small_nodes[p]         nodes (NVLink domains) of pool p given to engines narrower than a node
    served_milli_rps[m]    requests/s of model m served within its SLOs, in its rate unit (1 / (1000 ·
                           rate_scale_m) requests/s, space.FleetModel; ≤ capacity, ≤ demand)

Constraint families, each behind an enable literal (`family[...]`) so that an explanation can
pass them as assumptions and CP-SAT names the conflicting ones:
    pool_nodes[p]            Σ_wide nodes_e · replicas[e] + small_nodes[p] ≤ nodes of pool p
    node_packing_gpus[p, s]  bin packing of the narrow engines (sizes powers of two below the node D,
                             space.py's node granularity) into small_nodes[p] nodes, one rule per
                             size s used in the pool: Σ_{narrow, gpus_e ≥ s} gpus_e · replicas[e] ≤
                             s · ⌊D / s⌋ · small_nodes[p] (GPUs; in s-GPU slots, Σ replicas · gpus_e / s
                             ≤ ⌊D / s⌋ per node), exact by first-fit decreasing; a size whose
                             s · ⌊D / s⌋ equals a smaller size's is implied and not posted, so nodes
                             that every size divides (8 GPUs) keep the GPU count alone (family
                             pool_nodes[p])
    demand_milli_rps[m]      Σ_e capacity_milli_rps_e · replicas[e] ≥ rate_m × 1000   (hard demand)
    deployed[m]              Σ_e replicas[e] ≥ 1    (every model of the fleet is served)
    concurrency[m]           Σ_e in_flight_e · replicas[e] ≤ concurrency_m (a closed-loop client's cap:
                             max_num_seqs × data-parallel ranks per replica, of the aggregated or
                             decode engines: a request holds a prefill slot and then a decode slot,
                             never both, and the prefill ranks' are `closed_loop[m]`'s; none for
                             aggregated engines of N prompts sent at a rate, `FleetModel.held_cap`)
    client_queue[m]          a capped model with a TTFT limit (aggregated): the C_m − H_m requests the
                             engines do not hold (H_m = Σ_e in_flight_e · replicas[e]) wait in the
                             server's queue W_m = (C_m − H_m) / X_m s by Little's law (X_m = Σ_e
                             capacity_e · replicas[e], requests/s), the same for every engine of m;
                             with used[e] ⇐ replicas[e] ≥ 1, for every engine e of m:
                             used[e] ⇒ queue_room_e · X_m ≥ (C_m − H_m) · units_per_rps_m · 10⁶
                             (queue_room_e = TTFT limit − ttft_e in µs, `Engine.queue_room_us`);
                             N prompts sent at once drain: D_m ≥ 2N · (the chords of Q (Q + 1) / 2N at
                             Q_m ≥ N − H_m, `client_rules.drain_lines`), used[e] ⇒ 2N · queue_room_e · X_m ≥
                             D_m · units_per_rps_m · 10⁶

Disaggregated spaces (deployment/roles.py: every engine is a prefill or a decode engine) replace a
model's capacity Σ_e capacity_e · replicas[e] by a variable flow_milli_rps[m], the requests/s both
roles carry, and add the role families. The proxy deals each role's requests round robin
(disagg_launch.py), so each of a role's n replicas carries flow / n, within its own capacity
(`space.round_robin_milli_rps`); with used[e] ⇐ replicas[e] ≥ 1:
    prefill_balance[m]       used[e] ⇒ prefill_milli_tps_e · Σ_P replicas ≥ isl_m · flow_milli_rps[m]
                             (and the implied Σ_P prefill_milli_tps_e · replicas[e] ≥ the same)
    decode_balance[m]        used[e] ⇒ capacity_milli_rps_e · Σ_D replicas ≥ flow_milli_rps[m]
                             (and Σ_D capacity_milli_rps_e · replicas[e] ≥ flow_milli_rps[m])
    client_queue[m]          a closed-loop client of C: used decode e ⇒ (limit + T_e) · flow ≥ C · K,
                             T_e the time a request holds its decode slot (mean TTFT C / X − T)
    closed_loop[m]           a concurrency cap C: the C requests in flight hold every request's cycle
                             (Little's law): the decode slots, the overhead and KV transfer, and the
                             prompts waiting or in prefill at the P ranks, an M/G/n count charged by
                             its chords; H_D ≥ hold_d · flow (used decode d), H_P ≥ chords of p (used
                             prefill p), H_D + H_P ≤ C (`post_closed_loop`,
                             `client_rules.closed_loop_rule`). The slot count of `concurrency[m]` alone
                             let the roles carry more than the client's requests can cycle through
    roles_deployed[m]        Σ_P replicas[e] ≥ 1 and Σ_D replicas[e] ≥ 1
so the P:D ratio is the solver's choice; throughput counts flow_milli_rps.

Objectives (all linear in the replica counts; the per-engine numbers are float-model coefficients):
    goodput      max Σ_m weight_m · (osl_m / rate_scale_m) · served_milli_rps[m]   (milli-tokens/s
                 within SLO; osl / rate_scale is `FleetModel.milli_tokens_per_unit`)
    throughput   max Σ_m weight_m · (osl_m / rate_scale_m) · capacity_milli_rps[m]
    cost         min Σ_e micro_usd_per_hour_e · replicas[e]            (µ$ per hour)
    gpus         min Σ_e gpus_e · replicas[e]
`cost_per_mtok` (a ratio) is solved by Dinkelbach's method over cost and goodput (driver.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from autoparallel import objectives
from autoparallel.errors import InternalError
from autoparallel.solvers import units
from autoparallel.solvers.cpsat import CpModel, cp_model
from autoparallel.solvers.deployment.client_rules import (
    QUEUE_TERM_BOUND,
    SYNC_SCALE,
    ClosedLoopRule,
    burst_sync_pct,
    closed_loop_rule,
    drain_lines,
    role_queue_room_us,
)
from autoparallel.solvers.deployment.space import DeploymentSpace
from autoparallel.solvers.driver import WEIGHTED_SCALE, family_literal

LinearExpr = cp_model.LinearExpr

MAXIMIZED = frozenset(n for n, o in objectives.DEPLOYMENT.items() if o.maximize)
WEIGHT_SCALE = 1000
"""Priorities become integer weights: round(priority × 1000)."""


def model_weight(space: DeploymentSpace, m: int) -> int:
    """Integer weight of model m's tokens (its priority × 1000)."""
    return max(1, round(space.models[m].priority * WEIGHT_SCALE))


@dataclass
class DeploymentVars:
    """The CP-SAT variables of one encoded deployment problem."""

    replicas: list[cp_model.IntVar]
    small_nodes: list[cp_model.IntVar]
    capacity_milli_rps: list[cp_model.LinearExpr]
    served_milli_rps: list[cp_model.IntVar]
    families: dict[str, cp_model.IntVar] = field(default_factory=dict)


@dataclass
class EncodedDeployment:
    """A built CP-SAT model with its variables and the space it encodes."""

    model: cp_model.CpModel
    vars: DeploymentVars
    space: DeploymentSpace
    hard_demand: bool
    explain: bool

    def family(self, name: str) -> cp_model.IntVar:
        """The enable literal of constraint family `name` (`driver.family_literal`)."""
        return family_literal(self.model, self.vars.families, name, self.explain)

    @property
    def families(self) -> dict[str, cp_model.IntVar]:
        """Constraint family name -> its enable literal."""
        return self.vars.families

    def maximized(self, name: str) -> bool:
        return name in MAXIMIZED

    def objective_scale(self, name: str) -> int:
        return objective_upper_bound(self.space, name)

    def read(self, solver: cp_model.CpSolver) -> list[int]:
        """The replica count of every candidate engine."""
        return [int(solver.value(x)) for x in self.vars.replicas]

    def hint(self, counts: list[int]) -> None:
        self.model.clear_hints()
        for x, n in zip(self.vars.replicas, counts, strict=True):
            self.model.add_hint(x, n)

    def shape_literals(self, counts: list[int]) -> list[cp_model.IntVar]:
        """No k-best over deployments: no shape literals."""
        return []

    def objective_expr(self, name: str) -> cp_model.LinearExpr:
        """The scaled integer expression of objective `name`."""
        space, v = self.space, self.vars
        if name == "goodput":
            return LinearExpr.weighted_sum(
                v.served_milli_rps,
                [model_weight(space, m) * fm.milli_tokens_per_unit for m, fm in enumerate(space.models)],
            )
        if name == "throughput" and space.disaggregated:
            return LinearExpr.weighted_sum(
                v.capacity_milli_rps,
                [model_weight(space, m) * fm.milli_tokens_per_unit for m, fm in enumerate(space.models)],
            )
        if name == "throughput":
            return LinearExpr.weighted_sum(
                v.replicas,
                [
                    model_weight(space, e.model)
                    * space.models[e.model].milli_tokens_per_unit
                    * e.capacity_milli_rps
                    for e in space.engines
                ],
            )
        if name == "cost":
            return LinearExpr.weighted_sum(v.replicas, [e.micro_usd_per_hour for e in space.engines])
        if name == "gpus":
            return LinearExpr.weighted_sum(v.replicas, [e.gpus for e in space.engines])
        raise KeyError(name)


def objective_upper_bound(space: DeploymentSpace, name: str) -> int:
    """A bound on objective `name`'s value (for weighting): every engine at its most replicas."""
    total = 0
    for e in space.engines:
        if name in MAXIMIZED:
            per = (
                model_weight(space, e.model)
                * space.models[e.model].milli_tokens_per_unit
                * e.capacity_milli_rps
            )
        else:
            per = e.micro_usd_per_hour if name == "cost" else e.gpus
        total += per * space.max_replicas(e)
    return total


def weight_scale(space: DeploymentSpace, name: str, weight: float) -> int:
    """The integer factor of objective `name` in a weighted sum: weight × WEIGHTED_SCALE / its bound."""
    return max(1, round(weight * WEIGHTED_SCALE / max(objective_upper_bound(space, name), 1)))


def build(space: DeploymentSpace, *, hard_demand: bool, explain: bool = False) -> EncodedDeployment:
    """Variables and every constraint family of `space`.

    hard_demand: each model's capacity must reach its rate (capacity planning); else the rate caps
        what counts as served (goodput).
    explain: leave the family literals free (to pass as assumptions).
    """
    model = CpModel()
    replicas = [
        model.new_int_var(
            0, space.max_replicas(e), f"replicas[{space.models[e.model].name} | pool {e.pool} | {e.label}]"
        )
        for e in space.engines
    ]
    small = [
        model.new_int_var(0, pool.nodes, f"small_nodes[pool {p}]")
        for p, pool in enumerate(space.cluster.pools)
    ]
    capacity: list[cp_model.LinearExpr] = []
    served: list[cp_model.IntVar] = []
    for m, fm in enumerate(space.models):
        ks = space.engines_of(model=m)
        top = sum(space.engines[k].capacity_milli_rps * space.max_replicas(space.engines[k]) for k in ks)
        cap: cp_model.LinearExpr
        if space.disaggregated:
            cap = model.new_int_var(0, top, f"flow_milli_rps[{fm.name}]")
        else:
            cap = LinearExpr.weighted_sum(
                [replicas[k] for k in ks], [space.engines[k].capacity_milli_rps for k in ks]
            )
        capacity.append(cap)
        upper = min(top, fm.demand_milli_rps) if fm.demand_milli_rps else top
        var = model.new_int_var(0, upper, f"served_milli_rps[{fm.name}]")
        model.add(var <= cap).with_name(f"served<=capacity[{fm.name}]")
        served.append(var)
    enc = EncodedDeployment(
        model, DeploymentVars(replicas, small, capacity, served), space, hard_demand, explain
    )
    add_pool_nodes(enc)
    add_node_packing_gpus(enc)
    add_demand_milli_rps(enc)
    add_concurrency(enc)
    add_client_queue(enc)
    if space.disaggregated:
        add_role_balance(enc, "prefill")
        add_role_balance(enc, "decode")
        add_role_closed_loop(enc)
        add_roles_deployed(enc)
    else:
        add_every_model_deployed(enc)
    return enc


# ----- constraint families ----------------------------------------------------------------------
def add_pool_nodes(enc: EncodedDeployment) -> None:
    """Engines wider than a node take whole nodes; narrow ones get `small_nodes[p]`; ≤ the pool's nodes."""
    space, v = enc.space, enc.vars
    for p, pool in enumerate(space.cluster.pools):
        wide = [k for k in space.engines_of(pool=p) if space.engines[k].nodes]
        used = LinearExpr.weighted_sum([v.replicas[k] for k in wide], [space.engines[k].nodes for k in wide])
        enc.model.add(used + v.small_nodes[p] <= pool.nodes).only_enforce_if(
            enc.family(f"pool_nodes[{p}]")
        ).with_name(f"pool_nodes[{p}]")


def add_node_packing_gpus(enc: EncodedDeployment) -> None:
    """Narrow engines pack into the `small_nodes[p]` nodes of pool p without straddling a node
    (`post_node_packing`, under family `pool_nodes[p]`)."""
    space, v = enc.space, enc.vars
    for p, pool in enumerate(space.cluster.pools):
        narrow = [k for k in space.engines_of(pool=p) if not space.engines[k].nodes]
        post_node_packing(
            enc.model,
            p,
            pool.gpus_per_node,
            [(v.replicas[k], space.engines[k].gpus) for k in narrow],
            v.small_nodes[p],
            [enc.family(f"pool_nodes[{p}]")],
        )


def packing_sizes(gpus_per_node: int, sizes: list[int] | set[int]) -> list[tuple[int, int]]:
    """(s, s · ⌊D / s⌋) for the sizes s whose packing rule is not implied by a smaller size's, smallest
    first: with D = `gpus_per_node`, the rule of s, Σ_{gpus ≥ s} gpus · replicas ≤ s⌊D / s⌋ · nodes,
    follows from a smaller size s' whose s'⌊D / s'⌋ is the same (its sum counts more engines).

    Raises:
        InternalError: the sizes are not a divisibility chain (the rules are exact only then).
    """
    chain = sorted(set(sizes))
    for a, b in itertools.pairwise(chain):
        if b % a:
            raise InternalError(f"narrow engine sizes {chain} on {gpus_per_node}-GPU nodes are not a chain")
    out: list[tuple[int, int]] = []
    for size in chain:
        usable = size * (gpus_per_node // size)
        if not out or usable < out[-1][1]:
            out.append((size, usable))
    return out


def post_node_packing(
    model: cp_model.CpModel,
    pool: int,
    gpus_per_node: int,
    narrow: list[tuple[cp_model.IntVar, int]],
    nodes: cp_model.IntVar,
    enforce: list[cp_model.IntVar],
) -> None:
    """The packing rules of one pool's narrow engines, (replicas, GPUs each) of `narrow`, into `nodes`
    nodes of `gpus_per_node` GPUs (module doc, `packing_sizes`), each enforced by `enforce`:

        node_packing_gpus[pool p | engines ≥ s GPUs]:  Σ_{gpus ≥ s} gpus · replicas ≤ s⌊D / s⌋ · nodes

    Necessary: in any packing a node's engines of at least s GPUs take a multiple of s GPUs, at most
    s⌊D / s⌋. Sufficient: first-fit decreasing (`decoder.place`) leaves every node's load a multiple of
    s once it has placed the engines of at least s GPUs, so it fails an s-GPU engine only when every
    one of the nodes' ⌊D / s⌋ − load / s free s-GPU slots is taken, i.e. when the rule of s fails."""
    for size, usable in packing_sizes(gpus_per_node, {g for _, g in narrow}):
        wide = [(x, g) for x, g in narrow if g >= size]
        gpus = LinearExpr.weighted_sum([x for x, _ in wide], [g for _, g in wide])
        rule = model.add(gpus <= usable * nodes)
        rule.with_name(f"node_packing_gpus[pool {pool} | engines >= {size} GPUs: <= {usable} GPUs per node]")
        rule.only_enforce_if(enforce)


def add_demand_milli_rps(enc: EncodedDeployment) -> None:
    """Capacity planning: Σ capacity of a model's engines ≥ its request rate (×1000, rounded up)."""
    if not enc.hard_demand:
        return
    for m, fm in enumerate(enc.space.models):
        if fm.demand_milli_rps:
            enc.model.add(enc.vars.capacity_milli_rps[m] >= fm.demand_milli_rps).only_enforce_if(
                enc.family(f"demand[{m}]")
            ).with_name(f"demand_milli_rps[{fm.name}]")


def add_concurrency(enc: EncodedDeployment) -> None:
    """A model with a concurrency cap: its replicas' running batches hold at most that many requests,
    Σ_e in_flight_e · replicas[e] ≤ concurrency (no slot waits for a request that never comes). N
    prompts sent at a rate (`FleetModel.open_loop_prompts`) hold no request out: no cap on aggregated
    engines (`FleetModel.held_cap`; their candidates already fit N), the prompts on role engines."""
    space, v = enc.space, enc.vars
    for m, fm in enumerate(space.models):
        cap = fm.concurrency if space.disaggregated else fm.held_cap
        if cap is None:
            continue
        # a request holds a prefill slot, then a decode slot, never both: the decode slots bound it
        # (the prefill ranks' requests are the closed-loop rule's, `add_role_closed_loop`)
        ks = [k for k in space.engines_of(model=m) if space.engines[k].role != "prefill"]
        held = LinearExpr.weighted_sum([v.replicas[k] for k in ks], [space.engines[k].in_flight for k in ks])
        enc.model.add(held <= cap).only_enforce_if(enc.family(f"concurrency[{m}]")).with_name(
            f"concurrency[{fm.name}]"
        )


def queue_time_unit_us(space: DeploymentSpace, m: int, rooms: list[int]) -> int:
    """The time unit (µs, a power of ten dividing 10⁹) model m's `client_queue` constraints count the
    wait in: 1 unless the terms of room · X_m + units_per_rps · 10⁶ · (H_m − C_m) (a burst:
    room · 2N · 100 · X_m and units_per_rps · 10⁶ · D_m, D_m ≤ 100 · N (N + 1)) at their bounds could
    pass QUEUE_TERM_BOUND (rooms then round down to it: only more conservative). `rooms` are the rules'
    own room coefficients in µs (`queue_rooms_us`), so the scale is sized from the range the terms
    take, not from `Engine.queue_room_us` alone (a burst's room is less the first wave's prefill)."""
    fm = space.models[m]
    ks = space.engines_of(model=m)
    room = max((abs(r) for r in rooms), default=0)
    top_x = sum(space.engines[k].capacity_milli_rps * space.max_replicas(space.engines[k]) for k in ks)
    top_h = sum(space.engines[k].in_flight * space.max_replicas(space.engines[k]) for k in ks)
    scale = fm.units_per_rps * units.US_PER_S
    n = fm.burst_prompts
    q = 1

    def too_big(q: int) -> bool:
        if n is not None:
            big = SYNC_SCALE * 2 * n
            return room // q * big * top_x + scale // q * SYNC_SCALE * n * (n + 1) > QUEUE_TERM_BOUND
        return room // q * top_x + scale // q * (top_h + (fm.concurrency or 0)) > QUEUE_TERM_BOUND

    while q < 10**9 and too_big(q):
        q *= 10
    return q


def queue_rooms_us(space: DeploymentSpace, m: int, ks: list[int]) -> list[int]:
    """The room (µs) of each engine k of `ks` in model m's `client_queue` rule: its TTFT limit less its
    table TTFT (`Engine.queue_room_us`), and for a burst less its first wave's prefill at its most
    (`Engine.wave_us`). Negative where that alone passes the limit: such an engine is never used."""
    n = space.models[m].burst_prompts
    return [
        (space.engines[k].queue_room_us or 0) - (space.engines[k].wave_us(n) if n is not None else 0)
        for k in ks
    ]


def add_client_queue(enc: EncodedDeployment) -> None:
    """`vllm bench serve --max-concurrency C` caps only the client: the requests beyond what the engines
    hold wait in the server's queue (the router's, shared by every engine of the model), and TTFT
    counts from the send (`perf.serving.client_queue_s`, which the single-engine planner charges).
    By Little's law the wait is W_m = (C_m − H_m) / X_m s, H_m the requests the replicas hold at their
    running batches and X_m their capacity in requests/s; `concurrency` keeps C_m − H_m ≥ 0. Each used
    engine's TTFT at full load plus W_m stays within the limit, linear in the replica counts:
    used[e] ⇒ ⌊queue_room_e / q⌋ · X_m + (K / q) · H_m ≥ (K / q) · C_m, X_m in the model's rate units
    (rounded down), K = units_per_rps · 10⁶ (µs per s), q = `queue_time_unit_us` (1 but for huge
    fleets). Every rounding only lengthens the wait the solver sees. X_m and H_m are variables of
    their own, so each engine's rule has two terms: with a term per engine in every rule, CP-SAT's
    presolve took 10 s on benchmarks/deployment.py's capped fleet (567 candidates), 0.17 s in all
    now. Disaggregated models are left out: their queue is the prefill engines' (roles.py's budget).

    N prompts sent at once (`FleetModel.burst_prompts`) drain instead: the Q_m = N − H_m queued wait
    on average G(Q_m) / X_m, G the chords of Q (Q + 1) / 2N (`client_rules.drain_lines`, at most 1/8 above
    it), so with D_m ≥ 2N · G(Q_m) (a variable above every chord line, Q_m ≥ N − H_m):
    used[e] ⇒ ⌊room_e / q⌋ · 2N · X_m ≥ (K / q) · D_m, room_e = queue_room_e − the first wave's
    prefill (`queue_rooms_us`). An engine whose room is negative (its first wave alone passes the TTFT
    limit: Llama-3.1-70B tp1 pp4 on H100s, 1,000 ShareGPT prompts at TTFT 1 s, −6.9 s) can never
    meet the rule (X_m > 0 once it is used, D_m ≥ 0), so it gets `replicas = 0` under the family
    instead: the explanation still names the client's queue, and no coefficient sized from the room
    the TTFT leaves meets a term of −7 s × 2N · 100 × X_m (an int64 overflow CP-SAT refused)."""
    space, v = enc.space, enc.vars
    if space.disaggregated:
        add_role_client_queue(enc)
        return
    for m, fm in enumerate(space.models):
        if not fm.queued:
            continue
        roomed = [k for k in space.engines_of(model=m) if space.engines[k].queue_room_us is not None]
        if not roomed:
            continue
        family = enc.family(f"client_queue[{m}]")
        rooms = dict(zip(roomed, queue_rooms_us(space, m, roomed), strict=True))
        for k in roomed:
            if rooms[k] < 0:  # its first wave alone passes the limit (or its table TTFT does)
                never = enc.model.add(v.replicas[k] == 0)
                never.with_name(f"client_queue[{fm.name} | {space.engines[k].label} #{k}: room < 0]")
                never.only_enforce_if(family)
        ks = [k for k in roomed if rooms[k] >= 0]
        if not ks:
            continue
        q = queue_time_unit_us(space, m, [rooms[k] for k in ks])
        scale = fm.units_per_rps * units.US_PER_S // q
        every = space.engines_of(model=m)
        top_x = sum(space.engines[k].capacity_milli_rps * space.max_replicas(space.engines[k]) for k in every)
        top_h = sum(space.engines[k].in_flight * space.max_replicas(space.engines[k]) for k in every)
        rate = enc.model.new_int_var(0, top_x, f"queue_capacity[{fm.name}]")
        held = enc.model.new_int_var(0, top_h, f"queue_held[{fm.name}]")
        enc.model.add(rate == v.capacity_milli_rps[m])
        enc.model.add(
            held
            == LinearExpr.weighted_sum(
                [v.replicas[k] for k in every], [space.engines[k].in_flight for k in every]
            )
        )
        n = fm.burst_prompts
        if n is not None:
            drain = _drain_units(enc, n, burst_sync_pct(fm), held, fm.name)
        for k, used in zip(ks, used_literals(enc.model, [v.replicas[k] for k in ks]), strict=True):
            room = rooms[k] // q
            if n is not None:  # the first wave's prefill queue, at its most (every prompt in a wave)
                rule = enc.model.add(room * SYNC_SCALE * 2 * n * rate >= scale * drain)
            else:
                rule = enc.model.add(room * rate + scale * held >= scale * (fm.queue_clients or 0))
            rule.with_name(f"client_queue[{fm.name} | {space.engines[k].label} #{k}]")
            rule.only_enforce_if([family, used])


def add_role_client_queue(enc: EncodedDeployment) -> None:
    """A closed-loop client of a disaggregated model: its mean TTFT is C / X − T by Little's law (X the
    flow, T the time a request holds a decode slot; `client_rules.role_queue_room_us`), so for every used
    decode engine, used[e] ⇒ ⌊(limit + T_e) / q⌋ · flow ≥ (K / q) · C (family `client_queue[m]`)."""
    space, v = enc.space, enc.vars
    for m, fm in enumerate(space.models):
        ks = [k for k in _role(enc, m, "decode") if role_queue_room_us(fm, space.engines[k]) is not None]
        if not ks or fm.queue_clients is None:
            continue
        rooms = [role_queue_room_us(fm, space.engines[k]) or 0 for k in ks]
        q = role_queue_time_unit_us(space, m, max(rooms))
        scale = fm.units_per_rps * units.US_PER_S // q
        family = enc.family(f"client_queue[{m}]")
        for k, room, used in zip(
            ks, rooms, used_literals(enc.model, [v.replicas[k] for k in ks]), strict=True
        ):
            rule = enc.model.add(room // q * v.capacity_milli_rps[m] >= scale * fm.queue_clients)
            rule.with_name(f"client_queue[{fm.name} | decode {space.engines[k].label} #{k}]")
            rule.only_enforce_if([family, used])


def add_role_closed_loop(enc: EncodedDeployment) -> None:
    """A disaggregated model with a concurrency cap C: its C requests in flight hold every request's
    cycle, the prompts queued at the prefill ranks included (Little's law; the rule, its units and its
    conservative roundings are `client_rules.closed_loop_rule`'s), family `closed_loop[m]`
    (`post_closed_loop`)."""
    space, v = enc.space, enc.vars
    for m, fm in enumerate(space.models):
        rule = closed_loop_rule(space, m)
        if rule is not None:
            family = enc.family(f"closed_loop[{m}]")
            post_closed_loop(enc.model, fm.name, rule, v.replicas, v.capacity_milli_rps[m], [family])


def post_closed_loop(
    model: cp_model.CpModel,
    name: str,
    rule: ClosedLoopRule,
    replicas: list[cp_model.IntVar],
    flow: cp_model.LinearExprT,
    enforce: list[cp_model.IntVar],
) -> None:
    """`rule` (`client_rules.closed_loop_rule`) over the role engines' replica counts `replicas`
    (indexed as the rule's engines) and X = `flow`, with used[e] ⇐ replicas[e] ≥ 1:

        used decode d  ⇒ H_D ≥ hold_d · X
        used prefill p ⇒ H_P ≥ c · X + a · N_P    for every pair (c, a) of p (its chords)
        H_D + H_P ≤ room

    H_D the requests in decode slots, H_P those before them (overhead, prefill queue and prefill, KV
    transfer), in the rule's units. X is a copy of `flow` bounded by `rule.top_flow`, so that no term
    can pass 64 bits. Shared with the mixed front's encoder."""
    x = model.new_int_var(0, rule.top_flow, f"closed_loop_flow[{name}]")
    tie = model.add(x == flow).with_name(f"closed_loop[{name} | flow]")
    held_d = model.new_int_var(0, rule.room, f"closed_loop_decode[{name}]")
    held_p = model.new_int_var(0, rule.room, f"closed_loop_prefill[{name}]")
    dks = list(rule.hold)
    for k, used in zip(dks, used_literals(model, [replicas[k] for k in dks]), strict=True):
        held = model.add(held_d >= rule.hold[k] * x).with_name(f"closed_loop[{name} | decode #{k}]")
        held.only_enforce_if([*enforce, used])
    n_p = LinearExpr.sum([replicas[k] for k in rule.prefill])
    pks = list(rule.prefill)
    for k, used in zip(pks, used_literals(model, [replicas[k] for k in pks]), strict=True):
        for c, a in rule.prefill[k]:
            held = model.add(held_p >= LinearExpr.weighted_sum([x, n_p], [c, a]))
            held.with_name(f"closed_loop[{name} | prefill #{k}]")
            held.only_enforce_if([*enforce, used])
    # Implied by the rules above (some decode and some prefill engine is used once X > 0), without
    # their enforcement literals, so that the LP bounds see them: the least hold, and at each chord
    # every prefill engine shares, its least coefficients. Qwen3-8B on 1x8xH100+1x8xA100-80G at 256
    # clients: throughput OPTIMAL in 4.0 s with them, FEASIBLE after 60 s without.
    cuts = [model.add(held_d >= min(rule.hold.values()) * x)]
    lines = list(rule.prefill.values())
    for i in range(min(len(pairs) for pairs in lines)):
        least = (min(pairs[i][0] for pairs in lines), min(pairs[i][1] for pairs in lines))
        cuts.append(model.add(held_p >= LinearExpr.weighted_sum([x, n_p], list(least))))
    total = model.add(held_d + held_p <= rule.room).with_name(f"closed_loop[{name}]")
    if enforce:
        for constraint in (tie, total, *cuts):
            constraint.only_enforce_if(enforce)


def role_queue_time_unit_us(space: DeploymentSpace, m: int, room_us: int) -> int:
    """The time unit (µs, a power of ten dividing 10⁹) of a disaggregated model's `client_queue` rules:
    1 unless room · the flow's bound or K · C could pass QUEUE_TERM_BOUND (rooms round down: only
    more conservative)."""
    fm = space.models[m]
    top_x = sum(
        space.engines[k].capacity_milli_rps * space.max_replicas(space.engines[k])
        for k in space.engines_of(model=m)
    )
    scale = fm.units_per_rps * units.US_PER_S
    q = 1
    while q < 10**9 and max(room_us // q * top_x, scale // q * (fm.queue_clients or 0)) > QUEUE_TERM_BOUND:
        q *= 10
    return q


def _drain_units(
    enc: EncodedDeployment, prompts: int, sync_pct: int, held: cp_model.IntVar, name: str
) -> cp_model.IntVar:
    """D ≥ every chord line of the Q ≥ N − held queued prompts of a burst (`client_rules.drain_lines`):
    completions the mean prompt waits, × 2N · 100 (an integer)."""
    queued = enc.model.new_int_var(0, prompts, f"burst_queued[{name}]")
    enc.model.add(queued + held >= prompts)
    drain = enc.model.new_int_var(0, SYNC_SCALE * prompts * (prompts + 1), f"burst_drain[{name}]")
    for c, k in drain_lines(prompts, sync_pct):
        enc.model.add(drain >= c + k * queued)
    return drain


def add_every_model_deployed(enc: EncodedDeployment) -> None:
    """Each model of the fleet gets at least one engine."""
    space, v = enc.space, enc.vars
    for m, fm in enumerate(space.models):
        ks = space.engines_of(model=m)
        enc.model.add(LinearExpr.sum([v.replicas[k] for k in ks]) >= 1).only_enforce_if(
            enc.family(f"deployed[{m}]")
        ).with_name(f"deployed[{fm.name}]")


def _role(enc: EncodedDeployment, m: int, role: str) -> list[int]:
    return [k for k in enc.space.engines_of(model=m) if enc.space.engines[k].role == role]


def add_role_balance(enc: EncodedDeployment, role: str) -> None:
    """Every used replica of a role carries flow / n (the proxy's round robin over the role's n
    replicas) within its capacity: used[e] ⇒ rating_e · n ≥ isl · flow (prefill: prompt milli-tokens/s)
    or ≥ flow (decode: milli-requests/s); `used_literals` ties used[e] to replicas[e] ≥ 1. The implied
    Σ rating_e · replicas[e] ≥ the same (n × the least rating is at most the sum) is added too: it
    gives the LP the bound the indicator constraints hide (Llama-3.2-1B on 512x8xH100, 11 role
    engines: OPTIMAL in 0.1 s with it, FEASIBLE at a 5 s limit without)."""
    space, v = enc.space, enc.vars
    for m, fm in enumerate(space.models):
        ks = _role(enc, m, role)
        n = LinearExpr.sum([v.replicas[k] for k in ks])
        need = (fm.workload.isl if role == "prefill" else 1) * v.capacity_milli_rps[m]
        family = enc.family(f"{role}_balance[{m}]")
        rated = LinearExpr.weighted_sum([v.replicas[k] for k in ks], [space.engines[k].rating for k in ks])
        enc.model.add(rated >= need).only_enforce_if(family).with_name(f"{role}_rated[{fm.name}]")
        for k, used in zip(ks, used_literals(enc.model, [v.replicas[k] for k in ks]), strict=True):
            balance = enc.model.add(space.engines[k].rating * n >= need)
            balance.with_name(f"{role}_balance[{fm.name} | {space.engines[k].label}]")
            balance.only_enforce_if([family, used])  # returns None with several literals (ortools 9.15)


def used_literals(model: cp_model.CpModel, replicas: list[cp_model.IntVar]) -> list[cp_model.IntVar]:
    """One literal per replica count, true when the count is at least 1 (false ⇒ count 0)."""
    out = []
    for x in replicas:
        used = model.new_bool_var(f"used[{x.name}]")
        model.add(x == 0).only_enforce_if(used.Not())
        out.append(used)
    return out


def add_roles_deployed(enc: EncodedDeployment) -> None:
    """Each model of a disaggregated fleet gets at least one prefill and one decode engine."""
    space, v = enc.space, enc.vars
    for m, fm in enumerate(space.models):
        for role in ("prefill", "decode"):
            ks = _role(enc, m, role)
            enc.model.add(LinearExpr.sum([v.replicas[k] for k in ks]) >= 1).only_enforce_if(
                enc.family(f"deployed[{m}]")
            ).with_name(f"{role}_deployed[{fm.name}]")


# ----- objectives -------------------------------------------------------------------------------
