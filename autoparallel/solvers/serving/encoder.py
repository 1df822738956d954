"""CP-SAT model of the serving problem: one variable per knob, tables from `serving/space.py`.

Variables (all named for debug dumps):
- one-hot literals per knob: `shape[tp=4 pp=2]`, `runtime[...]`, `max_num_seqs==64` (and
  `max_num_seqs==kv`: each entry's KV-bound batch, its value per tuple, `ServingSpace.batch_value`),
  `max_model_len==2048`, `gpu_memory_utilization==0.92`; an integer `replicas`;
- the knobs whose interaction the cost model makes nonlinear (shape × runtime × max_num_seqs ×
  max_model_len: step time, KV capacity, CUDA-graph memory) are linearized with one literal per
  tuple (STYLE §4), `entry[...]`, channelled to the knob literals (Σ entries with shape s = shape[s],
  and so on). Replicas and utilization are not part of the tuples. Each tuple's coefficients are
  the float model's numbers, scaled by units.py: TPOT and TTFT (µs), replica throughput
  (milli-tokens/s), cost (µ$ / M tokens), memory of the running batch and of one max_model_len
  request (KiB, max over the pipeline stages);
- `replicas` and `total_milli_tokens_per_s` are columns too: the replica count of a tuple is the
  largest the GPUs and the concurrency admit (`replica_cap`: it dominates every smaller count).

Alternatives measured on DeepSeek-V3 / 4×8 H200 (933 tuples, 1 worker, throughput objective):
`add_element` over a flat table index, 1.5-2 s per solve (presolve expands it to the same
literals); a free `replicas` with total = replicas × replica throughput by
`add_multiplication_equality`, 0.1-0.4 s; per-tuple replica splits, 0.1-0.3 s; this, ~0.03 s.

The serving engine is one more value of the runtime knob; `engine[...]` literals name it (Σ of that
engine's runtime literals), so that a caller can fix it (`driver.optimize(..., fixed=...)`, the
`plan --engine auto` comparison) without a second model.

Each constraint family is behind an enable literal (`family[...]`). A normal solve fixes them true;
an explanation solve passes them as assumptions so that CP-SAT names the conflicting families.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoparallel import objectives
from autoparallel.perf.engine_support import node_span_problem
from autoparallel.solvers import units
from autoparallel.solvers.cpsat import CpModel, cp_model
from autoparallel.solvers.driver import family_literal
from autoparallel.solvers.serving.space import (
    LAYOUT_FAMILIES,
    RUNNING_CAP_FAMILY,
    Point,
    ServingSpace,
    ServingTables,
)

LinearExpr = cp_model.LinearExpr
MAXIMIZED = frozenset(n for n, o in objectives.SERVING.items() if o.maximize)


@dataclass
class ServingVars:
    """The CP-SAT variables of one encoded serving problem."""

    shape: list[cp_model.IntVar]
    runtime: list[cp_model.IntVar]
    batch: list[cp_model.IntVar]
    util: list[cp_model.IntVar]
    mml: list[cp_model.IntVar]
    replicas: cp_model.IntVar
    entries: dict[int, cp_model.IntVar]
    """Flat table index -> its tuple literal."""
    step_us: cp_model.IntVar
    ttft_us: cp_model.IntVar
    replica_milli_tps: cp_model.IntVar
    cost_micro_usd: cp_model.IntVar
    mem_used_kib: cp_model.IntVar
    mml_used_kib: cp_model.IntVar
    budget_kib: cp_model.LinearExpr
    total_milli_tps: cp_model.IntVar
    engine: dict[str, cp_model.IntVar] = field(default_factory=dict)
    """Engine name -> its literal: Σ runtime[r] over the runtimes of that engine."""
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
    """A built CP-SAT model with its variables and the space it encodes (a `driver.Encoding`)."""

    model: cp_model.CpModel
    vars: ServingVars
    space: ServingSpace
    explain: bool
    """Families are free literals to be passed as assumptions (True) or fixed on (False)."""

    @property
    def families(self) -> dict[str, cp_model.IntVar]:
        """Constraint family name -> its enable literal."""
        return self.vars.families

    def family(self, name: str) -> cp_model.IntVar:
        """The enable literal of constraint family `name` (`driver.family_literal`)."""
        return family_literal(self.model, self.vars.families, name, self.explain)

    def objective_expr(self, name: str) -> cp_model.LinearExprT:
        return self.vars.objective_expr(name)

    def maximized(self, name: str) -> bool:
        return name in MAXIMIZED

    def objective_scale(self, name: str) -> int:
        return objective_upper_bound(self, name)

    def read(self, solver: cp_model.CpSolver) -> Point:
        """The chosen value of every knob; a vLLM engine's gpu_memory_utilization the largest that holds
        the chosen entry (`largest_util`)."""
        v = self.vars

        def pick(lits: list[cp_model.IntVar]) -> int:
            return next(i for i, x in enumerate(lits) if solver.boolean_value(x))

        util = pick(v.util)
        if "vllm" in v.engine and solver.boolean_value(v.engine["vllm"]):
            need = max(solver.value(v.mem_used_kib), solver.value(v.mml_used_kib))
            util = largest_util(self.space, util, need)
        return Point(
            pick(v.shape),
            pick(v.runtime),
            pick(v.batch),
            util,
            pick(v.mml),
            int(solver.value(v.replicas)),
        )

    def hint(self, point: Point) -> None:
        self.model.clear_hints()
        v = self.vars
        for lits, chosen in (
            (v.shape, point.shape),
            (v.runtime, point.runtime),
            (v.batch, point.batch),
            (v.util, point.util),
            (v.mml, point.mml),
        ):
            for k, lit in enumerate(lits):
                self.model.add_hint(lit, k == chosen)
        self.model.add_hint(v.replicas, point.replicas)

    def shape_literals(self, point: Point) -> list[cp_model.IntVar]:
        """One literal, true when any shape with the (tp, pp, EP ranks) of `point`'s shape is chosen (EP
        over one tp-wide replica is the plain shape); k-best forbids it. Returning the group's literals
        themselves let `forbid_shape`'s "not all of them" pass with the twin chosen: `--top 3` of
        Qwen3-30B-A3B on one H200 printed one plan three times."""
        win = self.space.shapes[point.shape]
        group = [
            x
            for s, x in zip(self.space.shapes, self.vars.shape, strict=True)
            if (s.tp, s.pp, s.ep_ranks) == (win.tp, win.pp, win.ep_ranks)
        ]
        if len(group) == 1:
            return group
        any_of = self.model.new_bool_var(f"shape_group[{win.label}]")
        self.model.add_max_equality(any_of, group)
        return [any_of]


# ----- variables --------------------------------------------------------------------------------
def _one_hot(model: cp_model.CpModel, labels: list[str]) -> list[cp_model.IntVar]:
    lits = [model.new_bool_var(label) for label in labels]
    model.add_exactly_one(lits)
    return lits


def _dense(values: list[int], entries: dict[int, cp_model.IntVar], size: int) -> list[int]:
    """Values listed in entry order, spread back to a full table."""
    out = [0] * size
    for i, value in zip(entries, values, strict=True):
        out[i] = value
    return out


def _column(
    model: cp_model.CpModel, entries: dict[int, cp_model.IntVar], table: list[int], name: str
) -> cp_model.IntVar:
    """A variable equal to Σ table[e] · entry[e]: the chosen tuple's value of `table`."""
    values = [table[i] for i in entries]
    var = model.new_int_var(min(values), max(values), name)
    model.add(var == LinearExpr.weighted_sum(list(entries.values()), values)).with_name(f"{name}==table")
    return var


def replica_cap(space: ServingSpace, i: int, *, with_concurrency: bool = True) -> int:
    """Replicas of tuple `i` (0: none allowed): all the GPUs allow (EP: the shape's data ranks), and at
    most the ⌈concurrency / max_num_seqs⌉ the clients fill (`Shape.replicas_at`).

    Throughput, the arrival rate, TTFT (fewer of a client's requests queue, `perf.client_queue_s`)
    and TPOT (a smaller share each) gain with more replicas; the space takes the count to be this
    largest one (a smaller one is another max_num_seqs' tuple, or idles GPUs), so that replicas is
    a function of the tuple: total throughput and the table's TTFT (at that count) stay linear.
    """
    return space.shapes[space.unflat(i)[0]].replicas_at(
        space.max_num_seqs_of(i), space.workload.in_flight if with_concurrency else None
    )


def candidate_entries(space: ServingSpace, *, explain: bool = False) -> list[int]:
    """Tuples the model includes: all those with a max_num_seqs (`ServingSpace.offered`: a KV-bound
    index without a value has none) to explain infeasibility, else those with real numbers that can
    fit the largest budget, admit at least one replica and are not `oversized`."""
    if explain:
        return [i for i in range(len(space.tables.evaluated)) if space.offered(i)]
    ok = [e and replica_cap(space, i) > 0 for i, e in enumerate(space.tables.evaluated)]
    return [i for i, fine in enumerate(ok) if fine and not oversized(space, i, ok)]


def oversized(space: ServingSpace, i: int, ok: list[bool]) -> bool:
    """Under a client's concurrency, tuple `i`'s max_num_seqs runs the same requests on as many
    replicas as a smaller allowed one whose tuple is `ok` (15 clients on two replicas run 7.5 each at
    max_num_seqs 8 or 12), and the smaller one's table entry is no worse on any column the model reads
    (`no_worse`): the smaller one is the plan. Smaller by value: the KV-bound index lies after the
    grid's but its value between two of theirs.

    The same (replicas, running) pair does not make the same times: vLLM's default step token budget
    is min(its default, max_num_seqs × max_model_len) (`resolve_batch_defaults`), and the float model's
    closed-loop rotation and saturation bounds read that budget (`serving_steps._step_times`:
    `full_m`, `saturated_s`), so Llama-3.2-1B on one H200 at 700 / 1 tokens and 3 clients runs 51.87
    tokens/s at max_num_seqs 5 (5,120 tokens) and 52.01 at 64 (8,192). The entries decide, not the pair."""
    conc = space.workload.in_flight
    if conc is None:
        return False
    s, r, _, m = space.unflat(i)
    shape, batch = space.shapes[s], space.max_num_seqs_of(i)
    key = (shape.replicas_at(batch, conc), shape.running_at(batch, conc))
    for k in space.batch_order(s, r, m):
        x = space.batch_value(s, r, k, m)
        if x >= batch:
            break
        j = space.flat(s, r, k, m)
        if (
            ok[j]
            and (shape.replicas_at(x, conc), shape.running_at(x, conc)) == key
            and no_worse(space.tables, j, i)
        ):
            return True
    return False


def no_worse(t: ServingTables, j: int, i: int) -> bool:
    """Table entry `j` is at least as good as entry `i` on every column the model reads (TPOT, TTFT,
    cost and memory no larger, throughput no smaller), so that no objective, limit or rate prefers
    `i` (the replica counts are the caller's: `oversized` compares entries of one count)."""
    return (
        t.step_us[j] <= t.step_us[i]
        and t.ttft_us[j] <= t.ttft_us[i]
        and t.cost_micro_usd[j] <= t.cost_micro_usd[i]
        and t.tps_milli[j] >= t.tps_milli[i]
        and t.mem_used_kib[j] <= t.mem_used_kib[i]
        and t.mml_used_kib[j] <= t.mml_used_kib[i]
    )


def _entries(
    model: cp_model.CpModel, space: ServingSpace, knobs: list[list[cp_model.IntVar]], explain: bool
) -> dict[int, cp_model.IntVar]:
    """One literal per candidate (shape, runtime, batch, mml) tuple, channelled to the knob literals."""
    allowed = candidate_entries(space, explain=explain)
    entries: dict[int, cp_model.IntVar] = {}
    members: list[list[list[cp_model.IntVar]]] = [[[] for _ in knob] for knob in knobs]
    for i in allowed:
        s, r, b, m = space.unflat(i)
        kv = f" ({space.batch_label(b)})" if space.is_kv_index(b) else ""
        lit = model.new_bool_var(
            f"entry[{space.shapes[s].label} | runtime {r} | b={space.max_num_seqs_of(i)}{kv} | "
            f"mml={space.max_model_lens[m]}]"
        )
        entries[i] = lit
        for k, value in enumerate((s, r, b, m)):
            members[k][value].append(lit)
    for knob, groups in zip(knobs, members, strict=True):
        for lit, group in zip(knob, groups, strict=True):
            model.add(LinearExpr.sum(group) == lit).with_name(f"channel[{lit.name}]")
    return entries


def largest_util(space: ServingSpace, chosen: int, need_kib: int) -> int:
    """The largest gpu_memory_utilization index whose budget holds `need_kib` (`chosen` where none larger
    does). Utilization enters only the memory families' budget (used ≤ budget), so every objective but
    `memory` (the headroom, which the largest maximizes) leaves it free among those that hold the entry:
    which one CP-SAT returned was its presolve's pick, not a rule. The deployment planner takes the same
    (`deployment.space.preferred_utils`), so a plan's launch line and its deployment's agree. Utilizations
    are sorted (`space.build_space`): index order is value order."""
    return max([chosen, *(u for u, budget in enumerate(space.budget_kib) if budget >= need_kib)])


def _engines(
    model: cp_model.CpModel, space: ServingSpace, runtime: list[cp_model.IntVar], util: list[cp_model.IntVar]
) -> dict[str, cp_model.IntVar]:
    """The engine knob: engine[e] = Σ runtime[r] over r of engine e (exactly one holds, as runtime is
    one-hot). SGLang and TensorRT-LLM have no gpu_memory_utilization: choosing one pins that knob to
    `space.engine_util`, the value their entries were evaluated at."""
    out: dict[str, cp_model.IntVar] = {}
    for e in space.engines:
        lit = model.new_bool_var(f"engine=={e}")
        members = [x for rt, x in zip(space.runtimes, runtime, strict=True) if rt.engine == e]
        model.add(LinearExpr.sum(members) == lit).with_name(f"channel[engine=={e}]")
        if e != "vllm":
            model.add(util[space.engine_util] == 1).only_enforce_if(lit).with_name(f"utilization[{e}]")
        out[e] = lit
    return out


def build(space: ServingSpace, *, explain: bool = False) -> EncodedServing:
    """Variables, tuple tables and every constraint family of `space`.

    explain: keep every tuple (also those memory rules out) and leave the family literals free.
    Without `explain`, `candidate_entries(space)` must not be empty.
    """
    model = CpModel()
    t = space.tables
    shape = _one_hot(model, [f"shape[{s.label}]" for s in space.shapes])
    runtime = _one_hot(
        model,
        [
            f"runtime[{'' if r.engine == 'vllm' else r.engine + ' '}quantization={r.quantization} "
            f"kv={r.kv_cache_dtype} eager={r.enforce_eager}]"
            for r in space.runtimes
        ],
    )
    batch = _one_hot(model, [f"max_num_seqs=={space.batch_label(b)}" for b in range(space.n_batches)])
    util = _one_hot(model, [f"gpu_memory_utilization=={u:g}" for u in space.utilizations])
    mml = _one_hot(model, [f"max_model_len=={m}" for m in space.max_model_lens])
    entries = _entries(model, space, [shape, runtime, batch, mml], explain)
    step = _column(model, entries, t.step_us, "tpot_us")
    ttft = _column(model, entries, t.ttft_us, "ttft_us")
    tps = _column(model, entries, t.tps_milli, "replica_milli_tokens_per_s")
    cost = _column(model, entries, t.cost_micro_usd, "cost_micro_usd_per_mtok")
    used = _column(model, entries, t.mem_used_kib, "mem_used_kib")
    need = _column(model, entries, t.mml_used_kib, "mml_used_kib")
    caps = {i: replica_cap(space, i, with_concurrency=not explain) for i in entries}
    replicas = _column(model, entries, [caps.get(i, 0) for i in range(len(t.evaluated))], "replicas")
    fleet = [t.tps_milli[i] * caps[i] for i in range(len(t.evaluated)) if i in caps]
    total = _column(model, entries, _dense(fleet, entries, len(t.evaluated)), "total_milli_tokens_per_s")
    budget = LinearExpr.weighted_sum(util, list(space.budget_kib))
    v = ServingVars(
        shape, runtime, batch, util, mml, replicas, entries, step, ttft, tps, cost, used, need, budget, total
    )
    v.engine = _engines(model, space, runtime, util)
    enc = EncodedServing(model, v, space, explain)
    add_architecture_limits(enc)
    add_engine_node_spans(enc)
    add_engine_layouts(enc)
    add_engine_running_caps(enc)
    add_memory_capacity(enc)
    add_max_model_len(enc)
    add_concurrency(enc)
    add_latency_slos(enc)
    add_request_rate(enc)
    return enc


# ----- constraint families ----------------------------------------------------------------------
def add_architecture_limits(enc: EncodedServing) -> None:
    """A shape that breaks a rule of the model (heads, KV heads, MLP width, layers, experts) is off."""
    for s, x in zip(enc.space.shapes, enc.vars.shape, strict=True):
        for violation in s.violations:
            rule = violation.split(":", 1)[0]
            enc.model.add(x == 0).only_enforce_if(enc.family(f"architecture:{rule}")).with_name(
                f"{rule}[{s.label}]"
            )


def add_engine_node_spans(enc: EncodedServing) -> None:
    """An engine spans nodes only as its launch can (`engine_support.node_span_problem`): over whole
    nodes (SGLang `--nnodes`, TensorRT-LLM's MPI world, a vLLM rank)."""
    node = enc.space.cluster.gpus_per_node
    for e, lit in enc.vars.engine.items():
        for s, x in zip(enc.space.shapes, enc.vars.shape, strict=True):
            if node_span_problem(e, s.span_width(e), node) is not None:
                ct = enc.model.add_bool_or([x.Not(), lit.Not()])
                ct.only_enforce_if(enc.family("engine_node_span")).with_name(f"node_span[{e} {s.label}]")


def add_engine_layouts(enc: EncodedServing) -> None:
    """Shapes an engine has no layout for are not offered with it (`ServingSpace.layout_problem`, one
    family per rule, `LAYOUT_FAMILIES`): TensorRT-LLM's attention data parallelism
    (`enable_attention_dp`) makes every rank its own data-parallel rank, attention and dense MLP at
    TP 1 (`mlp_tp_size = 1` "if using attention DP"), so EP shapes whose data-parallel ranks are
    tensor-parallel are not TensorRT-LLM's (family `trtllm_attention_dp`); SGLang runs data-parallel
    ranks that share the experts as attention DP (`--enable-dp-attention`), and pipeline stages
    (`--pp-size`), only where an architecture's model code implements them
    (`engine_support.SGLANG_DP_ATTENTION_ARCHITECTURES`, `SGLANG_PP_ARCHITECTURES`; families
    `sglang_attention_dp`, `sglang_pipeline`)."""
    for engine, families in LAYOUT_FAMILIES.items():
        lit = enc.vars.engine.get(engine)
        if lit is None:
            continue
        for family in families:
            for s, x in zip(enc.space.shapes, enc.vars.shape, strict=True):
                if enc.space.layout_problem(family, s) is not None:
                    ct = enc.model.add_bool_or([x.Not(), lit.Not()])
                    ct.only_enforce_if(enc.family(family)).with_name(f"{family}[{s.label}]")


def add_engine_running_caps(enc: EncodedServing) -> None:
    """An SGLang / TensorRT-LLM entry whose engine runs fewer requests at once than the entry's running
    share (`ServingTables.capped`: SGLang's request slots, TensorRT-LLM's max_batch_size × pp) is off
    (family `engine_running_cap`): the engine never runs it as tabled. Only an explanation's model
    holds such entries (`candidate_entries`: they are not evaluated)."""
    capped = [x for i, x in enc.vars.entries.items() if enc.space.tables.capped[i]]
    if capped:
        ct = enc.model.add(LinearExpr.sum(capped) == 0)
        ct.only_enforce_if(enc.family(RUNNING_CAP_FAMILY)).with_name(RUNNING_CAP_FAMILY)


def add_memory_capacity(enc: EncodedServing) -> None:
    """Per GPU, every stage: weights + activation peak + non-torch + CUDA graphs + KV of
    max_num_seqs average sequences (+ the null block) ≤ total × gpu_memory_utilization (KiB)."""
    v = enc.vars
    enc.model.add(v.mem_used_kib <= v.budget_kib).only_enforce_if(enc.family("memory")).with_name("memory")


def add_max_model_len(enc: EncodedServing) -> None:
    """vLLM starts only if the KV cache holds one max_model_len request (+ the null block)."""
    v = enc.vars
    enc.model.add(v.mml_used_kib <= v.budget_kib).only_enforce_if(enc.family("max_model_len")).with_name(
        "max_model_len"
    )


def add_concurrency(enc: EncodedServing) -> None:
    """A tuple's replicas are at most those the requests in flight C fill (`Serving.in_flight`: the
    concurrency, at most the prompts; `Shape.replicas_at`): replicas ≤ ⌈C / max_num_seqs⌉, each
    running min(max_num_seqs, C / replicas) (`Shape.running_at`), the rest waiting in the server's
    queue (`perf.client_queue_s`); an EP engine's fixed data ranks need C ≥ ranks. A normal solve's
    replica column already is that count; under an explanation (counts without the cap) a tuple with
    more replicas than C fills is off."""
    conc = enc.space.workload.in_flight
    if conc is None:
        return
    if not enc.explain:
        return  # `replica_cap` (the replicas column) holds the rule
    on = enc.family("concurrency")
    space = enc.space
    for i, lit in enc.vars.entries.items():
        shape, batch = space.shapes[space.unflat(i)[0]], space.max_num_seqs_of(i)
        if shape.replicas_at(batch, conc) < replica_cap(space, i, with_concurrency=False):
            ct = enc.model.add(lit == 0).only_enforce_if(on)
            ct.with_name(f"concurrency[{shape.label} b={batch}]")


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
    need = units.milli_tokens_up(w.request_rate * w.osl)
    enc.model.add(enc.vars.total_milli_tps >= need).only_enforce_if(enc.family("request_rate")).with_name(
        "request_rate"
    )


def objective_upper_bound(enc: EncodedServing, name: str) -> int:
    """A bound on objective `name`'s scaled value (for weighting)."""
    t, space = enc.space.tables, enc.space
    ok = [i for i, e in enumerate(t.evaluated) if e] or [0]
    if name == "throughput":
        return max(t.tps_milli[i] for i in ok) * max(s.max_replicas for s in space.shapes)
    table = {"ttft": t.ttft_us, "tpot": t.step_us, "cost": t.cost_micro_usd}.get(name)
    return max(table[i] for i in ok) if table is not None else max(space.budget_kib)
