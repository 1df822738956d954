"""Decision variables of the CP-SAT training model, and the expression helpers the families build on.

`add_choices` makes the one-hots of shape, micro-batch and state mode, their pairwise products pm and
pz, and the stage slots (layers n[j] and recompute r[j][c], counted from the last stage); the
formulation is in training_encoder's docstring. The helpers name every variable they create (names
are what a debug dump shows, STYLE.md §4).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from autoparallel.solvers.cpsat import cp_model
from autoparallel.solvers.training.tables import Table2, TrainingTables

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


# ----- expression helpers -----------------------------------------------------------------------------
def lin_sum(items: Iterable[Expr]) -> cp_model.LinearExpr:
    """Σ items as one linear expression."""
    return cp_model.LinearExpr.sum(list(items))


def table_max(*tables: Table2) -> int:
    """The largest entry of `tables` (0 when empty): an upper bound for variables built on them."""
    return max((v for t in tables for row in t for v in row), default=0)


def upper_bound(model: cp_model.CpModel, var: IntVar) -> int:
    """The upper end of `var`'s domain."""
    return int(list(model.proto.variables[var.index].domain)[-1])


def equal_var(model: cp_model.CpModel, expr: Expr, hi: int, name: str) -> IntVar:
    """A named variable in [0, hi] equal to `expr`."""
    var = model.new_int_var(0, max(hi, 0), name)
    model.add(var == expr)
    return var


def pm_var(model: cp_model.CpModel, v: TrainingVars, table: Table2, name: str) -> IntVar:
    """table[i][m] of the chosen shape and micro-batch, as a variable (Σ pm[i,m]·table[i][m])."""
    return equal_var(model, sum(table[i][m] * lit for (i, m), lit in v.pm.items()), table_max(table), name)


def pz_var(model: cp_model.CpModel, v: TrainingVars, table: Table2, name: str) -> IntVar:
    """table[i][z] of the chosen shape and state mode, as a variable."""
    return equal_var(model, sum(table[i][z] * lit for (i, z), lit in v.pz.items()), table_max(table), name)


def product_var(model: cp_model.CpModel, a: Expr, b: Expr, hi: int, name: str) -> IntVar:
    """A variable equal to a·b (both non-negative, product ≤ hi)."""
    var = model.new_int_var(0, max(hi, 0), name)
    model.add_multiplication_equality(var, [a, b])
    return var


def gated_var(model: cp_model.CpModel, value: Expr, hi: int, on: IntVar, name: str) -> IntVar:
    """A variable equal to `value` when `on`, else 0."""
    var = model.new_int_var(0, max(hi, 0), name)
    model.add(var == value).only_enforce_if(on)
    model.add(var == 0).only_enforce_if(on.Not())
    return var


def split_by_value(model: cp_model.CpModel, value: IntVar, hi: int, lits: dict[int, Expr], name: str) -> Expr:
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
    ga = model.new_int_var(0, table_max(t.grad_accum), "grad_accum")
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
