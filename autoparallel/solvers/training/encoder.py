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

Each constraint family sits behind one literal (`EncodedTraining.families`): fixed true when optimizing,
free in an explanation's model (`explain`), where `driver.minimal_core` assumes them so that an
INFEASIBLE answer names the families in conflict. Units: MiB, µs (training_tables, solvers/units.py).

Layout: solvers/training_vars.py (the variables and expression helpers), solvers/training_constraints.py
(one function per constraint family), solvers/training_objective.py (the objectives); this module
assembles them (`build`) and seeds the search (`add_hint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoparallel.solvers.cpsat import CpModel, cp_model
from autoparallel.solvers.driver import family_literal
from autoparallel.solvers.training.constraints import (
    add_global_batch,
    add_implied_bounds,
    add_recompute_choice,
    add_stage_memory,
    add_stage_partition,
    add_stage_time,
    add_step_time,
    add_zero_pipeline,
)
from autoparallel.solvers.training.objective import objective_expr
from autoparallel.solvers.training.points import Point, PointBound, Triple
from autoparallel.solvers.training.tables import TrainingTables
from autoparallel.solvers.training.vars import Expr, IntVar, TrainingVars, add_choices, upper_bound


@dataclass
class EncodedTraining:
    """A built CP-SAT model with its variables, tables and family literals (a `driver.Encoding`)."""

    model: cp_model.CpModel
    vars: TrainingVars
    tables: TrainingTables
    families: dict[str, IntVar]
    """Family name → the literal enabling that family's constraints (fixed true unless `explain`)."""
    explain: bool = False
    """Families are free literals to be passed as assumptions (True) or fixed on (False)."""
    objectives: dict[str, Expr] = field(default_factory=dict)
    """Objective expressions built so far (mfu / cost add product variables: built once)."""

    def objective_expr(self, name: str) -> Expr:
        if name not in self.objectives:
            self.objectives[name] = objective_expr(self.model, self.tables, self.vars, name)
        return self.objectives[name]

    def maximized(self, name: str) -> bool:
        return False  # every training objective is a quantity to minimize (step, GPU·µs, MiB)

    def objective_scale(self, name: str) -> int:
        expr = self.objective_expr(name)
        return upper_bound(self.model, expr) if isinstance(expr, IntVar) else 1

    def read(self, solver: cp_model.CpSolver) -> Point:
        """The solver's choice as a Point (stages first → last)."""
        v = self.vars

        def chosen(group: list[IntVar]) -> int:
            return next(k for k, lit in enumerate(group) if solver.boolean_value(lit))

        i = chosen(v.shape)
        pp = self.tables.space.shapes[i].pp
        layers = tuple(solver.value(v.layers[j]) for j in range(pp))[::-1]
        modes = tuple(chosen(v.recompute[j]) for j in range(pp))[::-1]
        return Point(shape=i, micro=chosen(v.micro), state=chosen(v.state), layers=layers, recompute=modes)

    def hint(self, point: Point) -> None:
        self.model.clear_hints()
        add_hint(self, point)

    def shape_literals(self, point: Point) -> list[IntVar]:
        return [self.vars.shape[point.shape]]


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


def build(
    t: TrainingTables, bounds: dict[Triple, PointBound] | None = None, *, explain: bool = False
) -> EncodedTraining:
    """The CP-SAT model of `t.space`: variables, every constraint family behind its literal, cost terms,
    and (with `bounds`) the redundant lower-bound cuts.

    explain: leave the family literals free, for `driver.minimal_core` to pass as assumptions; else
    they are fixed true."""
    model = CpModel()
    v = add_choices(model, t)
    fam: dict[str, IntVar] = {}
    opts = t.space.options

    def family(name: str) -> IntVar:
        return family_literal(model, fam, name, explain)

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
    return EncodedTraining(model=model, vars=v, tables=t, families=fam, explain=explain)
