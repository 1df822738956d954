"""Why a fleet's demand cannot be met: conflicting constraint families, with numbers.

Every family of the encoder has an enable literal; here they are free and passed to CP-SAT as
assumptions, and `driver.minimal_core` reduces CP-SAT's sufficient set to a minimal one. Each family
then states its numbers: the rate, the best engine per pool (capacity at the SLOs from the float-model
tables), how many such engines the rate needs and how many the pool holds; a client's queue
(`client_queue`), the nearest engine's wait against the room its TTFT leaves.
"""

from __future__ import annotations

import math

from autoparallel.errors import InfeasibleError
from autoparallel.solvers import driver, units
from autoparallel.solvers.deployment.client_rules import burst_sync_pct, drain_completions
from autoparallel.solvers.deployment.encoder import build
from autoparallel.solvers.deployment.space import DeploymentSpace, admissible_utils
from autoparallel.solvers.serving.space import ServingSpace
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import ms_over, rps_text


def conflicting_families(space: DeploymentSpace, settings: SolverSettings) -> list[str]:
    """A minimal set of constraint families that together rule out every deployment (`driver.minimal_core`;
    families whose trial ran out of time are reported apart by the caller, never blamed)."""
    core = driver.minimal_core(build(space, hard_demand=True, explain=True), settings)
    return list(core.needed) or list(core.undecided)


def why_no_engine(space: ServingSpace) -> str:
    """Why no shape of a model starts and meets its SLOs on a pool, with the nearest numbers."""
    t, w = space.tables, space.workload
    pool = f"{space.cluster.nodes}x{space.cluster.gpus_per_node}x{space.cluster.gpu.name}"
    if space.refused is not None:
        return f"on {pool}: {space.refused}"
    fits = [
        i
        for i, ok in enumerate(t.evaluated)
        if ok and max(t.mem_used_kib[i], t.mml_used_kib[i]) <= max(space.budget_kib)
    ]
    if not fits:
        valid = [k for k, s in enumerate(space.shapes) if not s.violations]
        if not valid:
            return f"on {pool}: no tp/pp/ep the architecture allows fits the pool"
        runtimes = len(space.runtimes)  # weights are per (shape, runtime): every quantization allowed
        least = min(t.weights_kib[k * runtimes + r] for k in valid for r in range(runtimes))
        return (
            f"on {pool}: no engine fits in memory (the smallest weight share is "
            f"{least / 2**20:.1f} GiB per GPU of {max(space.budget_kib) / 2**20:.1f} GiB usable)"
        )
    parts = []
    if w.tpot_ms is not None:
        best = min(fits, key=lambda i: t.step_us[i])
        s = space.shapes[space.unflat(best)[0]]
        if t.step_us[best] > units.us_down(w.tpot_ms / 1e3):
            parts.append(
                f"best TPOT {ms_over(t.step_us[best] / 1e3, w.tpot_ms, 1)} ms ({s.label}) > {w.tpot_ms:g} ms"
            )
    if w.ttft_ms is not None:
        best = min(fits, key=lambda i: t.ttft_us[i])
        s = space.shapes[space.unflat(best)[0]]
        if t.ttft_us[best] > units.us_down(w.ttft_ms / 1e3):
            parts.append(
                f"best TTFT {ms_over(t.ttft_us[best] / 1e3, w.ttft_ms, 0)} ms ({s.label}) > {w.ttft_ms:g} ms"
            )
    if not parts:
        both = [i for i in fits if admissible_utils(space, i)]
        parts.append(
            "no single entry meets TTFT and TPOT together"
            if not both
            else "its admissible engines break node granularity (sizes neither a power of two up to the "
            "node / NVLink domain nor whole nodes)"
        )
    return f"on {pool}: " + "; ".join(parts)


def demand_numbers(space: DeploymentSpace, m: int) -> str:
    """ "20 req/s at TPOT 50 ms needs ≥ 5 engines of tp8 on H100-SXM (4.1 req/s each); the pool holds 4"."""
    fm = space.models[m]
    w = fm.workload
    slo = (
        ", ".join(
            x
            for x in (
                f"TTFT {w.ttft_ms:g} ms" if w.ttft_ms is not None else "",
                f"TPOT {w.tpot_ms:g} ms" if w.tpot_ms is not None else "",
            )
            if x
        )
        or "no SLO"
    )
    rate = fm.demand_milli_rps / fm.units_per_rps
    parts = []
    for p, pool in enumerate(space.cluster.pools):
        ks = space.engines_of(model=m, pool=p)
        if not ks:
            parts.append(f"no engine on {pool.gpu.name} ({why_no_engine(space.serving[m, p])})")
            continue
        k = fewest_gpus_engine(space, m, ks)
        e = space.engines[k]
        need = math.ceil(fm.demand_milli_rps / e.capacity_milli_rps)
        most = space.max_replicas(e)
        parts.append(
            f"needs >= {need} engines of {e.label} on {pool.gpu.name} "
            f"({rps_text(e.capacity_milli_rps / fm.units_per_rps)} req/s "
            f"each, {e.gpus} GPUs); pool {p} holds {most} "
            f"({rps_text(most * e.capacity_milli_rps / fm.units_per_rps)} req/s)"
        )
    return f"{fm.name}: {rate:g} req/s (ISL {w.isl}, OSL {w.osl}) at {slo}: " + "; ".join(parts)


def fewest_gpus_engine(space: DeploymentSpace, m: int, ks: list[int]) -> int:
    """Of model m's engines `ks` (one pool's), the engine type whose replicas alone meet its demand on
    the fewest GPUs within the pool (ties: the most capacity; a mix of types can need fewer, which the
    CP-SAT model, not this message, decides), else the one of most capacity the pool can hold (the
    nearest it comes). The most capacity alone said "Qwen/Qwen3-8B: 8 req/s needs >= 1 engines of
    tp4pp4 (58.77 req/s each, 16 GPUs)" where one tp4 engine on 4 GPUs carries 13.7."""
    demand = space.models[m].demand_milli_rps

    def pool_capacity(k: int) -> int:
        return space.engines[k].capacity_milli_rps * space.max_replicas(space.engines[k])

    meets = [k for k in ks if space.engines[k].capacity_milli_rps > 0 and pool_capacity(k) >= demand]
    if not meets:
        return max(ks, key=pool_capacity)

    def gpus(k: int) -> int:
        e = space.engines[k]
        return math.ceil(demand / e.capacity_milli_rps) * e.gpus

    return min(meets, key=lambda k: (gpus(k), -space.engines[k].capacity_milli_rps, k))


def concurrency_numbers(space: DeploymentSpace, m: int) -> str:
    """ "...: at most 8 requests in flight: ...; the most requests/s per request held is tp8 on
    H100-SXM's (1.31 req/s holding 1), so at most 8 x 1.31 = 10.50 req/s"."""
    fm = space.models[m]
    cap = fm.concurrency or 0
    held = [k for k in space.engines_of(model=m) if space.engines[k].in_flight]
    text = (
        f"{fm.name}: at most {cap} requests in flight: max_num_seqs × data-parallel ranks × "
        "replicas stay within it"
    )
    if not held:
        return text
    k = max(held, key=lambda k: space.engines[k].capacity_milli_rps / space.engines[k].in_flight)
    e = space.engines[k]
    pool = space.cluster.pools[e.pool].gpu.name
    per = e.capacity_milli_rps / fm.units_per_rps / e.in_flight
    return (
        f"{text}; the most requests/s per request held is {e.label} on {pool}'s "
        f"({e.capacity_milli_rps / fm.units_per_rps:.2f} req/s holding {e.in_flight}), so at most "
        f"{cap} x {per:.3g} = {cap * per:.2f} req/s"
    )


def client_queue_numbers(space: DeploymentSpace, m: int) -> str:
    """ "...: 1000 requests in flight at TTFT 2000 ms: ...; the nearest, 1 x tp1 on H100-SXM
    (max_num_seqs 192: 16.72 req/s, TTFT 155 ms each), holds 192 and leaves 808 queued for
    808 / 16.72 req/s = 48.3 s > the 1845 ms its TTFT leaves"."""
    fm = space.models[m]
    burst = fm.burst_prompts
    cap = fm.queue_clients or burst or 0
    limit = fm.workload.ttft_ms or 0.0
    text = (
        f"{fm.name}: {cap} prompts sent at once at TTFT {limit:g} ms: each engine's TTFT, its first "
        "wave's prefill and the drain of the prompts past the running batches (Q ((1 - k) Q + 1 + k N) "
        "/ 2N completions for Q queued, k the first wave's share done together) stay within it"
        if burst is not None
        else f"{fm.name}: {cap} requests in flight (a closed-loop client) at TTFT {limit:g} ms: the "
        "requests beyond the replicas' running batches wait in the server's queue, (concurrency - "
        "held) / capacity s by Little's law, and that wait plus each engine's TTFT stays within the limit"
    )
    best: tuple[float, str] | None = None
    fits = False  # some engine's wait fits its room: the queue alone is not why nothing fits
    for k in space.engines_of(model=m):
        e = space.engines[k]
        if e.queue_room_us is None or not e.in_flight or e.in_flight > cap:
            continue
        n = min(space.max_replicas(e), cap // e.in_flight)
        if n < 1:
            continue
        rps = e.capacity_milli_rps / fm.units_per_rps
        queued = cap - n * e.in_flight
        waits = drain_completions(burst, queued, burst_sync_pct(fm)) if burst is not None else queued
        wait_s = waits / (n * rps) + (e.wave_us(burst) / 1e6 if burst is not None else 0.0)
        short = wait_s - e.queue_room_us / 1e6
        fits |= short <= 0
        if short <= 0 or (best is not None and short >= best[0]):
            continue  # its wait fits its room: not why nothing fits
        pool = space.cluster.pools[e.pool].gpu.name
        best = (
            short,
            f"; the nearest, {n} x {e.label} on {pool} (max_num_seqs {e.config.max_num_seqs}: "
            f"{rps:.2f} req/s, TTFT {e.ttft_us / 1e3:.0f} ms each; the most pool {e.pool} and the cap "
            "allow), "
            f"holds {n * e.in_flight} and leaves {queued} queued for {waits:.6g} / {n * rps:.2f} req/s"
            + (f" + {e.wave_us(burst) / 1e6:.1f} s of first-wave prefill" if burst is not None else "")
            + f" = {wait_s:.1f} s > the {max(e.queue_room_us, 0) / 1e3:.0f} ms its TTFT leaves",
        )
    if best is None or fits:
        return text + (
            "; at the most replicas its pools allow, an engine's wait fits its TTFT: the queue binds "
            "together with the other families named"
        )
    return text + best[1]


def infeasible_reasons(space: DeploymentSpace, settings: SolverSettings) -> tuple[tuple[str, str], ...]:
    """Why `space` has no deployment, one (constraint family, sentence with numbers) per conflicting
    family (`conflicting_families`); a model without any engine is family `engines[m]`, the pools the
    core names together `pool_nodes`. Shared by `explain_infeasible` and the mixed fronts
    (`front._why_none`), so that each family is explained in one place."""
    named: list[tuple[str, str]] = []
    for m, fm in enumerate(space.models):
        if not space.engines_of(model=m):
            why = "; ".join(why_no_engine(space.serving[m, p]) for p in range(len(space.cluster.pools)))
            cap = "" if fm.concurrency is None else f" with at most {fm.concurrency} requests in flight"
            named.append(
                (f"engines[{m}]", f"{fm.name}: no engine starts and meets its SLOs{cap} on any pool: {why}")
            )
    if named:
        return tuple(named)
    core = conflicting_families(space, settings)
    pools = [int(f.split("[")[1].rstrip("]")) for f in core if f.startswith("pool_nodes")]
    for f in core:
        if f.startswith("demand"):
            named.append((f, demand_numbers(space, int(f.split("[")[1].rstrip("]")))))
        elif f.startswith("concurrency"):
            named.append((f, concurrency_numbers(space, int(f.split("[")[1].rstrip("]")))))
        elif f.startswith("client_queue"):
            named.append((f, client_queue_numbers(space, int(f.split("[")[1].rstrip("]")))))
        elif f.startswith("deployed"):
            m = int(f.split("[")[1].rstrip("]"))
            small = min(space.engines_of(model=m), key=lambda k: space.engines[k].gpus)
            e = space.engines[small]
            text = f"{space.models[m].name} must get at least one engine (smallest: {e.label}, {e.gpus} GPUs)"
            named.append((f, text))
    if pools:
        named.append(
            (
                "pool_nodes",
                "together on "
                + " + ".join(space.cluster.pools[p].spec for p in pools)
                + f" ({sum(space.pool_gpus(p) for p in pools)} GPUs)",
            )
        )
    return tuple(named)


def explain_infeasible(space: DeploymentSpace, settings: SolverSettings) -> InfeasibleError:
    """An InfeasibleError naming the conflicting families (rates, pools, deployed models) with numbers
    (`infeasible_reasons`)."""
    named = infeasible_reasons(space, settings)
    reasons = tuple(text for _, text in named)
    families = [f for f, _ in named]
    if any(f.startswith("engines") for f in families):
        return InfeasibleError("no deployment: a model has no engine on this cluster", reasons)
    fleet = len(space.models) > 1  # one model's deployment (plan --request-rate, a sweep row): no fleet
    if any(f.startswith("client_queue") for f in families) and not any(
        f.startswith("demand") for f in families
    ):
        clients = "the fleet's clients" if fleet else "the model's clients"
        return InfeasibleError(f"the cluster cannot serve {clients} within their TTFT limits", reasons)
    rates = "the fleet's request rates at their SLOs" if fleet else "the model's request rate at its SLOs"
    return InfeasibleError(f"the cluster cannot serve {rates}", reasons)
