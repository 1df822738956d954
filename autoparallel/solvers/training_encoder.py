"""CP-SAT model of a training layout: knobs as variables, costs from the integer tables.

Variables (DESIGN.md "The CP-SAT formulation"; never a list of whole candidate configurations):
    x[i]        one-hot over the (tp, pp, cp, ep) shapes;  micro[m], state[z]: one-hots of the other knobs
    pm[i,m]     x[i] ∧ micro[m], linked by Σ_m pm = x[i], Σ_i pm = micro[m]; pz[i,z] likewise. Every
                table over (shape, micro) or (shape, state) is then a linear expression Σ pm·table,
                which the LP relaxation sees exactly.
    n[j]        decoder layers of stage slot j, counted FROM THE LAST STAGE (j = 0 is the last stage,
                j = pp − 1 the first), so that 1F1B's in-flight count min(j + 1, grad_accum) and the LM
                head's slot do not depend on pp; Σ n = layers, prefix sums Q[j]
    cnt[j][k]   layers of kind k in slot j: C_k[Q[j+1]] − C_k[Q[j]] (prefix-count tables, add_element)
    r[j][c]     recompute mode of slot j, one-hot; cnt split over it (cnt = Σ_c cnt_c, cnt_c ≤ L·r[j][c])
Stage sums multiply layer counts by per-layer costs (add_multiplication_equality on small domains);
products with small-domain factors (in-flight count, grad_accum) are split over their values instead.

Each constraint family sits behind one literal (`EncodedTraining.families`), assumed true, so that an
INFEASIBLE answer names the families in conflict. Units: MiB, µs (training_space, solvers/units.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from autoparallel.configs import ZeroStage
from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.partition import even_partition
from autoparallel.solvers.training_enumerate import Point, PointBound, Triple
from autoparallel.solvers.training_space import Table2, TrainingTables

IntVar = cp_model.IntVar
Expr = cp_model.LinearExprT


@dataclass
class TrainingVars:
    """Decision variables and the cost variables built on them (slots j: 0 = last stage)."""

    shape: list[IntVar]
    micro: list[IntVar]
    state: list[IntVar]
    pm: dict[tuple[int, int], IntVar]
    pz: dict[tuple[int, int], IntVar]
    grad_accum: IntVar
    active: list[IntVar]
    first: list[IntVar]
    layers: list[IntVar]
    recompute: list[list[IntVar]]
    counts: list[list[Expr]] = field(default_factory=list)
    by_mode: list[list[list[Expr]]] = field(default_factory=list)
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
    """Family name → the literal enabling that family's constraints (solved with all assumed true)."""


# ----- helpers ----------------------------------------------------------------------------------------
def _sum(items: Iterable[Expr]) -> cp_model.LinearExpr:
    return cp_model.LinearExpr.sum(list(items))


def _hi(*tables: Table2) -> int:
    return max((v for t in tables for row in t for v in row), default=0)


def _ub(model: cp_model.CpModel, var: IntVar) -> int:
    return int(list(model.proto.variables[var.index].domain)[-1])


def _var(model: cp_model.CpModel, expr: Expr, hi: int, name: str) -> IntVar:
    """A named variable in [0, hi] equal to `expr`."""
    var = model.new_int_var(0, max(hi, 0), name)
    model.add(var == expr)
    return var


def _pm_var(model: cp_model.CpModel, v: TrainingVars, table: Table2, name: str) -> IntVar:
    """table[i][m] of the chosen shape and micro-batch, as a variable (Σ pm[i,m]·table[i][m])."""
    return _var(model, sum(table[i][m] * lit for (i, m), lit in v.pm.items()), _hi(table), name)


def _pz_var(model: cp_model.CpModel, v: TrainingVars, table: Table2, name: str) -> IntVar:
    """table[i][z] of the chosen shape and state mode, as a variable."""
    return _var(model, sum(table[i][z] * lit for (i, z), lit in v.pz.items()), _hi(table), name)


def _product(model: cp_model.CpModel, a: Expr, b: Expr, hi: int, name: str) -> IntVar:
    """A variable equal to a·b (both non-negative, product ≤ hi)."""
    var = model.new_int_var(0, max(hi, 0), name)
    model.add_multiplication_equality(var, [a, b])
    return var


def _gated(model: cp_model.CpModel, value: Expr, hi: int, on: IntVar, name: str) -> IntVar:
    """A variable equal to `value` when `on`, else 0."""
    var = model.new_int_var(0, max(hi, 0), name)
    model.add(var == value).only_enforce_if(on)
    model.add(var == 0).only_enforce_if(on.Not())
    return var


def _split_by_value(
    model: cp_model.CpModel, value: IntVar, hi: int, lits: dict[int, Expr], name: str
) -> Expr:
    """Σ_f f·value·[lit_f] for a partition {lit_f} of the choices: value = Σ_f part_f, part_f ≤ hi·lit_f."""
    parts = {f: model.new_int_var(0, max(hi, 0), f"{name}[{f}]") for f in lits}
    model.add(sum(parts.values()) == value)
    for f, lit in lits.items():
        model.add(parts[f] <= max(hi, 0) * lit)
    return sum(f * part for f, part in parts.items())


# ----- variables --------------------------------------------------------------------------------------
def add_choices(model: cp_model.CpModel, t: TrainingTables) -> TrainingVars:
    """One-hots for shape, micro-batch and state mode, their pairwise products, stage slots."""
    sp = t.space
    shapes, L, S = sp.shapes, sp.num_layers, sp.max_pp
    x = [model.new_bool_var(f"shape[{s.label()}]") for s in shapes]
    mb = [model.new_bool_var(f"micro=={v}") for v in sp.micro_batches]
    st = [model.new_bool_var(f"state[{z.label()}]") for z in sp.state_modes]
    pm = {(i, m): model.new_bool_var(f"pm[{i},{m}]") for i in range(len(x)) for m in range(len(mb))}
    pz = {(i, z): model.new_bool_var(f"pz[{i},{z}]") for i in range(len(x)) for z in range(len(st))}
    for group in (x, mb, st):
        model.add_exactly_one(group)
    for pairs, cols in ((pm, mb), (pz, st)):
        for i, lit in enumerate(x):
            model.add(sum(pairs[(i, c)] for c in range(len(cols))) == lit)
        for c, lit in enumerate(cols):
            model.add(sum(pairs[(i, c)] for i in range(len(x))) == lit)
    ga = model.new_int_var(0, _hi(t.grad_accum), "grad_accum")
    model.add(ga == sum(t.grad_accum[i][m] * lit for (i, m), lit in pm.items()))
    active, first = [], []
    for j in range(S):
        a = model.new_bool_var(f"active[{j}]")
        model.add(a == sum(lit for sh, lit in zip(shapes, x, strict=True) if sh.pp > j))
        f = model.new_bool_var(f"first[{j}]")
        model.add(f == sum(lit for sh, lit in zip(shapes, x, strict=True) if sh.pp == j + 1))
        active.append(a)
        first.append(f)
    layers = [model.new_int_var(0, L, f"layers[{j}]") for j in range(S)]
    recompute = [
        [model.new_bool_var(f"recompute[{j}]=={c.value}") for c in sp.recompute_modes] for j in range(S)
    ]
    for j in range(S):
        model.add_exactly_one(recompute[j])
        model.add(recompute[j][0] == 1).only_enforce_if(active[j].Not())  # idle slots: no symmetry
    return TrainingVars(
        shape=x,
        micro=mb,
        state=st,
        pm=pm,
        pz=pz,
        grad_accum=ga,
        active=active,
        first=first,
        layers=layers,
        recompute=recompute,
    )


# ----- constraint families ----------------------------------------------------------------------------
def add_global_batch(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, lit: IntVar) -> None:
    """micro × dp × grad_accum == global batch exactly: pairs whose micro × dp does not divide it are out."""
    for (i, m), pair in v.pm.items():
        if not t.grad_accum[i][m]:
            model.add(pair == 0).only_enforce_if(lit)


def add_zero_pipeline(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, lit: IntVar) -> None:
    """ZeRO-2/3 only without pipeline parallelism: DeepSpeed's PipelineEngine asserts zero stage < 2
    ("ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism", deepspeed/runtime/pipe/engine.py)."""
    if len(v.active) < 2:
        return
    for z, mode in enumerate(t.space.state_modes):
        if mode.zero in (ZeroStage.GRADIENTS, ZeroStage.PARAMETERS):
            model.add_bool_or([v.state[z].Not(), v.active[1].Not()]).only_enforce_if(lit)


def add_stage_partition(
    model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, nonempty: IntVar, uniform: IntVar | None
) -> None:
    """Contiguous stages: Σ n[j] = layers, n[j] = 0 on idle slots, ≥ 1 on active ones (`nonempty`);
    with `uniform`, n is Megatron's even split of the chosen pp (remainder on the first stages).
    Layer-kind counts per slot come from prefix-count tables indexed by the slot boundaries."""
    sp = t.space
    L, S = sp.num_layers, sp.max_pp
    prefix = [model.new_int_var(0, L, f"prefix[{j}]") for j in range(S + 1)]
    model.add(prefix[0] == 0)
    for j in range(S):
        model.add(prefix[j + 1] == prefix[j] + v.layers[j])
        model.add(v.layers[j] == 0).only_enforce_if(v.active[j].Not())
        model.add(v.layers[j] >= 1).only_enforce_if([v.active[j], nonempty])
        if uniform is not None:
            split = sum(
                even_partition(L, sh.pp)[sh.pp - 1 - j] * lit
                for sh, lit in zip(sp.shapes, v.shape, strict=True)
                if sh.pp > j
            )
            model.add(v.layers[j] == split).only_enforce_if(uniform)
    model.add(prefix[S] == L)
    if t.num_kinds == 1:
        v.counts = [[n] for n in v.layers]
    else:
        backwards = sp.kind_of_layer[::-1]
        cum = []
        for k in range(t.num_kinds):
            table = [0]
            for kind in backwards:
                table.append(table[-1] + (kind == k))
            at = [model.new_int_var(0, table[-1], f"kind{k}_after[{j}]") for j in range(S + 1)]
            for j in range(S + 1):
                model.add_element(prefix[j], table, at[j])
            cum.append(at)
        v.counts = [[cum[k][j + 1] - cum[k][j] for k in range(t.num_kinds)] for j in range(S)]
    v.by_mode = [[_split_by_mode(model, v, j, k, L) for k in range(t.num_kinds)] for j in range(S)]


def _split_by_mode(model: cp_model.CpModel, v: TrainingVars, j: int, k: int, L: int) -> list[Expr]:
    modes = v.recompute[j]
    if len(modes) == 1:
        return [v.counts[j][k]]
    parts = [model.new_int_var(0, L, f"cnt[{j}][{k}][c={c}]") for c in range(len(modes))]
    model.add(sum(parts) == v.counts[j][k])
    for part, lit in zip(parts, modes, strict=True):
        model.add(part <= L * lit)
    return list(parts)


def add_recompute_choice(model: cp_model.CpModel, v: TrainingVars, uniform: IntVar) -> None:
    """One recompute mode for all active stages (when per-stage recompute is off)."""
    for j in range(1, len(v.recompute)):
        for c, lit in enumerate(v.recompute[j]):
            model.add(lit == v.recompute[0][c]).only_enforce_if([v.active[j], uniform])


def add_stage_memory(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, lit: IntVar) -> None:
    """Per stage, allocated MiB ≤ usable / (1 + fragmentation) (memory/training.py stage_memory_bytes):
        Σ_k cnt·state[k] + f_j·Σ_k,c cnt_c·act[k][c] + [first]·embedding + [last]·(head + logits),
    f_j = min(j + 1, grad_accum) micro-batches in flight under 1F1B (Narayanan et al. 2021 §2.2.1)."""
    sp = t.space
    L, S, K, C = sp.num_layers, sp.max_pp, t.num_kinds, len(sp.recompute_modes)
    state = [_pz_var(model, v, t.state_mib[k], f"state_mib[{k}]") for k in range(K)]
    act = [[_pm_var(model, v, t.act_mib[k][c], f"act_mib[{k}][{c}]") for c in range(C)] for k in range(K)]
    first = _var(
        model,
        _pz_var(model, v, t.first_state_mib, "first_state_mib")
        + _pm_var(model, v, t.first_act_mib, "first_act_mib"),
        _hi(t.first_state_mib) + _hi(t.first_act_mib),
        "first_mib",
    )
    last = _pz_var(model, v, t.last_state_mib, "last_state_mib") + _pm_var(
        model, v, t.last_act_mib, "last_act_mib"
    )
    s_hi = L * max(_hi(*t.state_mib), 1)
    a_hi = L * max(_hi(*(x for row in t.act_mib for x in row)), 1)
    for j in range(S):
        states = sum(
            _product(model, v.counts[j][k], state[k], s_hi, f"state_mib[j={j},k={k}]") for k in range(K)
        )
        per_mb = _var(
            model,
            sum(
                _product(model, part, act[k][c], a_hi, f"act_mib[j={j},k={k},c={c}]")
                for k in range(K)
                for c, part in enumerate(v.by_mode[j][k])
            ),
            a_hi,
            f"act_per_microbatch_mib[{j}]",
        )
        # f_j = grad_accum when it is ≤ j, else j + 1: split the activations over those cases.
        fly: dict[int, Expr] = {
            f: sum(p for (i, m), p in v.pm.items() if t.grad_accum[i][m] == f) for f in range(j + 1)
        }
        fly[j + 1] = sum(p for (i, m), p in v.pm.items() if t.grad_accum[i][m] > j)
        acts = _split_by_value(model, per_mb, a_hi, fly, f"act_in_flight_mib[{j}]")
        mem = model.new_int_var(
            0,
            s_hi
            + (j + 1) * a_hi
            + _hi(t.first_state_mib)
            + _hi(t.first_act_mib)
            + _hi(t.last_state_mib)
            + _hi(t.last_act_mib),
            f"memory_mib[{j}]",
        )
        extra = _gated(model, first, _ub(model, first), v.first[j], f"first_mib[{j}]")
        model.add(mem == _sum([states, acts, extra, last if j == 0 else 0]))
        model.add(mem <= t.capacity_mib).only_enforce_if(lit).with_name(f"memory[slot={j}]")
        v.memory_mib.append(mem)
    v.peak_mib = model.new_int_var(0, max(_ub(model, x) for x in v.memory_mib), "peak_mib")
    model.add_max_equality(v.peak_mib, v.memory_mib)


def add_stage_time(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars) -> None:
    """Per stage, one micro-batch forward + backward, µs (perf/training.py stage_time_s):
    Σ_k,c cnt_c·layer[k][c] + hop + [first]·(embedding + ZeRO-3 gathers) + [last]·(LM head + loss)."""
    sp = t.space
    L, S, K, C = sp.num_layers, sp.max_pp, t.num_kinds, len(sp.recompute_modes)
    tau = [[_pm_var(model, v, t.layer_us[k][c], f"layer_us[{k}][{c}]") for c in range(C)] for k in range(K)]
    hop = _pm_var(model, v, t.hop_us, "hop_us")
    first = _pm_var(model, v, t.first_us, "first_us")
    last = _pm_var(model, v, t.last_us, "last_us")
    zero3 = [lit for z, lit in enumerate(v.state) if sp.state_modes[z].zero is ZeroStage.PARAMETERS]
    z3 = model.new_int_var(0, _hi(*t.zero3_us), "zero3_us")
    if zero3:  # ZeRO-3 runs only with pp = 1: slot 0 is then the first and only stage
        on = model.new_bool_var("zero3")
        model.add(on == sum(zero3))
        for c in range(C):
            model.add(z3 == _pm_var(model, v, t.zero3_us[c], f"zero3_us[{c}]")).only_enforce_if(
                [on, v.recompute[0][c], v.first[0]]
            )
        model.add(z3 == 0).only_enforce_if(on.Not())
        model.add(z3 == 0).only_enforce_if(v.first[0].Not())
    else:
        model.add(z3 == 0)
    t_hi = L * max(_hi(*(x for row in t.layer_us for x in row)), 1)
    e_hi = _hi(t.hop_us) + _hi(t.first_us) + _hi(t.last_us) + _hi(*t.zero3_us)
    for j in range(S):
        parts = [
            _product(model, part, tau[k][c], t_hi, f"layer_us[j={j},k={k},c={c}]")
            for k in range(K)
            for c, part in enumerate(v.by_mode[j][k])
        ]
        time = model.new_int_var(0, t_hi + e_hi, f"time_us[{j}]")
        model.add(
            time
            == sum(parts)
            + _gated(model, hop, _hi(t.hop_us), v.active[j], f"hop_us[{j}]")
            + _gated(model, first, _hi(t.first_us), v.first[j], f"first_us[{j}]")
            + ((last + z3) if j == 0 else 0)
        )
        v.time_us.append(time)


def add_step_time(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars) -> None:
    """step = (grad_accum − 1)·max_j time + Σ_j time + max_j sync + max_j optimizer (perf/training.py):
    sync[j] = max(total − overlap·time[j], total / n[j]), total = Σ_k cnt·bw[k] + the largest latency
              of the kinds present (+ embedding on the first, head on the last stage);
    optim[j] = Σ_k cnt·optim[k] (+ embedding / head)."""
    sp = t.space
    L, S, K = sp.num_layers, sp.max_pp, t.num_kinds
    bw = [_pz_var(model, v, t.sync_bw_us[k], f"sync_bw_us[{k}]") for k in range(K)]
    lat = [_pz_var(model, v, t.sync_lat_us[k], f"sync_lat_us[{k}]") for k in range(K)]
    opt = [_pz_var(model, v, t.optim_us[k], f"optim_us[{k}]") for k in range(K)]
    s_first = _pz_var(model, v, t.sync_first_us, "sync_first_us")
    o_first = _pz_var(model, v, t.optim_first_us, "optim_first_us")
    s_last = _pz_var(model, v, t.sync_last_us, "sync_last_us")
    o_last = _pz_var(model, v, t.optim_last_us, "optim_last_us")
    bw_hi, lat_hi, o_hi = _hi(*t.sync_bw_us) * L, _hi(*t.sync_lat_us), _hi(*t.optim_us) * L
    sync_hi = bw_hi + lat_hi + _hi(t.sync_first_us) + _hi(t.sync_last_us)
    opt_hi = o_hi + _hi(t.optim_first_us) + _hi(t.optim_last_us)
    num, den = t.overlap
    t_hi = max(_ub(model, x) for x in v.time_us)
    for j in range(S):
        lats = []
        for k in range(K):
            present = v.active[j]
            if K > 1:
                present = model.new_bool_var(f"has_kind{k}[{j}]")
                model.add(v.counts[j][k] >= 1).only_enforce_if(present)
                model.add(v.counts[j][k] == 0).only_enforce_if(present.Not())
            lats.append(_gated(model, lat[k], lat_hi, present, f"sync_lat_us[j={j},k={k}]"))
        latency = model.new_int_var(0, lat_hi, f"sync_latency_us[{j}]")
        model.add_max_equality(latency, lats)
        total = _var(
            model,
            sum(_product(model, v.counts[j][k], bw[k], bw_hi, f"sync_bw_us[j={j},k={k}]") for k in range(K))
            + latency
            + _gated(model, s_first, _hi(t.sync_first_us), v.first[j], f"sync_first_us[{j}]")
            + (s_last if j == 0 else 0),
            sync_hi,
            f"sync_total_us[{j}]",
        )
        hidden = model.new_int_var(0, t_hi * num // den + 1, f"sync_hidden_us[{j}]")
        model.add_division_equality(hidden, v.time_us[j] * num, den)
        n = model.new_int_var(1, L, f"layers_or_one[{j}]")
        model.add_max_equality(n, [v.layers[j], 1])
        floor = model.new_int_var(0, sync_hi, f"sync_floor_us[{j}]")
        model.add_division_equality(floor, total, n)
        exposed = model.new_int_var(0, sync_hi, f"sync_us[{j}]")
        model.add_max_equality(exposed, [total - hidden, floor])
        v.sync_us.append(exposed)
        v.optim_us.append(
            _var(
                model,
                sum(_product(model, v.counts[j][k], opt[k], o_hi, f"optim_us[j={j},k={k}]") for k in range(K))
                + _gated(model, o_first, _hi(t.optim_first_us), v.first[j], f"optim_first_us[{j}]")
                + (o_last if j == 0 else 0),
                opt_hi,
                f"optim_us[{j}]",
            )
        )
    v.max_time_us = model.new_int_var(0, t_hi, "max_time_us")
    model.add_max_equality(v.max_time_us, v.time_us)
    sync = model.new_int_var(0, sync_hi, "sync_us")
    model.add_max_equality(sync, v.sync_us)
    optim = model.new_int_var(0, opt_hi, "optim_us")
    model.add_max_equality(optim, v.optim_us)
    # (grad_accum − 1)·max time, split over grad_accum's values.
    values = sorted({g for row in t.grad_accum for g in row})
    lits: dict[int, Expr] = {
        g - 1: _sum(p for (i, m), p in v.pm.items() if t.grad_accum[i][m] in (g, 0 if g == 1 else -1))
        for g in values
        if g
    }
    if 1 not in values:  # micro × dp that divides nothing: grad_accum 0 (excluded by the batch family)
        lits[0] = _sum(p for (i, m), p in v.pm.items() if t.grad_accum[i][m] == 0)
    steady = _split_by_value(model, v.max_time_us, t_hi, lits, "steady_us")
    v.step_us = model.new_int_var(0, max(values) * t_hi + S * t_hi + sync_hi + opt_hi, "step_us")
    model.add(v.step_us == _sum([steady, *v.time_us, sync, optim]))


def add_implied_bounds(
    model: cp_model.CpModel,
    t: TrainingTables,
    v: TrainingVars,
    bounds: dict[Triple, PointBound],
    on: list[IntVar],
) -> None:
    """Redundant cuts from training_enumerate.point_bounds (valid while the families `on` hold):
    Σ time ≥ work, max time ≥ ⌈work / pp⌉, step ≥ (grad_accum − 1)·⌈work / pp⌉ + work for the chosen
    (shape, micro); (shape, micro, state) triples that cannot fit in memory are excluded."""
    assert v.max_time_us is not None and v.step_us is not None
    best_m: dict[tuple[int, int], PointBound | None] = dict.fromkeys(v.pm)
    best_z: dict[tuple[int, int], int | None] = dict.fromkeys(v.pz)
    for (i, m, z), b in bounds.items():
        cur = best_m[(i, m)]
        best_m[(i, m)] = (
            b
            if cur is None
            else PointBound(
                work_us=min(cur.work_us, b.work_us),
                stage_us=min(cur.stage_us, b.stage_us),
                step_us=min(cur.step_us, b.step_us),
            )
        )
        low = best_z[(i, z)]
        best_z[(i, z)] = b.step_us if low is None else min(low, b.step_us)
    for (i, m), found in best_m.items():
        if found is None:
            model.add(v.pm[(i, m)] == 0).only_enforce_if(on)
    for (i, z), low in best_z.items():
        if low is None:
            model.add(v.pz[(i, z)] == 0).only_enforce_if(on)
    for i, m in v.pm:
        for z in range(len(v.state)):
            if best_m[(i, m)] is not None and best_z[(i, z)] is not None and (i, m, z) not in bounds:
                model.add_bool_or([v.pm[(i, m)].Not(), v.pz[(i, z)].Not()]).only_enforce_if(on)
    known = {key: b for key, b in best_m.items() if b is not None}
    lows = {key: low for key, low in best_z.items() if low is not None}
    if not known or not lows:
        return
    # Written as min + Σ (bound − min)·pair so that propagation alone sees the min (Σ pairs = 1).
    for target, field_name in (
        (sum(v.time_us), "work_us"),
        (v.max_time_us, "stage_us"),
        (v.step_us, "step_us"),
    ):
        values = {key: getattr(b, field_name) for key, b in known.items()}
        least = min(values.values())
        model.add(
            target >= least + sum((val - least) * v.pm[key] for key, val in values.items())
        ).only_enforce_if(on)
    least = min(lows.values())
    model.add(
        v.step_us >= least + sum((low - least) * v.pz[key] for key, low in lows.items())
    ).only_enforce_if(on)


# ----- objectives and model ---------------------------------------------------------------------------
OBJECTIVES = ("throughput", "mfu", "cost", "memory")
"""throughput: tokens/s = global batch · seq / step, so minimize the step time; mfu and cost: the model
FLOPs per step and the token budget are fixed, so MFU ∝ 1 / (GPUs · step) and cost ∝ GPUs · step
(both equal throughput when every shape uses the whole cluster); memory: the most headroom, i.e. the
least MiB on the fullest stage."""


def objective_expr(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, name: str) -> Expr:
    """The integer expression to minimize for objective `name`."""
    assert v.step_us is not None and v.peak_mib is not None
    if name == "throughput":
        return v.step_us
    if name in ("mfu", "cost"):
        worlds = {s.world for s in t.space.shapes}
        if len(worlds) == 1:
            return v.step_us
        gpus = _var(
            model, sum(s.world * x for s, x in zip(t.space.shapes, v.shape, strict=True)), max(worlds), "gpus"
        )
        return _product(model, gpus, v.step_us, max(worlds) * _ub(model, v.step_us), f"{name}_gpu_us")
    if name == "memory":
        return v.peak_mib
    raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")


def add_hint(enc: EncodedTraining, p: Point) -> None:
    """Seed the search with `p` (stages first → last; slots count from the last)."""
    m, v = enc.model, enc.vars
    for group, chosen in ((v.shape, p.shape), (v.micro, p.micro), (v.state, p.state)):
        for k, lit in enumerate(group):
            m.add_hint(lit, k == chosen)
    layers, modes = p.layers[::-1], p.recompute[::-1]
    for j, n in enumerate(v.layers):
        m.add_hint(n, layers[j] if j < len(layers) else 0)
        for c, lit in enumerate(v.recompute[j]):
            m.add_hint(lit, c == (modes[j] if j < len(modes) else 0))


def build(t: TrainingTables, bounds: dict[Triple, PointBound] | None = None) -> EncodedTraining:
    """The CP-SAT model of `t.space`: variables, every constraint family behind its literal, cost terms,
    and (with `bounds`) the redundant lower-bound cuts."""
    model = cp_model.CpModel()
    v = add_choices(model, t)
    fam: dict[str, IntVar] = {}
    opts = t.space.options

    def family(name: str) -> IntVar:
        fam[name] = model.new_bool_var(f"family[{name}]")
        return fam[name]

    add_global_batch(model, t, v, family("global_batch"))
    add_zero_pipeline(model, t, v, family("zero_pipeline"))
    add_stage_partition(
        model, t, v, family("stage_layers"), None if opts.non_uniform_stages else family("uniform_stages")
    )
    if not opts.per_stage_recompute:
        add_recompute_choice(model, v, family("uniform_recompute"))
    add_stage_memory(model, t, v, family("memory"))
    add_stage_time(model, t, v)
    add_step_time(model, t, v)
    if bounds is not None:
        on = [fam[k] for k in ("global_batch", "zero_pipeline", "stage_layers", "memory")]
        add_implied_bounds(model, t, v, bounds, on)
    return EncodedTraining(model=model, vars=v, tables=t, families=fam)
