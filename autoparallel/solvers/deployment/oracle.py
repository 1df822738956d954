"""Brute force over replica counts: the oracle the CP-SAT deployment model is tested against.

Shares nothing with the encoder but the space (candidate engines and their coefficients): it walks
every vector of replica counts whose GPUs fit each pool, checks node granularity by packing (whole
nodes for wide engines; narrow ones placed one by one, widest first, each on the first node with
room at the next free GPU, never splitting a host unless it starts on a host boundary and takes whole
hosts: `fits`), every model deployed, its requests in flight within its concurrency cap (none for
aggregated engines of prompts sent at a rate), each engine's TTFT with the client's queue within
its model's limit (`within_ttft`, in floats) and, for capacity objectives, every rate met, and
scores the objective in the same integer units.
Exponential: for small fleets only (tests).
"""

from __future__ import annotations

from collections.abc import Iterator

from autoparallel.hardware.gpu import host_size
from autoparallel.solvers.deployment.client_rules import burst_sync_pct, drain_completions, role_queue_room_us
from autoparallel.solvers.deployment.space import DeploymentSpace, round_robin_milli_rps

MAXIMIZE = {"goodput": True, "throughput": True, "cost": False, "gpus": False}


def _weight(space: DeploymentSpace, m: int) -> int:
    """A model's tokens count priority × 1000 times (rounded, at least 1)."""
    return max(1, round(space.models[m].priority * 1000))


def fits(space: DeploymentSpace, counts: tuple[int, ...]) -> bool:
    """Node granularity per pool: wide engines take whole nodes; the narrow ones, widest first, each go
    to the first other node with room at its next free GPU without splitting a host (a replica over
    several hosts starts on a host boundary and takes whole hosts), and those nodes fit the pool.
    Widest-first first fit is optimal for power-of-two sizes (a divisibility chain), the sizes the
    space offers below a node, so a vector it refuses packs no other way."""
    for p, pool in enumerate(space.cluster.pools):
        node = pool.gpus_per_node
        gpu = getattr(pool, "gpu", None)
        host = host_size(gpu.name, node) if gpu is not None else node
        wide = sum(e.nodes * n for e, n in zip(space.engines, counts, strict=True) if e.pool == p and e.nodes)
        sizes = sorted(
            (
                e.gpus
                for e, n in zip(space.engines, counts, strict=True)
                if e.pool == p and not e.nodes
                for _ in range(n)
            ),
            reverse=True,
        )
        loads: list[int] = []
        for g in sizes:
            spot = next((b for b, load in enumerate(loads) if _slot_ok(load, g, node, host)), None)
            if spot is None:
                loads.append(0)
                spot = len(loads) - 1
                if not _slot_ok(0, g, node, host):
                    return False
            loads[spot] += g
        if wide + len(loads) > pool.nodes:
            return False
    return True


def _slot_ok(start: int, gpus: int, node: int, host: int) -> bool:
    """A replica of `gpus` GPUs on GPUs start .. start + gpus − 1 of a node of `node` GPUs in hosts of
    `host`: inside the node, and inside one host or over whole hosts from a host boundary."""
    if start + gpus > node:
        return False
    if start // host == (start + gpus - 1) // host:
        return True
    return start % host == 0 and gpus % host == 0


def capacity(space: DeploymentSpace, counts: tuple[int, ...], m: int) -> int:
    """Requests/s ×1000 model m's engines sustain (`DeploymentSpace.capacity_milli_rps`: with prefill
    and decode roles, what both carry when the proxy deals each role's requests round robin)."""
    return space.capacity_milli_rps(counts, m)


def deployed(space: DeploymentSpace, counts: tuple[int, ...], m: int) -> bool:
    """Model m has an engine (aggregated) or a prefill and a decode engine (disaggregated)."""
    roles = {e.role for e, n in zip(space.engines, counts, strict=True) if e.model == m and n}
    return roles >= {"prefill", "decode"} if space.disaggregated else bool(roles)


def within_concurrency(space: DeploymentSpace, counts: tuple[int, ...], m: int) -> bool:
    """Model m's replicas hold no more requests in flight than its concurrency cap (if any): the
    client's concurrency, at most its prompts; none for aggregated engines of prompts sent at an
    arrival rate without a concurrency (the client holds no request out). Prefill engines' slots do
    not count: a request holds one and then a decode slot, never both."""
    w = space.models[m].workload
    open_loop = w.request_rate is not None and w.concurrency is None and not space.disaggregated
    cap = None if open_loop else w.in_flight
    held = sum(
        e.in_flight * n
        for e, n in zip(space.engines, counts, strict=True)
        if e.model == m and e.role != "prefill"  # a request holds a prefill, then a decode slot
    )
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
    (`client_rules.role_queue_room_us`), hold X · room ≥ C (integers, the rule's own units)."""
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


def brute_force_floors(
    spaces: list[DeploymentSpace], objective: str
) -> tuple[int, int, tuple[int, ...]] | None:
    """(optimal value, floor index, one optimal vector) over the union of a role space's link floors
    (`spaces`, fastest first: roles.py `RoleSpace.tiers`, every vector of each floor's own engines
    walked by `brute_force`); ties keep the faster floor; None when no floor has a feasible vector."""
    best: tuple[int, int, tuple[int, ...]] | None = None
    sign = 1 if MAXIMIZE[objective] else -1
    for t, space in enumerate(spaces):
        found = brute_force(space, objective)
        if found is not None and (best is None or sign * found[0] > sign * best[0]):
            best = (found[0], t, found[1])
    return best


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
