"""Constraint families of the CP-SAT training model, one function each (STYLE.md §4).

A family that can make the model infeasible takes the literal that enables it (`EncodedTraining.families`,
true when optimizing, assumed by an explanation), so that an INFEASIBLE answer names the families in
conflict; the cost families (stage time, step time) only define variables. Each docstring states its
inequality in real units; the formulation (slots, counts, products) is in training_encoder's docstring.
"""

from __future__ import annotations

from autoparallel.configs import ZeroStage
from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.partition import even_partition
from autoparallel.solvers.training.points import PointBound, Triple
from autoparallel.solvers.training.space import ZERO_WITHOUT_PIPELINE
from autoparallel.solvers.training.tables import Table2, TrainingTables
from autoparallel.solvers.training.vars import (
    Expr,
    IntVar,
    TrainingVars,
    equal_var,
    gated_var,
    lin_sum,
    pm_var,
    product_var,
    pz_var,
    split_by_value,
    table_max,
    upper_bound,
)


# ----- constraint families ----------------------------------------------------------------------------
def add_global_batch(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, lit: IntVar) -> None:
    """micro × dp × grad_accum == global batch exactly: pairs whose micro × dp does not divide it are out,
    whatever `lit` says. The tables price no such pair (no configuration has it), so with the rule
    relaxed an explanation found them free of memory and named `global_batch` for a batch that
    divides (Llama-3.1-8B at seq 1,048,576, global batch 8 = 1 x 8 x 1); a batch no pair divides is
    named before any solve (`solve.solve_training`)."""
    del lit
    for (i, m), pair in v.pm.items():
        if not t.grad_accum[i][m]:
            model.add(pair == 0)


def add_zero_pipeline(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars, lit: IntVar) -> None:
    """ZeRO-2/3 only without pipeline parallelism, for both frameworks: DeepSpeed's PipelineEngine
    asserts zero stage < 2 ("ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism",
    deepspeed/runtime/pipe/engine.py); Megatron runs them as Megatron-FSDP, which Megatron-LM documents
    and tests only without it (its guides name TP, CP and EP; `--megatron-fsdp-version 2` refuses
    pp > 1, mcore_fsdp_adapter.py), and `tables.zero3_us` prices ZeRO-3's gathers for pp = 1 only.
    `evaluate` prices such a configuration; its Megatron notes say so (megatron.FSDP_PIPELINE_NOTE)."""
    if len(v.active) < 2:
        return
    for z, mode in enumerate(t.space.state_modes):
        if mode.zero in ZERO_WITHOUT_PIPELINE:
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
    state = [pz_var(model, v, t.state_mib[k], f"state_mib[{k}]") for k in range(K)]
    act = [[pm_var(model, v, t.act_mib[k][c], f"act_mib[{k}][{c}]") for c in range(C)] for k in range(K)]
    first = equal_var(
        model,
        pz_var(model, v, t.first_state_mib, "first_state_mib")
        + pm_var(model, v, t.first_act_mib, "first_act_mib"),
        table_max(t.first_state_mib) + table_max(t.first_act_mib),
        "first_mib",
    )
    last = pz_var(model, v, t.last_state_mib, "last_state_mib") + pm_var(
        model, v, t.last_act_mib, "last_act_mib"
    )
    s_hi = L * max(table_max(*t.state_mib), 1)
    a_hi = L * max(table_max(*(x for row in t.act_mib for x in row)), 1)
    for j in range(S):
        states = sum(
            product_var(model, v.counts[j][k], state[k], s_hi, f"state_mib[j={j},k={k}]") for k in range(K)
        )
        per_mb = equal_var(
            model,
            sum(
                product_var(model, part, act[k][c], a_hi, f"act_mib[j={j},k={k},c={c}]")
                for k in range(K)
                for c, part in enumerate(v.by_mode[j][k])
            ),
            a_hi,
            f"act_per_microbatch_mib[{j}]",
        )
        # f_j = grad_accum when it is ≤ j, else j + 1: split the activations over those cases. A pair
        # whose micro-batch does not divide the batch (grad_accum 0, ruled out by `global_batch`) still
        # holds one micro-batch: with the batch rule relaxed (the infeasibility diagnosis), it had held
        # none, and named `global_batch` beside `memory` for a batch that divides.
        by_count: dict[int, list[IntVar]] = {f: [] for f in range(1, j + 2)}
        for (i, m), p in v.pm.items():
            by_count[min(max(t.grad_accum[i][m], 1), j + 1)].append(p)
        fly: dict[int, Expr] = {f: lin_sum(ps) for f, ps in by_count.items()}
        acts = split_by_value(model, per_mb, a_hi, fly, f"act_in_flight_mib[{j}]")
        mem = model.new_int_var(
            0,
            s_hi
            + (j + 1) * a_hi
            + table_max(t.first_state_mib)
            + table_max(t.first_act_mib)
            + table_max(t.last_state_mib)
            + table_max(t.last_act_mib),
            f"memory_mib[{j}]",
        )
        extra = gated_var(model, first, upper_bound(model, first), v.first[j], f"first_mib[{j}]")
        model.add(mem == lin_sum([states, acts, extra, last if j == 0 else 0]))
        model.add(mem <= t.capacity_mib).only_enforce_if(lit).with_name(f"memory[slot={j}]")
        v.memory_mib.append(mem)
    v.peak_mib = model.new_int_var(0, max(upper_bound(model, x) for x in v.memory_mib), "peak_mib")
    model.add_max_equality(v.peak_mib, v.memory_mib)


def add_stage_time(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars) -> None:
    """Per stage, one micro-batch forward + backward, µs (perf/training_schedule.py stage_time_s):
    Σ_k,c cnt_c·layer[k][c] + hop + [first]·(embedding + ZeRO-2/3 per-micro-batch traffic)
    + [last]·(LM head + loss)."""
    sp = t.space
    L, S, K, C = sp.num_layers, sp.max_pp, t.num_kinds, len(sp.recompute_modes)
    tau = [[pm_var(model, v, t.layer_us[k][c], f"layer_us[{k}][{c}]") for c in range(C)] for k in range(K)]
    hop = pm_var(model, v, t.hop_us, "hop_us")
    first = pm_var(model, v, t.first_us, "first_us")
    last = pm_var(model, v, t.last_us, "last_us")
    z3 = _zero_traffic(model, t, v, ZeroStage.PARAMETERS, t.zero3_us, "zero3")
    z2 = _zero_traffic(model, t, v, ZeroStage.GRADIENTS, t.zero2_us, "zero2")
    t_hi = L * max(table_max(*(x for row in t.layer_us for x in row)), 1)
    e_hi = table_max(t.hop_us) + table_max(t.first_us) + table_max(t.last_us)
    e_hi += table_max(*t.zero3_us) + table_max(*t.zero2_us)
    for j in range(S):
        parts = [
            product_var(model, part, tau[k][c], t_hi, f"layer_us[j={j},k={k},c={c}]")
            for k in range(K)
            for c, part in enumerate(v.by_mode[j][k])
        ]
        time = model.new_int_var(0, t_hi + e_hi, f"time_us[{j}]")
        model.add(
            time
            == sum(parts)
            + gated_var(model, hop, table_max(t.hop_us), v.active[j], f"hop_us[{j}]")
            + gated_var(model, first, table_max(t.first_us), v.first[j], f"first_us[{j}]")
            + ((last + z3 + z2) if j == 0 else 0)
        )
        v.time_us.append(time)


def _zero_traffic(
    model: cp_model.CpModel,
    t: TrainingTables,
    v: TrainingVars,
    zero: ZeroStage,
    table: tuple[Table2, ...],
    name: str,
) -> IntVar:
    """`table[c]` (all layers' per-micro-batch ZeRO-2 or ZeRO-3 traffic) when the state mode is
    `zero`, else 0. That stage runs only with pp = 1 (`add_zero_pipeline`): slot 0 is then the first
    and only stage, and its recompute mode is the one that applies."""
    sp = t.space
    lits = [lit for z, lit in enumerate(v.state) if sp.state_modes[z].zero is zero]
    var = model.new_int_var(0, table_max(*table), f"{name}_us")
    if not lits:
        model.add(var == 0)
        return var
    on = model.new_bool_var(name)
    model.add(on == sum(lits))
    for c in range(len(sp.recompute_modes)):
        model.add(var == pm_var(model, v, table[c], f"{name}_us[{c}]")).only_enforce_if(
            [on, v.recompute[0][c], v.first[0]]
        )
    model.add(var == 0).only_enforce_if(on.Not())
    model.add(var == 0).only_enforce_if(v.first[0].Not())
    return var


def add_step_time(model: cp_model.CpModel, t: TrainingTables, v: TrainingVars) -> None:
    """step = (grad_accum − 1)·max_j time + Σ_j time + max_j sync + max_j optimizer
    (perf/training_schedule.py):
    sync[j] = max(total − overlap·time[j], total / n[j]), total = Σ_k cnt·bw[k] + the largest latency
              of the kinds present (+ embedding on the first, head on the last stage);
    optim[j] = Σ_k cnt·optim[k] (+ embedding / head)."""
    sp = t.space
    L, S, K = sp.num_layers, sp.max_pp, t.num_kinds
    bw = [pz_var(model, v, t.sync_bw_us[k], f"sync_bw_us[{k}]") for k in range(K)]
    lat = [pz_var(model, v, t.sync_lat_us[k], f"sync_lat_us[{k}]") for k in range(K)]
    opt = [pz_var(model, v, t.optim_us[k], f"optim_us[{k}]") for k in range(K)]
    s_first = pz_var(model, v, t.sync_first_us, "sync_first_us")
    o_first = pz_var(model, v, t.optim_first_us, "optim_first_us")
    s_last = pz_var(model, v, t.sync_last_us, "sync_last_us")
    o_last = pz_var(model, v, t.optim_last_us, "optim_last_us")
    bw_hi, lat_hi, o_hi = table_max(*t.sync_bw_us) * L, table_max(*t.sync_lat_us), table_max(*t.optim_us) * L
    sync_hi = bw_hi + lat_hi + table_max(t.sync_first_us) + table_max(t.sync_last_us)
    opt_hi = o_hi + table_max(t.optim_first_us) + table_max(t.optim_last_us)
    num, den = t.overlap
    t_hi = max(upper_bound(model, x) for x in v.time_us)
    for j in range(S):
        lats = []
        for k in range(K):
            present = v.active[j]
            if K > 1:
                present = model.new_bool_var(f"has_kind{k}[{j}]")
                model.add(v.counts[j][k] >= 1).only_enforce_if(present)
                model.add(v.counts[j][k] == 0).only_enforce_if(present.Not())
            lats.append(gated_var(model, lat[k], lat_hi, present, f"sync_lat_us[j={j},k={k}]"))
        latency = model.new_int_var(0, lat_hi, f"sync_latency_us[{j}]")
        model.add_max_equality(latency, lats)
        total = equal_var(
            model,
            sum(
                product_var(model, v.counts[j][k], bw[k], bw_hi, f"sync_bw_us[j={j},k={k}]") for k in range(K)
            )
            + latency
            + gated_var(model, s_first, table_max(t.sync_first_us), v.first[j], f"sync_first_us[{j}]")
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
            equal_var(
                model,
                sum(
                    product_var(model, v.counts[j][k], opt[k], o_hi, f"optim_us[j={j},k={k}]")
                    for k in range(K)
                )
                + gated_var(model, o_first, table_max(t.optim_first_us), v.first[j], f"optim_first_us[{j}]")
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
        g - 1: lin_sum(p for (i, m), p in v.pm.items() if t.grad_accum[i][m] in (g, 0 if g == 1 else -1))
        for g in values
        if g
    }
    if 1 not in values:  # micro × dp that divides nothing: grad_accum 0 (excluded by the batch family)
        lits[0] = lin_sum(p for (i, m), p in v.pm.items() if t.grad_accum[i][m] == 0)
    steady = split_by_value(model, v.max_time_us, t_hi, lits, "steady_us")
    v.step_us = model.new_int_var(0, max(values) * t_hi + S * t_hi + sync_hi + opt_hi, "step_us")
    model.add(v.step_us == lin_sum([steady, *v.time_us, sync, optim]))


def add_implied_bounds(
    model: cp_model.CpModel,
    t: TrainingTables,
    v: TrainingVars,
    bounds: dict[Triple, PointBound],
    on: list[IntVar],
) -> None:
    """Redundant cuts from training_points.point_bounds (valid while the families `on` hold):
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
