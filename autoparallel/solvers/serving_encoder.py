"""CP-SAT model of the serving problem: one variable per knob, tables from `serving_space`.

Variables (all named for debug dumps):
- one-hot literals per knob: `shape[tp=4 pp=2]`, `runtime[...]`, `max_num_seqs==64`,
  `gpu_memory_utilization==0.92`, `max_model_len==2048`; an integer `replicas`;
- `entry`, the flat table index ((shape · R + runtime) · B + batch) · M + max_model_len, a linear
  expression of the one-hots, and the table values looked up with `add_element`: TPOT and TTFT (µs),
  replica throughput (milli-tokens/s), cost (µ$ / M tokens), memory of the running batch and of one
  max_model_len request (KiB, max over the pipeline stages);
- `total_tokens_per_s` = replicas × replica throughput (`add_multiplication_equality`).

Each constraint family is behind an enable literal (`family[...]`). A normal solve fixes them true;
an explanation solve passes them as assumptions so that CP-SAT names the conflicting families.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from autoparallel.solvers import units
from autoparallel.solvers.serving_space import ServingSpace

OBJECTIVES = ("throughput", "ttft", "tpot", "cost", "memory")
"""Objective names: total output tokens/s (max), TTFT (min), TPOT (min), $ per million output tokens
(min), memory headroom on the tightest GPU (max)."""
MAXIMIZED = frozenset({"throughput", "memory"})


@dataclass
class ServingVars:
    """The CP-SAT variables of one encoded serving problem."""

    shape: list[cp_model.IntVar]
    runtime: list[cp_model.IntVar]
    batch: list[cp_model.IntVar]
    util: list[cp_model.IntVar]
    mml: list[cp_model.IntVar]
    replicas: cp_model.IntVar
    entry: cp_model.IntVar
    step_us: cp_model.IntVar
    ttft_us: cp_model.IntVar
    replica_milli_tps: cp_model.IntVar
    cost_micro_usd: cp_model.IntVar
    mem_used_kib: cp_model.IntVar
    mml_used_kib: cp_model.IntVar
    budget_kib: cp_model.LinearExpr
    total_milli_tps: cp_model.IntVar
    families: dict[str, cp_model.IntVar] = field(default_factory=dict)

    def objective_expr(self, name: str) -> cp_model.LinearExprT:
        """The scaled integer expression of objective `name`."""
        return {
            "throughput": self.total_milli_tps,
            "ttft": self.ttft_us,
            "tpot": self.step_us,
            "cost": self.cost_micro_usd,
            "memory": self.budget_kib - self.mem_used_kib,
        }[name]


@dataclass
class EncodedServing:
    """A built CP-SAT model with its variables and the space it encodes."""

    model: cp_model.CpModel
    vars: ServingVars
    space: ServingSpace
    explain: bool
    """Families are free literals to be passed as assumptions (True) or fixed on (False)."""

    def family(self, name: str) -> cp_model.IntVar:
        """The enable literal of constraint family `name`, created on first use."""
        if name not in self.vars.families:
            lit = self.model.new_bool_var(f"family[{name}]")
            if not self.explain:
                self.model.add(lit == 1)
            self.vars.families[name] = lit
        return self.vars.families[name]


# ----- variables --------------------------------------------------------------------------------
def _one_hot(model: cp_model.CpModel, labels: list[str]) -> list[cp_model.IntVar]:
    lits = [model.new_bool_var(label) for label in labels]
    model.add_exactly_one(lits)
    return lits


def _lookup(model: cp_model.CpModel, entry: cp_model.IntVar, table: list[int], name: str,
            allowed: list[int]) -> cp_model.IntVar:
    """A variable equal to table[entry], with the domain of the allowed entries' values."""
    values = cp_model.Domain.from_values(sorted({table[i] for i in allowed}))
    var = model.new_int_var_from_domain(values, name)
    model.add_element(entry, table, var)
    return var


def build(space: ServingSpace, *, explain: bool = False) -> EncodedServing:
    """Variables, table lookups and every constraint family of `space`.

    explain: keep every table entry (also those memory rules out) and leave the family literals free.
    """
    model = cp_model.CpModel()
    t = space.tables
    n_r, n_b, n_m = len(space.runtimes), len(space.batches), len(space.max_model_lens)
    shape = _one_hot(model, [f"shape[{s.label}]" for s in space.shapes])
    runtime = _one_hot(model, [f"runtime[quantization={r.quantization} kv={r.kv_cache_dtype} "
                               f"eager={r.enforce_eager}]" for r in space.runtimes])
    batch = _one_hot(model, [f"max_num_seqs=={b}" for b in space.batches])
    util = _one_hot(model, [f"gpu_memory_utilization=={u:g}" for u in space.utilizations])
    mml = _one_hot(model, [f"max_model_len=={m}" for m in space.max_model_lens])
    allowed = [i for i, ok in enumerate(t.evaluated) if ok or explain] or [0]
    entry = model.new_int_var_from_domain(cp_model.Domain.from_values(allowed), "entry")
    model.add(entry == sum(i * n_r * n_b * n_m * x for i, x in enumerate(shape))
              + sum(i * n_b * n_m * x for i, x in enumerate(runtime))
              + sum(i * n_m * x for i, x in enumerate(batch))
              + sum(i * x for i, x in enumerate(mml))).with_name("entry==index(shape, runtime, batch, mml)")
    step = _lookup(model, entry, t.step_us, "tpot_us", allowed)
    ttft = _lookup(model, entry, t.ttft_us, "ttft_us", allowed)
    tps = _lookup(model, entry, t.tps_milli, "replica_milli_tokens_per_s", allowed)
    cost = _lookup(model, entry, t.cost_micro_usd, "cost_micro_usd_per_mtok", allowed)
    used = _lookup(model, entry, t.mem_used_kib, "mem_used_kib", allowed)
    need = _lookup(model, entry, t.mml_used_kib, "mml_used_kib", allowed)
    max_reps = max(s.max_replicas for s in space.shapes)
    replicas = model.new_int_var(1, max_reps, "replicas")
    top_tps = max(t.tps_milli[i] for i in allowed)
    total = model.new_int_var(0, top_tps * max_reps, "total_milli_tokens_per_s")
    model.add_multiplication_equality(total, [replicas, tps])
    budget = cp_model.LinearExpr.weighted_sum(util, list(space.budget_kib))
    v = ServingVars(shape, runtime, batch, util, mml, replicas, entry, step, ttft, tps, cost, used, need,
                    budget, total)
    enc = EncodedServing(model, v, space, explain)
    add_replica_counts(enc)
    add_architecture_limits(enc)
    add_memory_capacity(enc)
    add_max_model_len(enc)
    add_concurrency(enc)
    add_latency_slos(enc)
    add_request_rate(enc)
    return enc


# ----- constraint families ----------------------------------------------------------------------
def add_replica_counts(enc: EncodedServing) -> None:
    """replicas × tp × pp ≤ GPUs; with expert parallelism, replicas = the shape's EP data ranks."""
    for s, x in zip(enc.space.shapes, enc.vars.shape, strict=True):
        if s.ep:
            enc.model.add(enc.vars.replicas == s.ep_replicas).only_enforce_if(x).with_name(
                f"replicas==ep_ranks[{s.label}]")
        else:
            enc.model.add(enc.vars.replicas <= s.max_replicas).only_enforce_if(x).with_name(
                f"gpus[{s.label}]")


def add_architecture_limits(enc: EncodedServing) -> None:
    """A shape that breaks a rule of the model (heads, KV heads, MLP width, layers, experts) is off."""
    for s, x in zip(enc.space.shapes, enc.vars.shape, strict=True):
        for violation in s.violations:
            rule = violation.split(":", 1)[0]
            enc.model.add(x == 0).only_enforce_if(enc.family(f"architecture:{rule}")).with_name(
                f"{rule}[{s.label}]")


def add_memory_capacity(enc: EncodedServing) -> None:
    """Per GPU, every stage: weights + activation peak + non-torch + CUDA graphs + KV of
    max_num_seqs average sequences (+ the null block) ≤ total × gpu_memory_utilization (KiB)."""
    v = enc.vars
    enc.model.add(v.mem_used_kib <= v.budget_kib).only_enforce_if(enc.family("memory")).with_name("memory")


def add_max_model_len(enc: EncodedServing) -> None:
    """vLLM starts only if the KV cache holds one max_model_len request (+ the null block)."""
    v = enc.vars
    enc.model.add(v.mml_used_kib <= v.budget_kib).only_enforce_if(enc.family("max_model_len")).with_name(
        "max_model_len")


def add_concurrency(enc: EncodedServing) -> None:
    """max_num_seqs × replicas ≤ the workload's concurrency (no slot waits for a user)."""
    conc = enc.space.workload.concurrency
    if conc is None:
        return
    on = enc.family("concurrency")
    for b, y in zip(enc.space.batches, enc.vars.batch, strict=True):
        ct = enc.model.add(enc.vars.replicas <= conc // b)
        ct.only_enforce_if([y, on])
        ct.with_name(f"concurrency[b={b}]")


def add_latency_slos(enc: EncodedServing) -> None:
    """TTFT ≤ the workload's limit and TPOT ≤ its limit (µs, limits rounded down)."""
    w, v = enc.space.workload, enc.vars
    if w.ttft_ms is not None:
        limit = units.us_down(w.ttft_ms / 1e3)
        enc.model.add(v.ttft_us <= limit).only_enforce_if(enc.family("ttft_slo")).with_name("ttft_slo")
    if w.tpot_ms is not None:
        limit = units.us_down(w.tpot_ms / 1e3)
        enc.model.add(v.step_us <= limit).only_enforce_if(enc.family("tpot_slo")).with_name("tpot_slo")


def add_request_rate(enc: EncodedServing) -> None:
    """Output tokens/s of all replicas ≥ arrival rate × osl (the deployment keeps up)."""
    w = enc.space.workload
    if w.request_rate is None:
        return
    need = units.milli_tokens(w.request_rate * w.osl)
    enc.model.add(enc.vars.total_milli_tps >= need).only_enforce_if(enc.family("request_rate")).with_name(
        "request_rate")


# ----- objectives -------------------------------------------------------------------------------
def set_objective(enc: EncodedServing, objective: str | dict[str, float]) -> None:
    """One objective by name, or a weighted sum {name: weight} of objectives each scaled to ~1e6."""
    v = enc.vars
    if isinstance(objective, str):
        expr = v.objective_expr(objective)
        if objective in MAXIMIZED:
            enc.model.maximize(expr)
        else:
            enc.model.minimize(expr)
        return
    terms = []
    for name, weight in objective.items():
        scale = max(1, round(weight * 1e6 / max(objective_upper_bound(enc, name), 1)))
        sign = 1 if name in MAXIMIZED else -1
        terms.append(sign * scale * v.objective_expr(name))
    enc.model.maximize(sum(terms))


def objective_upper_bound(enc: EncodedServing, name: str) -> int:
    """A bound on objective `name`'s scaled value (for weighting)."""
    t, space = enc.space.tables, enc.space
    ok = [i for i, e in enumerate(t.evaluated) if e] or [0]
    if name == "throughput":
        return max(t.tps_milli[i] for i in ok) * max(s.max_replicas for s in space.shapes)
    table = {"ttft": t.ttft_us, "tpot": t.step_us, "cost": t.cost_micro_usd}.get(name)
    return max(table[i] for i in ok) if table is not None else max(space.budget_kib)
