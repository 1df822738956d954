"""Why no serving plan exists: the conflicting constraint families, with numbers.

Every family of the encoder has an enable literal. Here they are free and passed to CP-SAT as
assumptions; `driver.minimal_core` reduces CP-SAT's sufficient set to a minimal one (deletion
filter). Each family then states its numbers from the float-model tables.
"""

from __future__ import annotations

from autoparallel.errors import InfeasibleError, SolverTimeoutError
from autoparallel.memory.vllm_config import loaded_on
from autoparallel.perf.engine_support import ENGINE_NAMES, node_span_problem
from autoparallel.perf.serving import slot_variability
from autoparallel.perf.serving_engines import engine_kv_for
from autoparallel.perf.slot_queue import rated_milli_tps
from autoparallel.solvers import driver, units
from autoparallel.solvers.serving.encoder import build
from autoparallel.solvers.serving.space import (
    LAYOUT_FAMILIES,
    RUNNING_CAP_FAMILY,
    ServingSpace,
    build_space,
    complete_tables,
    engine_entry_config,
    entry_lone_cycle_s,
)
from autoparallel.solvers.settings import RAISE_LIMIT, SolverSettings
from autoparallel.workload import ms_over, rps_text

GIB_KIB = 2**20


def conflicting_families(
    space: ServingSpace, settings: SolverSettings, deadline: float | None = None
) -> driver.Core:
    """A minimal set of constraint families that together rule out every plan, and those whose trial
    ran out of time (never blamed without proof). The model's architecture rules, the engines'
    layout rules (`LAYOUT_FAMILIES`: a layout an engine has no code for) and their running caps
    (`RUNNING_CAP_FAMILY`: an entry asking an engine to run more requests than it does) are held
    (`driver.minimal_core`'s `held`): no request changes them, and the entries they rule out carry
    placeholder numbers (a TTFT of 1 µs, unpriced), so that without a rule any limit is met; they
    are named only when they rule out every shape on their own (DeepSeek-V3 on 2x8xH200 under
    `--engine auto` at TTFT 20 ms named `trtllm_attention_dp` beside the TTFT limit; SGLang
    Qwen3-Next-80B-A3B on 1x8xH100 at TTFT 20 ms named `memory`, whose tables also rule out the
    entries the engine caps)."""
    enc = build(space, explain=True)
    layouts = {family for families in LAYOUT_FAMILIES.values() for family in families}
    held = [
        n for n in enc.families if n.startswith("architecture:") or n in layouts or n == RUNNING_CAP_FAMILY
    ]
    return driver.minimal_core(enc, settings, deadline=deadline, held=held)


def explain_infeasible(
    space: ServingSpace, settings: SolverSettings, deadline: float | None = None
) -> InfeasibleError:
    """The InfeasibleError for a space with no admissible plan (to be raised by the caller)."""
    w = space.workload
    engines = "/".join(ENGINE_NAMES[e] for e in space.engines)
    head = (
        f"no {engines} deployment of {space.model.name} on {space.gpus}×{space.cluster.gpu.name} "
        f"serves the {w.name} workload (isl {w.isl}, osl {w.osl}): "
    )
    if not space.shapes:
        # No (tp, pp) of the allowed degrees can be placed on the cluster: there is nothing to solve.
        o, c = space.options, space.cluster
        tps = o.tp_values or "divisors of the node, and powers of two on whole hosts below it"
        pps = o.pp_values or "powers of two"
        why = (
            f"placement: no allowed (tp, pp) fits {c.nodes} node(s) of {c.gpus_per_node} GPUs "
            f"(tp values {tps}, pp values {pps}; a TP group must stay inside one node, and a replica "
            "narrower than a node divides it or is a power of two on whole hosts)"
        )
        return InfeasibleError(head + "placement", (why,))
    space = complete_tables(space)
    core = conflicting_families(space, settings, deadline)
    reasons = [reason(space, name, deadline) for name in core.needed]
    if core.undecided:
        reasons.append(f"undecided within the time limit ({RAISE_LIMIT}): {', '.join(core.undecided)}")
    named = ", ".join(core.needed) or "no conflicting family named within the time limit"
    return InfeasibleError(head + named, tuple(reasons))


def _gib(kib: float) -> str:
    gib = kib / GIB_KIB
    return f"{gib / 1024:.2f} TiB" if gib >= 1024 else f"{gib:.2f} GiB"


def _fits(space: ServingSpace, i: int) -> bool:
    t, top = space.tables, max(space.budget_kib)
    return t.evaluated[i] and t.mem_used_kib[i] <= top and t.mml_used_kib[i] <= top


def _entry_label(space: ServingSpace, i: int) -> str:
    return f"{space.shapes[space.unflat(i)[0]].label}, max_num_seqs={space.max_num_seqs_of(i)}"


def reason(space: ServingSpace, family: str, deadline: float | None = None) -> str:
    """One sentence with the numbers behind a conflicting family (`deadline`: by which the tables
    the request_rate family reads must be built, `_rate_free`)."""
    if family.startswith("architecture:"):
        rule = family.split(":", 1)[1]
        seen = sorted({v for s in space.shapes for v in s.violations if v.startswith(rule + ":")})
        return "; ".join(seen[:3]) + (f" (and {len(seen) - 3} more)" if len(seen) > 3 else "")
    if family in _LAYOUT_REASONS:
        return _layout_reason(space, family)
    if family == "request_rate":
        return _rate_reason(space, deadline)
    return {
        "memory": _memory_reason,
        "max_model_len": _mml_reason,
        "ttft_slo": _ttft_reason,
        "tpot_slo": _tpot_reason,
        "concurrency": _concurrency_reason,
        "engine_node_span": _node_span_reason,
        RUNNING_CAP_FAMILY: _running_cap_reason,
    }[family](space)


_LAYOUT_REASONS = {
    "trtllm_attention_dp": "TensorRT-LLM's attention data parallelism runs attention at tp=1 on every "
    "rank of the engine; EP shapes with tensor-parallel ranks ({shapes}) are vLLM / SGLang only",
    "sglang_attention_dp": "SGLang has no attention data parallelism for {arch}; EP shapes with "
    "data-parallel ranks ({shapes}) are vLLM / TensorRT-LLM only",
    "sglang_pipeline": "SGLang has no pipeline parallelism for {arch}; shapes with pipeline stages "
    "({shapes}) are vLLM / TensorRT-LLM only",
}


def _layout_reason(space: ServingSpace, family: str) -> str:
    """A layout family (`LAYOUT_FAMILIES`): the valid shapes `ServingSpace.layout_problem` refuses."""
    shapes = sorted({s.label for s in space.shapes if space.layout_problem(family, s) and not s.violations})
    text = _LAYOUT_REASONS[family].format(shapes="; ".join(shapes), arch=space.model.architecture)
    return f"{family}: {text}"


def _node_span_reason(space: ServingSpace) -> str:
    node = space.cluster.gpus_per_node
    seen: list[str] = []
    for e in space.engines:
        widths = sorted(
            {
                s.span_width(e)
                for s in space.shapes
                if not s.violations and node_span_problem(e, s.span_width(e), node) is not None
            }
        )
        if widths:
            seen.append(
                f"{ENGINE_NAMES[e]} engines span whole nodes only ({', '.join(map(str, widths))} GPUs)"
            )
    return f"engine_node_span: on nodes of {node} GPUs, " + "; ".join(seen)


def _running_cap_reason(space: ServingSpace) -> str:
    """The engines' running caps (`RUNNING_CAP_FAMILY`): per engine, the capped entry that asks the
    fewest running requests, with the most its engine runs at once (`EngineKv.max_running`)."""
    t = space.tables
    valid = [
        i
        for i in range(len(t.capped))
        if space.offered(i) and not space.shapes[_shape_of(space, i)].violations
    ]
    capped = [i for i in valid if t.capped[i]]
    seen: list[str] = []
    for engine in dict.fromkeys(space.engine_of(i) for i in capped):
        i = min(
            (k for k in capped if space.engine_of(k) == engine),
            key=lambda k: (_running_of(space, k), space.max_num_seqs_of(k)),
        )
        s, r, b, m = space.unflat(i)
        kv, _ = engine_kv_for(engine, space.model, space.cluster, engine_entry_config(space, s, r, b, m))
        seen.append(
            f"{ENGINE_NAMES[engine]} runs at most {kv.max_running:,} at {_entry_label(space, i)}, "
            f"whose replicas are to run {_running_of(space, i):,.4g} each"
        )
    return (
        f"{RUNNING_CAP_FAMILY}: {len(capped):,} of the {len(valid):,} plans the model's rules allow ask "
        "their engine to run more requests at once than it does; " + "; ".join(seen)
    )


def _running_of(space: ServingSpace, i: int) -> float:
    """Requests each replica of entry i runs (`Shape.running_at`)."""
    return space.shapes[_shape_of(space, i)].running_at(space.max_num_seqs_of(i), space.workload.in_flight)


def _memory_reason(space: ServingSpace) -> str:
    runtimes = {r.quantization for r in space.runtimes}
    engine = "vllm" if "vllm" in space.engines else "other"  # vLLM's dtype rule, if vLLM is allowed
    loaded = [loaded_on(space.model, space.cluster.gpu, q, engine) for q in runtimes]
    need = min(m.weight_bytes(m.served_params) for m in loaded) / 1024  # MTP is not served
    top, util = max(space.budget_kib), max(space.utilizations)
    if "vllm" in space.engines:
        offer = f"{_gib(top * space.gpus)} usable at gpu_memory_utilization {util:g}"
    else:
        offer = f"{_gib(units.kib_down(space.cluster.gpu.memory_bytes) * space.gpus)} in all"
    gpus = f"{space.gpus}×{space.cluster.gpu.name} offer{'s' * (space.gpus == 1)}"
    text = f"weights alone need {_gib(need)}; {gpus} {offer}"
    t = space.tables
    valid = [  # an entry its engine's running cap rules out is that family's (its memory is pushed over)
        i
        for i in range(len(t.mem_used_kib))
        if not space.shapes[_shape_of(space, i)].violations and space.offered(i) and not t.capped[i]
    ]
    unfit = [i for i in valid if t.mem_used_kib[i] > top]
    per_entry = space.n_batches * len(space.max_model_lens)

    def nearest(entries: list[int]) -> int:
        """vLLM's least need; an engine's (SGLang / TensorRT-LLM, whose tables clip a negative pool at
        0 and count in vLLM's budget) least weights, then least need."""
        vllm_ones = [k for k in entries if space.engine_of(k) == "vllm"]
        if vllm_ones:
            return min(vllm_ones, key=lambda k: t.mem_used_kib[k])
        return min(entries, key=lambda k: (t.weights_kib[k // per_entry], t.mem_used_kib[k]))

    if unfit and len(unfit) < len(valid):  # memory rules out some plans; the families beside it, the rest
        i = nearest(unfit)
        words = (
            f"needing {_gib(t.mem_used_kib[i])} per GPU of {_gib(top)}"
            if space.engine_of(i) == "vllm"
            else _engine_words(space, i)
        )
        return (
            f"memory: {text}; {len(unfit):,} of the {len(valid):,} plans the model's rules allow do not "
            f"fit, the smallest of them ({ENGINE_NAMES[space.engine_of(i)]}, {_entry_label(space, i)}) "
            + words
        )
    vllm = [i for i in valid if space.engine_of(i) == "vllm"]
    if vllm:
        i = min(vllm, key=lambda k: t.mem_used_kib[k])
        weights = t.weights_kib[i // per_entry]
        used = t.mem_used_kib[i]
        text += (
            f"; the smallest per-GPU need ({_entry_label(space, i)}) is {_gib(used)}: weights "
            f"{_gib(weights)} + activations, graphs and KV {_gib(used - weights)} > {_gib(top)}"
        )
    for other in dict.fromkeys(space.engine_of(i) for i in valid if space.engine_of(i) != "vllm"):
        # SGLang / TensorRT-LLM, each in its own words.
        i = nearest([i for i in valid if space.engine_of(i) == other])
        text += f"; {ENGINE_NAMES[other]} at best ({_entry_label(space, i)}): {_engine_words(space, i)}"
    return "memory: " + text


def _engine_words(space: ServingSpace, i: int) -> str:
    """An SGLang / TensorRT-LLM entry's memory in its own terms (the float model's numbers: the tables
    hold them shifted into vLLM's budget)."""
    s, r, b, m = space.unflat(i)
    engine = space.runtimes[r].engine
    kv, _ = engine_kv_for(engine, space.model, space.cluster, engine_entry_config(space, s, r, b, m))
    t = space.tables
    return (
        f"{kv.rule}: weights {kv.weights_gib:.2f} GiB per GPU leave a KV pool of "
        f"{max(kv.kv_cache_gib, 0.0):.2f} GiB ({kv.kv_cache_tokens:,} tokens), "
        f"{_gib(t.mem_used_kib[i] - t.fixed_kib[i])} needed"
    )


def _shape_of(space: ServingSpace, i: int) -> int:
    return space.unflat(i)[0]


def _mml_reason(space: ServingSpace) -> str:
    t, top = space.tables, max(space.budget_kib)
    offered = [k for k in range(len(t.mml_used_kib)) if space.offered(k)]
    runnable = [k for k in offered if _engine_can_span(space, k)]
    i = min(runnable or offered, key=lambda k: (not t.evaluated[k], t.mml_used_kib[k]))
    kv = t.mml_used_kib[i] - t.fixed_kib[i]
    left = top - t.fixed_kib[i]
    weights = t.weights_kib[i // (space.n_batches * len(space.max_model_lens))]
    room = (
        f"{_gib(left)} is left after weights, activations and CUDA graphs"
        if left > 0
        else f"the weights alone take {_gib(weights)} of the {_gib(top)} a GPU offers"
    )
    return (
        f"max_model_len: one {min(space.max_model_lens)}-token request needs {_gib(kv)} of KV cache per "
        f"GPU; at best ({_entry_label(space, i)}) {room}"
    )


def _engine_can_span(space: ServingSpace, i: int) -> bool:
    """Entry i's engine can launch its shape over the nodes it needs (`node_span_problem`)."""
    s, r, _, _ = space.unflat(i)
    engine = space.runtimes[r].engine
    return node_span_problem(engine, space.shapes[s].span_width(engine), space.cluster.gpus_per_node) is None


def _best(space: ServingSpace, table: list[int], lowest: bool, skip: str) -> tuple[int, int, str] | None:
    """The entry that fits with the lowest (highest) `table` value among those meeting the workload's
    other limits (all but `skip`), with the words saying so; among all that fit where none meets them
    (a conflict the reason then states: the best under the other limits is out of reach)."""
    fits = [i for i in range(len(table)) if _fits(space, i)]
    if not fits:
        return None
    others = [i for i in fits if _meets(space, i, skip)]
    pool, words = (others, _others_words(space, skip)) if others else (fits, "")
    i = (min if lowest else max)(pool, key=lambda k: table[k])
    return i, table[i], words


def _meets(space: ServingSpace, i: int, *skip: str) -> bool:
    """Entry i meets the workload's TTFT and TPOT limits and carries its arrival rate, except those
    named in `skip`."""
    w, t = space.workload, space.tables
    if "ttft_slo" not in skip and w.ttft_ms is not None and t.ttft_us[i] > w.ttft_ms * 1e3:
        return False
    if "tpot_slo" not in skip and w.tpot_ms is not None and t.step_us[i] > w.tpot_ms * 1e3:
        return False
    return "request_rate" in skip or w.request_rate is None or _rate_of(space, i) >= w.request_rate


def _others_words(space: ServingSpace, *skip: str) -> str:
    w = space.workload
    parts = [
        f"TTFT ≤ {w.ttft_ms:g} ms" if "ttft_slo" not in skip and w.ttft_ms is not None else "",
        f"TPOT ≤ {w.tpot_ms:g} ms" if "tpot_slo" not in skip and w.tpot_ms is not None else "",
        f"{w.request_rate:g} requests/s" if "request_rate" not in skip and w.request_rate is not None else "",
    ]
    shown = [p for p in parts if p]
    return f" and meets {', '.join(shown)}" if shown else ""


def _rate_of(space: ServingSpace, i: int, milli_tps: int | None = None) -> float:
    """Requests/s entry i completes with its most replicas (within the client's concurrency), each at
    its full load, or at `milli_tps` output milli-tokens/s."""
    w = space.workload
    most = space.shapes[_shape_of(space, i)].replicas_at(space.max_num_seqs_of(i), w.in_flight)
    tps = space.tables.tps_milli[i] if milli_tps is None else milli_tps
    return tps / 1e3 * most / w.osl


def _ttft_reason(space: ServingSpace) -> str:
    t, w = space.tables, space.workload
    best = _best(space, t.ttft_us, lowest=True, skip="ttft_slo")
    rate = w.request_rate
    carry = [
        i
        for i in range(len(t.ttft_us))
        if rate is not None and _fits(space, i) and _rate_of(space, i) >= rate
    ]
    if best is not None and not best[2] and carry:  # none meets the others: the fastest that carries the rate
        i = min(carry, key=lambda k: t.ttft_us[k])
        best = (i, t.ttft_us[i], f" and carries {rate:g} requests/s")
    limit = w.ttft_ms or 0.0
    # the table's TTFT at a rate the entry carries holds the wait for a free slot (`perf.rate_slot_wait_s`)
    at = " (its wait for a free slot at that rate included)" if best is not None and best[0] in carry else ""
    got = (
        f"the fastest plan that fits{best[2]} reaches {ms_over(best[1] / 1e3, limit, 0)} ms{at} "
        f"({_entry_label(space, best[0])})"
        if best
        else "no plan fits in memory"
    )
    return f"ttft_slo: TTFT limit {space.workload.ttft_ms:g} ms; {got}"


def _tpot_reason(space: ServingSpace) -> str:
    best = _best(space, space.tables.step_us, lowest=True, skip="tpot_slo")
    limit = space.workload.tpot_ms or 0.0
    got = (
        f"the fastest plan that fits{best[2]} reaches {ms_over(best[1] / 1e3, limit, 1)} ms "
        f"({_entry_label(space, best[0])})"
        if best
        else "no plan fits in memory"
    )
    return f"tpot_slo: TPOT limit {space.workload.tpot_ms:g} ms; {got}"


def _rate_reason(space: ServingSpace, deadline: float | None = None) -> str:
    w = space.workload
    fits = [i for i in range(len(space.tables.tps_milli)) if _fits(space, i)]
    within = f" with at most {w.in_flight} in flight" if w.in_flight is not None else ""
    skip: tuple[str, ...] = ("request_rate",)
    try:
        held = _best_held_rate(space, fits, deadline)
        tail = ""
    except SolverTimeoutError:  # the rate-free tables outlast the time limit: the full-load figure
        held, skip = None, ("request_rate", "ttft_slo")
        tail = " at full load (its TTFT with the wait for a free slot not rated within the time limit)"
    if held is not None:  # an arrival rate with a TTFT limit: what the best carries with it holding
        best = held
        meets = _others_words(space, "request_rate", "ttft_slo")
        verb = "carries"
        tail = f" with TTFT ≤ {w.ttft_ms:g} ms (its wait for a free slot included)"
    else:
        others = [i for i in fits if _meets(space, i, *skip)]
        best = max((_rate_of(space, i) for i in others or fits), default=0.0)
        meets = _others_words(space, *skip) if others else ""
        verb = "completes"
    # As many decimals as it takes to show the shortfall (a rate just above capacity: 16.7152945 /s
    # arrive, 16.7152942 /s complete), rounded down as `rps_text` rounds a capacity.
    assert w.request_rate is not None
    d = next((d for d in range(2, 10) if float(rps_text(best, digits=d)) < round(w.request_rate, d)), 10)
    rate = f"{w.request_rate:g}" if d == 2 else f"{w.request_rate:.{d}f}"
    shown = rps_text(best, digits=d)
    return (
        f"request_rate: {rate} requests/s arrive; the best plan that fits{within}{meets} "
        f"{verb} {shown}/s{tail}"
    )


def _best_held_rate(space: ServingSpace, fits: list[int], deadline: float | None) -> float | None:
    """Requests/s the best entry that fits (and meets the TPOT limit) carries with the TTFT limit
    holding at an arrival rate, its wait for a free slot included (`Serving.slot_rated`): the
    deployment planner's rating (`perf.slot_queue.rated_milli_tps`, which
    `solvers.deployment.space.rated_milli_tps` calls) of the entry's numbers without a rate
    (`_rate_free`), its replicas' slots pooled and the arrivals' variability whole, as this planner's
    tables pool them (`perf.rate_slot_wait_s`: vLLM's data-parallel front end), times the replicas
    `_rate_of` counts: the most this planner plans (per replica, as the deployment planner rates
    separate engines, it quoted 137.18/s for Llama-3.1-8B on 1x8xH100 where 138.3 planned). The
    tables' TTFT holds the wait only at a rate the entry carries at full load
    (`perf.rate_slot_wait_s`), so an entry below the rate passed TTFT without it. None without such a
    rate and limit, or where no entry that fits and meets TPOT has TTFT room even without a wait
    (its full-load capacity is then the figure, `_rate_of`).

    Raises:
        SolverTimeoutError: the rate-free tables outlast `deadline`."""
    w = space.workload
    if not w.slot_rated or w.ttft_ms is None:
        return None
    pool = [i for i in fits if _meets(space, i, "request_rate", "ttft_slo")]
    if not pool:
        return None
    free = _rate_free(space, deadline)
    t = free.tables
    if len(t.tps_milli) != len(space.tables.tps_milli):
        return None
    limit_us = units.us_down(w.ttft_ms / 1e3)
    variability = slot_variability(w, split=False)
    best: float | None = None
    # rating never raises an entry's full load: the rest are skipped once none can beat the best
    for i in sorted(pool, key=lambda k: (-_rate_of(space, k, t.tps_milli[k]), k)):
        if best is not None and _rate_of(space, i, t.tps_milli[i]) <= best:
            break
        batch = free.max_num_seqs_of(i)
        if not t.evaluated[i] or batch != space.max_num_seqs_of(i) or t.ttft_us[i] > limit_us:
            continue
        shape = space.shapes[_shape_of(space, i)]
        per_rank = rated_milli_tps(
            t.tps_milli[i],
            t.ttft_us[i],
            limit_us,
            batch,
            shape.replicas_at(batch, w.in_flight),
            w.osl,
            lambda: entry_lone_cycle_s(free, i),  # noqa: B023 (called before the loop moves on)
            variability,
        )
        rate = _rate_of(space, i, per_rank)
        best = rate if best is None else max(best, rate)
    return best


def _rate_free(space: ServingSpace, deadline: float | None) -> ServingSpace:
    """The space's tables without the arrival rate (nor a finite benchmark's prompts): the deployment
    planner's (`deployment.space.deployment_workload`; built as it builds them, so that the one is
    memoized for the other), whose TTFT holds no wait for a free slot. The same entries: the
    max_num_seqs grid of the workload's requests in flight."""
    w = space.workload
    alone = w.model_copy(update={"request_rate": None, "num_prompts": None})
    return build_space(
        space.model,
        space.cluster,
        alone,
        space.options,
        refusable=True,
        deadline=deadline,
        in_flight=w.in_flight,
    )


def _concurrency_reason(space: ServingSpace) -> str:
    """The replica rule of a client's concurrency (`Shape.replicas_at`): replicas the clients fill, and an
    expert-parallel engine's fixed data ranks when they outnumber the clients."""
    c = space.workload.in_flight or 0
    idle = [s.ep_replicas for s in space.shapes if s.ep and not s.violations and s.ep_replicas > c]
    text = (
        f"concurrency: {c} requests in flight fill at most ⌈{c} / max_num_seqs⌉ replicas (a replica runs "
        "only with requests)"
    )
    if idle:
        text += f"; the narrowest expert-parallel engine has {min(idle)} data-parallel ranks, more than {c}"
    return text
