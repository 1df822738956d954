"""Brute force over replica counts: the oracle the CP-SAT deployment model is tested against.

Shares nothing with the encoder but the space (candidate engines and their coefficients): it walks
every vector of replica counts whose GPUs fit each pool, checks node granularity by counting nodes
(whole nodes for wide engines, ⌈narrow GPUs / node⌉ for narrow ones), every model deployed, its
requests in flight within its concurrency cap, each engine's TTFT with the client's queue within
its model's limit (`within_ttft`, in floats) and, for capacity objectives, every rate met, and
scores the objective in the same integer units.
Exponential: for small fleets only (tests).
"""

from __future__ import annotations

from collections.abc import Iterator

from autoparallel.solvers.deployment.space import (
    DeploymentSpace,
    burst_sync_pct,
    drain_completions,
    role_queue_room_us,
    round_robin_milli_rps,
)

MAXIMIZE = {"goodput": True, "throughput": True, "cost": False, "gpus": False}


def _weight(space: DeploymentSpace, m: int) -> int:
    """A model's tokens count priority × 1000 times (rounded, at least 1)."""
    return max(1, round(space.models[m].priority * 1000))


def fits(space: DeploymentSpace, counts: tuple[int, ...]) -> bool:
    """Node granularity per pool: whole nodes of wide engines + nodes the narrow ones fill ≤ the pool."""
    for p, pool in enumerate(space.cluster.pools):
        wide = narrow = 0
        for e, n in zip(space.engines, counts, strict=True):
            if e.pool == p:
                if e.nodes:
                    wide += e.nodes * n
                else:
                    narrow += e.gpus * n
        if wide + -(-narrow // pool.gpus_per_node) > pool.nodes:
            return False
    return True


def capacity(space: DeploymentSpace, counts: tuple[int, ...], m: int) -> int:
    """Requests/s ×1000 model m's engines sustain (`DeploymentSpace.capacity_milli_rps`: with prefill
    and decode roles, what both carry when the proxy deals each role's requests round robin)."""
    return space.capacity_milli_rps(counts, m)


def deployed(space: DeploymentSpace, counts: tuple[int, ...], m: int) -> bool:
    """Model m has an engine (aggregated) or a prefill and a decode engine (disaggregated)."""
    roles = {e.role for e, n in zip(space.engines, counts, strict=True) if e.model == m and n}
    return roles >= {"prefill", "decode"} if space.disaggregated else bool(roles)


def within_concurrency(space: DeploymentSpace, counts: tuple[int, ...], m: int) -> bool:
    """Model m's replicas hold no more requests in flight than its concurrency cap (if any)."""
    cap = space.models[m].workload.in_flight
    held = sum(e.in_flight * n for e, n in zip(space.engines, counts, strict=True) if e.model == m)
    return cap is None or held <= cap


def queue_wait_s(space: DeploymentSpace, counts: tuple[int, ...], m: int) -> float:
    """Seconds model m's requests wait in the server's queue under a closed-loop client of
    concurrency C: the C − held requests its replicas do not run wait for X requests/s to finish
    (Little's law), X the replicas' capacities (rate units ÷ units per request/s); N prompts sent at
    once, the space's charge for their drain (`drain_completions`) over X; 0 otherwise."""
    fm = space.models[m]
    w = fm.workload
    burst = w.num_prompts if w.concurrency is None and w.request_rate is None else None
    cap = w.closed_loop
    if cap is None and burst is None:
        return 0.0
    held = 0
    per_s = 0.0
    for e, n in zip(space.engines, counts, strict=True):
        if e.model == m and n:
            held += e.in_flight * n
            per_s += e.capacity_milli_rps * n / fm.units_per_rps
    if per_s <= 0:
        return 0.0
    if burst is not None:  # the space's charge for a drain: its chords (`drain_lines`)
        return drain_completions(burst, burst - held, burst_sync_pct(fm)) / per_s
    return max((cap or 0) - held, 0) / per_s


def within_ttft(space: DeploymentSpace, counts: tuple[int, ...], m: int) -> bool:
    """Every used aggregated engine of model m meets its TTFT limit with the queue's wait added:
    its table TTFT (`Engine.ttft_us`) + `queue_wait_s` (+ a burst's first-wave prefill at its most,
    `Engine.wave_us`) ≤ the workload's ttft_ms (floats)."""
    fm = space.models[m]
    limit = fm.workload.ttft_ms
    if space.disaggregated:
        return within_role_queue(space, counts, m)
    if limit is None:
        return True
    wait = queue_wait_s(space, counts, m)
    burst = fm.burst_prompts
    return all(
        e.ttft_us / 1e6 + wait + (e.wave_us(burst) / 1e6 if burst is not None else 0.0) <= limit / 1e3
        for e, n in zip(space.engines, counts, strict=True)
        if e.model == m and n and e.role == "aggregated"
    )


def within_role_queue(space: DeploymentSpace, counts: tuple[int, ...], m: int) -> bool:
    """A disaggregated model under a closed-loop client of C requests: its flow X (round robin over
    each role) and every used decode engine's room, limit + the time a request holds its slot
    (`space.role_queue_room_us`), hold X · room ≥ C (integers, the rule's own units)."""
    fm = space.models[m]
    if fm.queue_clients is None or fm.workload.ttft_ms is None:
        return True
    picked = [(e, n) for e, n in zip(space.engines, counts, strict=True) if e.model == m and n]
    flow = round_robin_milli_rps(picked, fm.workload.isl)
    rooms = [role_queue_room_us(fm, e) for e, _ in picked if e.role == "decode"]
    need = fm.queue_clients * fm.units_per_rps * 1_000_000
    return all(room is None or room * flow >= need for room in rooms)


def feasible(space: DeploymentSpace, counts: tuple[int, ...], hard_demand: bool) -> bool:
    """Every model deployed, node granularity, concurrency caps, TTFT with the client's queue, and
    (hard demand) every rate met."""
    for m, fm in enumerate(space.models):
        if not deployed(space, counts, m) or not within_concurrency(space, counts, m):
            return False
        if not within_ttft(space, counts, m):
            return False
        if hard_demand and capacity(space, counts, m) < fm.demand_milli_rps:
            return False
    return fits(space, counts)


def value(space: DeploymentSpace, counts: tuple[int, ...], objective: str) -> int:
    """The objective in solver units: milli-tokens/s (weighted), µ$ per hour or GPUs."""
    if objective == "cost":
        return sum(e.micro_usd_per_hour * n for e, n in zip(space.engines, counts, strict=True))
    if objective == "gpus":
        return sum(e.gpus * n for e, n in zip(space.engines, counts, strict=True))
    total = 0
    for m, fm in enumerate(space.models):
        cap = capacity(space, counts, m)
        if objective == "goodput" and fm.demand_milli_rps:
            cap = min(cap, fm.demand_milli_rps)
        total += _weight(space, m) * fm.milli_tokens_per_unit * cap
    return total


def vectors(space: DeploymentSpace) -> Iterator[tuple[int, ...]]:
    """Every replica-count vector whose GPUs fit each pool (node granularity checked by `fits`)."""
    left = [pool.world_size for pool in space.cluster.pools]
    counts = [0] * len(space.engines)

    def walk(k: int) -> Iterator[tuple[int, ...]]:
        if k == len(space.engines):
            yield tuple(counts)
            return
        e = space.engines[k]
        for n in range(left[e.pool] // e.gpus + 1):
            counts[k] = n
            left[e.pool] -= n * e.gpus
            yield from walk(k + 1)
            left[e.pool] += n * e.gpus
        counts[k] = 0

    yield from walk(0)


def brute_force(space: DeploymentSpace, objective: str) -> tuple[int, tuple[int, ...]] | None:
    """(optimal value, one optimal vector) of `objective`; None when no vector is feasible.

    Rates are hard constraints for every objective but goodput (which counts served requests up to
    the rate), as in the CP-SAT model.
    """
    hard = objective != "goodput"
    best: tuple[int, tuple[int, ...]] | None = None
    sign = 1 if MAXIMIZE[objective] else -1
    for counts in vectors(space):
        if not feasible(space, counts, hard):
            continue
        score = value(space, counts, objective)
        if best is None or sign * score > sign * best[0]:
            best = (score, counts)
    return best
