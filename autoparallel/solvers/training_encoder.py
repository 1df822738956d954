"""CP-SAT model of a training layout: knobs as variables, costs from the integer tables.

Variables (DESIGN.md "The CP-SAT formulation"; never a list of whole candidate configurations):
    x[i]          one-hot over the (tp, pp, cp, ep) shapes          I = Σ i·x[i]
    micro[m]      one-hot over micro-batch sizes                     M = Σ m·micro[m]
    state[z]      one-hot over ZeRO stage × offload modes            Z = Σ z·state[z]
    ga            grad-accumulation, element of the [I, M] table: micro × dp × ga == global batch
    n[s]          decoder layers of stage slot s (0 when s ≥ pp);    Σ n[s] = layers, prefix P[s]
    cnt[s][k]     layers of kind k on stage s: C_k[P[s+1]] − C_k[P[s]] (prefix-count tables, add_element)
    r[s][c]       recompute mode of stage s, one-hot
Per-layer costs are integer variables indexed by the knobs (add_element on I·|M| + M or I·|Z| + Z);
stage sums multiply them by the layer counts (add_multiplication_equality on small domains).

Each constraint family sits behind one assumption literal (`EncodedTraining.families`), so that an
INFEASIBLE answer names the families in conflict (SufficientAssumptionsForInfeasibility).
Units: MiB and µs (training_space.MIB_BYTES, US_S).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from autoparallel.configs import ZeroStage
from autoparallel.solvers.partition import even_partition
from autoparallel.solvers.training_space import Table2, TrainingTables

IntVar = cp_model.IntVar
Expr = cp_model.LinearExprT


@dataclass
class TrainingVars:
    """The decision variables and the cost expressions built on them."""

    shape: list[IntVar]
    micro: list[IntVar]
    state: list[IntVar]
    shape_index: IntVar
    micro_index: IntVar
    state_index: IntVar
    grad_accum: IntVar
    pp: Expr
    world: Expr
    active: list[IntVar]
    last: list[IntVar]
    layers: list[IntVar]
    prefix: list[IntVar]
    counts: list[list[Expr]]
    recompute: list[list[IntVar]]
    by_mode: list[list[list[Expr]]] = field(default_factory=list)
    """[s][k][c]: cnt[s][k] when stage s uses recompute mode c, else 0."""
    memory_mib: list[IntVar] = field(default_factory=list)
    time_us: list[IntVar] = field(default_factory=list)
    sync_us: list[IntVar] = field(default_factory=list)
    optim_us: list[IntVar] = field(default_factory=list)
    max_time_us: IntVar | None = None
    step_us: IntVar | None = None
    peak_mib: IntVar | None = None


@dataclass
class EncodedTraining:
    """A built CP-SAT model with its variables, tables and family literals."""

    model: cp_model.CpModel
    vars: TrainingVars
    tables: TrainingTables
    families: dict[str, IntVar]
    """Family name → assumption literal enabling that family's constraints."""


# ----- helpers ----------------------------------------------------------------------------------------
def _flat(table: Table2) -> list[int]:
    return [v for row in table for v in row]


def _lookup(model: cp_model.CpModel, index: Expr, table: Table2, name: str) -> IntVar:
    """An integer variable equal to table[index] (row-major over the table)."""
    values = _flat(table)
    var = model.new_int_var(min(values), max(values), name)
    model.add_element(index, values, var)
    return var


def _product(model: cp_model.CpModel, a: Expr, b: Expr, hi: int, name: str) -> IntVar:
    """An integer variable equal to a·b (both non-negative, product ≤ hi)."""
    var = model.new_int_var(0, max(hi, 0), name)
    model.add_multiplication_equality(var, [a, b])
    return var


def _gated(model: cp_model.CpModel, value: Expr, hi: int, on: IntVar | list[IntVar], name: str) -> IntVar:
    """An integer variable equal to `value` when every literal of `on` holds, else 0."""
    lits = on if isinstance(on, list) else [on]
    var = model.new_int_var(0, max(hi, 0), name)
    model.add(var == value).only_enforce_if(lits)
    if len(lits) == 1:
        model.add(var == 0).only_enforce_if(lits[0].Not())
    else:
        model.add(var == 0).only_enforce_if(lits[-1].Not())
    return var


def _hi(*tables: Table2) -> int:
    return max((v for t in tables for row in t for v in row), default=0)


# ----- variables --------------------------------------------------------------------------------------
def add_choices(model: cp_model.CpModel, t: TrainingTables) -> TrainingVars:
    """One-hots for shape, micro-batch, state mode; stage slots with layer counts and recompute modes."""
    sp = t.space
    shapes, L, S = sp.shapes, sp.num_layers, sp.max_pp
    x = [model.new_bool_var(f"shape[{s.label()}]") for s in shapes]
    mb = [model.new_bool_var(f"micro=={v}") for v in sp.micro_batches]
    st = [model.new_bool_var(f"state[{z.label()}]") for z in sp.state_modes]
    for group in (x, mb, st):
        model.add_exactly_one(group)
    idx_i = model.new_int_var(0, len(x) - 1, "I")
    idx_m = model.new_int_var(0, len(mb) - 1, "M")
    idx_z = model.new_int_var(0, len(st) - 1, "Z")
    for idx, group in ((idx_i, x), (idx_m, mb), (idx_z, st)):
        model.add(idx == sum(k * lit for k, lit in enumerate(group)))
    ga = _lookup(model, idx_i * len(mb) + idx_m, t.grad_accum, "grad_accum")
    pp = sum(s.pp * lit for s, lit in zip(shapes, x, strict=True))
    world = sum(s.world * lit for s, lit in zip(shapes, x, strict=True))
    active, last = [], []
    for s in range(S):
        a = model.new_bool_var(f"active[{s}]")
        model.add(a == sum(lit for sh, lit in zip(shapes, x, strict=True) if sh.pp > s))
        e = model.new_bool_var(f"last[{s}]")
        model.add(e == sum(lit for sh, lit in zip(shapes, x, strict=True) if sh.pp == s + 1))
        active.append(a)
        last.append(e)
    layers = [model.new_int_var(0, L, f"layers[{s}]") for s in range(S)]
    prefix = [model.new_int_var(0, L, f"prefix[{s}]") for s in range(S + 1)]
    recompute = [[model.new_bool_var(f"recompute[{s}]=={c.value}") for c in sp.recompute_modes]
                 for s in range(S)]
    for s in range(S):
        model.add_exactly_one(recompute[s])
        model.add(recompute[s][0] == 1).only_enforce_if(active[s].Not())  # idle slots: no symmetry
    return TrainingVars(shape=x, micro=mb, state=st, shape_index=idx_i, micro_index=idx_m, state_index=idx_z,
                        grad_accum=ga, pp=pp, world=world, active=active, last=last, layers=layers,
                        prefix=prefix, counts=[], recompute=recompute)


# ----- constraint families ----------------------------------------------------------------------------
def add_global_batch(model: cp_model.CpModel, v: TrainingVars, lit: IntVar) -> None:
    """micro × dp × grad_accum == global batch exactly: the [shape, micro] table holds 0 where it cannot."""
    model.add(v.grad_accum >= 1).only_enforce_if(lit).with_name("global_batch")


def add_zero_pipeline(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, lit: IntVar) -> None:
    """ZeRO-2/3 only without pipeline parallelism: DeepSpeed's PipelineEngine asserts zero stage < 2
    ("ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism", deepspeed/runtime/pipe/engine.py)."""
    if len(v.active) < 2:
        return
    for z, mode in enumerate(t.space.state_modes):
        if mode.zero in (ZeroStage.GRADIENTS, ZeroStage.PARAMETERS):
            model.add_bool_or([v.state[z].Not(), v.active[1].Not()]).only_enforce_if(lit)


def add_stage_partition(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars,
                        nonempty: IntVar, uniform: IntVar | None) -> None:
    """Contiguous stages: Σ n[s] = layers, prefix sums, n[s] = 0 on idle slots, ≥ 1 on active ones;
    with `uniform`, n[s] is Megatron's even split of the chosen pp. Layer-kind counts per stage come from
    prefix-count tables indexed by the stage boundaries."""
    sp = t.space
    L, S = sp.num_layers, sp.max_pp
    model.add(v.prefix[0] == 0)
    for s in range(S):
        model.add(v.prefix[s + 1] == v.prefix[s] + v.layers[s])
        model.add(v.layers[s] == 0).only_enforce_if(v.active[s].Not())
        model.add(v.layers[s] >= 1).only_enforce_if([v.active[s], nonempty])
        if uniform is not None:
            split = sum(even_partition(L, sh.pp)[s] * lit
                        for sh, lit in zip(sp.shapes, v.shape, strict=True) if sh.pp > s)
            model.add(v.layers[s] == split).only_enforce_if(uniform)
    model.add(v.prefix[S] == L)
    if t.num_kinds == 1:
        v.counts = [[n] for n in v.layers]
    else:
        v.counts = _kind_counts(model, t, v)
    v.by_mode = [[_split_by_mode(model, v, s, k, L) for k in range(t.num_kinds)] for s in range(S)]


def _kind_counts(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars) -> list[list[Expr]]:
    """cnt[s][k] = C_k[P[s+1]] − C_k[P[s]] with C_k[j] the layers of kind k among the first j."""
    sp = t.space
    S = sp.max_pp
    cum = []
    for k in range(t.num_kinds):
        table = [0]
        for kind in sp.kind_of_layer:
            table.append(table[-1] + (kind == k))
        at = [model.new_int_var(0, table[-1], f"kind{k}_before[{s}]") for s in range(S + 1)]
        for s in range(S + 1):
            model.add_element(v.prefix[s], table, at[s])
        cum.append(at)
    return [[cum[k][s + 1] - cum[k][s] for k in range(t.num_kinds)] for s in range(S)]


def add_recompute_choice(model: cp_model.CpModel, v: TrainingVars, uniform: IntVar) -> None:
    """One recompute mode for all active stages (when per-stage recompute is off)."""
    for s in range(1, len(v.recompute)):
        for c, lit in enumerate(v.recompute[s]):
            model.add(lit == v.recompute[0][c]).only_enforce_if([v.active[s], uniform])


def _split_by_mode(model: cp_model.CpModel, v: TrainingVars, s: int, k: int, L: int) -> list[Expr]:
    """cnt[s][k] split over the stage's recompute one-hot: cnt = Σ_c cnt_c, cnt_c ≤ L·r[s][c]."""
    modes = v.recompute[s]
    if len(modes) == 1:
        return [v.counts[s][k]]
    parts = [model.new_int_var(0, L, f"cnt[{s}][{k}][c={c}]") for c in range(len(modes))]
    model.add(sum(parts) == v.counts[s][k])
    for part, lit in zip(parts, modes, strict=True):
        model.add(part <= L * lit)
    return list(parts)


def add_stage_memory(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, lit: IntVar) -> None:
    """Per stage s, allocated MiB ≤ usable / (1 + fragmentation):
        Σ_k cnt·state[k] + inflight(s)·Σ_k,c cnt_c·act[k][c] + [s = 0]·(embedding) + [last]·(head + logits)
    with inflight(s) = min(pp − s, grad_accum) under 1F1B (Narayanan et al. 2021 §2.2.1)."""
    sp = t.space
    L, S = sp.num_layers, sp.max_pp
    nm, nz = len(sp.micro_batches), len(sp.state_modes)
    im = v.shape_index * nm + v.micro_index
    iz = v.shape_index * nz + v.state_index
    state = [_lookup(model, iz, t.state_mib[k], f"state_mib[{k}]") for k in range(t.num_kinds)]
    act = [[_lookup(model, im, t.act_mib[k][c], f"act_mib[{k}][{c}]") for c in range(len(sp.recompute_modes))]
           for k in range(t.num_kinds)]
    first = _lookup(model, iz, t.first_state_mib, "first_state_mib") + _lookup(
        model, im, t.first_act_mib, "first_act_mib")
    last_hi = _hi(t.last_state_mib) + _hi(t.last_act_mib)
    last = _lookup(model, iz, t.last_state_mib, "last_state_mib") + _lookup(
        model, im, t.last_act_mib, "last_act_mib")
    ga_hi = _hi(t.grad_accum)
    for s in range(S):
        s_hi = L * max(_hi(*t.state_mib), 1)
        a_hi = L * max(_hi(*(x for row in t.act_mib for x in row)), 1)
        states = sum(_product(model, v.counts[s][k], state[k], s_hi, f"state_mib[s={s},k={k}]")
                     for k in range(t.num_kinds))
        acts = []
        for k in range(t.num_kinds):
            for c, part in enumerate(v.by_mode[s][k]):
                acts.append(_product(model, part, act[k][c], a_hi, f"act_mib[s={s},k={k},c={c}]"))
        per_mb = model.new_int_var(0, a_hi, f"act_per_microbatch_mib[{s}]")
        model.add(per_mb == sum(acts))
        gap = model.new_int_var(0, S, f"pp_minus_stage[{s}]")
        model.add(gap == v.pp - s).only_enforce_if(v.active[s])
        model.add(gap == 0).only_enforce_if(v.active[s].Not())
        inflight = model.new_int_var(0, S, f"inflight[{s}]")
        model.add_min_equality(inflight, [gap, v.grad_accum])
        acts_all = _product(model, inflight, per_mb, a_hi * min(S, ga_hi), f"act_mib[{s}]")
        mem = model.new_int_var(0, s_hi + a_hi * S + _hi(t.first_state_mib) + _hi(t.first_act_mib) + last_hi,
                                f"memory_mib[{s}]")
        lastx = _gated(model, last, last_hi, v.last[s], f"last_mib[{s}]")
        model.add(mem == states + acts_all + (first if s == 0 else 0) + lastx)
        model.add(mem <= t.capacity_mib).only_enforce_if(lit).with_name(f"memory[stage={s}]")
        v.memory_mib.append(mem)
    v.peak_mib = model.new_int_var(0, max(t.capacity_mib, 1) * 64, "peak_mib")
    model.add_max_equality(v.peak_mib, v.memory_mib)


def add_stage_time(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars) -> None:
    """Per stage, one micro-batch forward + backward (µs):
        Σ_k,c cnt_c·layer[k][c] + hop·[active] + [s = 0]·(embedding + ZeRO-3 gathers) + [last]·LM head."""
    sp = t.space
    L, S = sp.num_layers, sp.max_pp
    nm, nc = len(sp.micro_batches), len(sp.recompute_modes)
    im = v.shape_index * nm + v.micro_index
    tau = [[_lookup(model, im, t.layer_us[k][c], f"layer_us[{k}][{c}]") for c in range(nc)]
           for k in range(t.num_kinds)]
    hop = _lookup(model, im, t.hop_us, "hop_us")
    first = _lookup(model, im, t.first_us, "first_us")
    last = _lookup(model, im, t.last_us, "last_us")
    zero3 = [lit for z, lit in enumerate(v.state) if sp.state_modes[z].zero is ZeroStage.PARAMETERS]
    z3_hi = _hi(*t.zero3_us)
    z3 = model.new_int_var(0, z3_hi, "zero3_us")
    if zero3:
        on = model.new_bool_var("zero3")
        model.add(on == sum(zero3))
        for c in range(nc):
            model.add(z3 == _lookup(model, im, t.zero3_us[c], f"zero3_us[{c}]")).only_enforce_if(
                [on, v.recompute[0][c]])
        model.add(z3 == 0).only_enforce_if(on.Not())
    else:
        model.add(z3 == 0)
    t_hi = L * max(_hi(*(x for row in t.layer_us for x in row)), 1)
    e_hi = _hi(t.hop_us) + _hi(t.first_us) + _hi(t.last_us) + z3_hi
    for s in range(S):
        parts = []
        for k in range(t.num_kinds):
            for c, part in enumerate(v.by_mode[s][k]):
                parts.append(_product(model, part, tau[k][c], t_hi, f"layer_us[s={s},k={k},c={c}]"))
        hop_s = _gated(model, hop, _hi(t.hop_us), v.active[s], f"hop_us[{s}]")
        last_s = _gated(model, last, _hi(t.last_us), v.last[s], f"last_us[{s}]")
        time = model.new_int_var(0, t_hi + e_hi, f"time_us[{s}]")
        model.add(time == sum(parts) + hop_s + last_s + ((first + z3) if s == 0 else 0))
        v.time_us.append(time)



def add_step_time(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars) -> None:
    """step = (grad_accum − 1)·max_s time + Σ_s time + max_s sync + max_s optimizer (perf/training.py):
        1F1B pipeline (m − 1)·max + Σ stages (Narayanan et al. 2021 §2.2.1);
        sync[s] = max(total[s] − overlap·time[s], total[s] / layers[s]), total[s] = Σ_k cnt·bw[k]
                  + max over present kinds of latency[k] (+ embedding / head on first / last);
        optim[s] = Σ_k cnt·optim[k] (+ embedding / head)."""
    sp = t.space
    L, S, K = sp.num_layers, sp.max_pp, t.num_kinds
    nz = len(sp.state_modes)
    iz = v.shape_index * nz + v.state_index
    bw = [_lookup(model, iz, t.sync_bw_us[k], f"sync_bw_us[{k}]") for k in range(K)]
    lat = [_lookup(model, iz, t.sync_lat_us[k], f"sync_lat_us[{k}]") for k in range(K)]
    opt = [_lookup(model, iz, t.optim_us[k], f"optim_us[{k}]") for k in range(K)]
    s_first = _lookup(model, iz, t.sync_first_us, "sync_first_us")
    s_last = _lookup(model, iz, t.sync_last_us, "sync_last_us")
    o_first = _lookup(model, iz, t.optim_first_us, "optim_first_us")
    o_last = _lookup(model, iz, t.optim_last_us, "optim_last_us")
    bw_hi, lat_hi, o_hi = _hi(*t.sync_bw_us) * L, _hi(*t.sync_lat_us), _hi(*t.optim_us) * L
    sync_hi = bw_hi + lat_hi + _hi(t.sync_first_us) + _hi(t.sync_last_us)
    opt_hi = o_hi + _hi(t.optim_first_us) + _hi(t.optim_last_us)
    num, den = t.overlap
    t_hi = max(_hi_var(model, x) for x in v.time_us)
    for s in range(S):
        total = model.new_int_var(0, sync_hi, f"sync_total_us[{s}]")
        lats = []
        for k in range(K):
            present = v.active[s] if K == 1 else _present(model, v.counts[s][k], L, f"has_kind{k}[{s}]")
            lats.append(_gated(model, lat[k], lat_hi, present, f"sync_lat_us[s={s},k={k}]"))
        lat_s = model.new_int_var(0, lat_hi, f"sync_latency_us[{s}]")
        model.add_max_equality(lat_s, lats)
        model.add(total == sum(_product(model, v.counts[s][k], bw[k], bw_hi, f"sync_bw_us[s={s},k={k}]")
                               for k in range(K))
                  + lat_s + _gated(model, s_last, _hi(t.sync_last_us), v.last[s], f"sync_last_us[{s}]")
                  + (s_first if s == 0 else 0))
        hidden = model.new_int_var(0, t_hi * num // den + 1, f"sync_hidden_us[{s}]")
        model.add_division_equality(hidden, v.time_us[s] * num, den)
        layers = model.new_int_var(1, L, f"layers_or_one[{s}]")
        model.add_max_equality(layers, [v.layers[s], 1])
        floor = model.new_int_var(0, sync_hi, f"sync_floor_us[{s}]")
        model.add_division_equality(floor, total, layers)
        exposed = model.new_int_var(0, sync_hi, f"sync_us[{s}]")
        model.add_max_equality(exposed, [total - hidden, floor])
        v.sync_us.append(exposed)
        optim = model.new_int_var(0, opt_hi, f"optim_us[{s}]")
        model.add(optim == sum(_product(model, v.counts[s][k], opt[k], o_hi, f"optim_us[s={s},k={k}]")
                               for k in range(K))
                  + _gated(model, o_last, _hi(t.optim_last_us), v.last[s], f"optim_last_us[{s}]")
                  + (o_first if s == 0 else 0))
        v.optim_us.append(optim)
    v.max_time_us = model.new_int_var(0, t_hi, "max_time_us")
    model.add_max_equality(v.max_time_us, v.time_us)
    sync = model.new_int_var(0, sync_hi, "sync_us")
    model.add_max_equality(sync, v.sync_us)
    optim_max = model.new_int_var(0, opt_hi, "optim_us")
    model.add_max_equality(optim_max, v.optim_us)
    ga_hi = _hi(t.grad_accum)
    fill = _product(model, v.grad_accum - 1, v.max_time_us, max(ga_hi - 1, 0) * t_hi, "steady_us")
    v.step_us = model.new_int_var(0, max(ga_hi - 1, 0) * t_hi + S * t_hi + sync_hi + opt_hi, "step_us")
    model.add(v.step_us == fill + sum(v.time_us) + sync + optim_max)


def _present(model: cp_model.CpModel, count: Expr, hi: int, name: str) -> IntVar:
    """A literal true iff count ≥ 1."""
    lit = model.new_bool_var(name)
    model.add(count >= 1).only_enforce_if(lit)
    model.add(count == 0).only_enforce_if(lit.Not())
    del hi
    return lit


def _hi_var(model: cp_model.CpModel, var: IntVar) -> int:
    return int(list(model.proto.variables[var.index].domain)[-1])


# ----- objectives and model ---------------------------------------------------------------------------
OBJECTIVES = ("throughput", "mfu", "cost", "memory")
"""throughput: tokens/s = global batch · seq / step, i.e. minimize step time; mfu and cost: model FLOPs and
the token budget are fixed, so MFU ∝ 1 / (GPUs · step) and cost ∝ GPUs · step (equal to throughput when
the job uses the whole cluster); memory: maximize headroom, i.e. minimize the fullest stage's MiB."""


def objective_expr(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, name: str) -> Expr:
    """The integer expression to minimize for one objective name."""
    assert v.step_us is not None and v.peak_mib is not None
    if name == "throughput":
        return v.step_us
    if name in ("mfu", "cost"):
        worlds = {s.world for s in t.space.shapes}
        if len(worlds) == 1:
            return v.step_us
        gpus = model.new_int_var(min(worlds), max(worlds), "gpus")
        model.add(gpus == v.world)
        return _product(model, gpus, v.step_us, max(worlds) * _hi_var(model, v.step_us), f"{name}_gpu_us")
    if name == "memory":
        return v.peak_mib
    raise ValueError(f"unknown objective {name!r}")


@dataclass(frozen=True)
class Point:
    """One full assignment, for hints: indices into the space and per-stage layers / recompute indices."""

    shape: int
    micro: int
    state: int
    layers: tuple[int, ...]
    recompute: tuple[int, ...]


def add_hint(enc: EncodedTraining, p: Point) -> None:
    """Seed the search with `p` (CP-SAT completes the dependent variables)."""
    m, v = enc.model, enc.vars
    for group, chosen in ((v.shape, p.shape), (v.micro, p.micro), (v.state, p.state)):
        for k, lit in enumerate(group):
            m.add_hint(lit, k == chosen)
    for s in range(len(v.layers)):
        m.add_hint(v.layers[s], p.layers[s] if s < len(p.layers) else 0)
        c = p.recompute[s] if s < len(p.recompute) else 0
        for k, lit in enumerate(v.recompute[s]):
            m.add_hint(lit, k == c)


def build(t: TrainingTables) -> EncodedTraining:
    """The CP-SAT model of `t.space`: variables, every constraint family behind its literal, cost terms."""
    model = cp_model.CpModel()
    v = add_choices(model, t)
    fam: dict[str, IntVar] = {}
    opts = t.space.options

    def family(name: str) -> IntVar:
        fam[name] = model.new_bool_var(f"family[{name}]")
        return fam[name]

    add_global_batch(model, v, family("global_batch"))
    add_zero_pipeline(model, t, v, family("zero_pipeline"))
    add_stage_partition(model, t, v, family("stage_layers"),
                        None if opts.non_uniform_stages else family("uniform_stages"))
    if not opts.per_stage_recompute:
        add_recompute_choice(model, v, family("uniform_recompute"))
    add_stage_memory(model, t, v, family("memory"))
    add_stage_time(model, t, v)
    add_step_time(model, t, v)
    add_implied_bounds(model, t, v)
    return EncodedTraining(model=model, vars=v, tables=t, families=fam)


def add_implied_bounds(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars) -> None:
    """Redundant lower bounds per knob value that the products hide from the LP relaxation:
        Σ_s time ≥ W(i, m) and max_s time ≥ ⌈W / pp⌉, W = the least total work over recompute modes
        (all layers + embedding + head + one hop per stage); peak memory ≥ ⌈states / pp⌉."""
    sp = t.space
    counts = [sp.kind_of_layer.count(k) for k in range(t.num_kinds)]
    nm, nz = len(sp.micro_batches), len(sp.state_modes)
    work, share, pipe = [], [], []
    for i, shape in enumerate(sp.shapes):
        w_row, s_row, p_row = [], [], []
        for m in range(nm):
            ga = t.grad_accum[i][m]
            w = min(sum(n * t.layer_us[k][c][i][m] for k, n in enumerate(counts))
                    for c in range(len(sp.recompute_modes)))
            w += t.first_us[i][m] + t.last_us[i][m] + shape.pp * t.hop_us[i][m]
            w_row.append(w)
            s_row.append(-(-w // shape.pp))
            p_row.append(max(ga - 1, 0) * s_row[-1] + w)
        work.append(tuple(w_row))
        share.append(tuple(s_row))
        pipe.append(tuple(p_row))
    im = v.shape_index * nm + v.micro_index
    assert v.max_time_us is not None and v.step_us is not None and v.peak_mib is not None
    model.add(sum(v.time_us) >= _lookup(model, im, tuple(work), "work_lb_us"))
    model.add(v.max_time_us >= _lookup(model, im, tuple(share), "stage_lb_us"))
    model.add(v.step_us >= _lookup(model, im, tuple(pipe), "pipeline_lb_us"))
    states = tuple(
        tuple(-(-(sum(n * t.state_mib[k][i][z] for k, n in enumerate(counts)) + t.first_state_mib[i][z]
                  + t.last_state_mib[i][z]) // sh.pp) for z in range(nz))
        for i, sh in enumerate(sp.shapes))
    model.add(v.peak_mib >= _lookup(model, v.shape_index * nz + v.state_index, states, "state_lb_mib"))
