"""What a client's requests do to a deployment, as the integer rules the CP-SAT encoders post and the
oracles read (no ortools here):

- a closed-loop client's queue on disaggregated decode engines (`role_queue_room_us`: mean TTFT
  C / X − T by Little's law);
- N prompts sent at once draining through the replicas (`drain_lines`, `drain_completions`: the
  chords of the renewal-theory wait, `perf.serving.client_queue_s`);
- a concurrency cap's closed loop through prefill and decode roles (`closed_loop_rule`: the decode
  slots, the overhead and KV transfer, and the prefill ranks' M/G/n count by its chords,
  `prefill_client_lines`), of which the float model's fixed point is `perf.disagg.closed_loop_rps`.

deployment/space.py holds the engines these rules read; encoder.py posts them; oracle.py and
mixed_oracle.py evaluate them in closed form.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autoparallel.perf.disagg import prefill_in_system
from autoparallel.perf.serving import burst_sync
from autoparallel.solvers import units

if TYPE_CHECKING:
    from autoparallel.solvers.deployment.space import DeploymentSpace, Engine, FleetModel

QUEUE_TERM_BOUND = 2**60
"""Most a queue or closed-loop constraint's terms may sum to at their bounds (CP-SAT refuses a linear
constraint that could overflow 64 bits); past it the wait is counted in coarser time units."""


def role_queue_room_us(fm: FleetModel, e: Engine) -> int | None:
    """A disaggregated decode engine's room for a closed-loop client's wait (µs; None: a prefill engine,
    no TTFT limit or no closed loop). A request cycles through TTFT (everything before its decode: the
    router's queue, the prefill, the KV transfer) and its decode; by Little's law C clients at X
    requests/s cycle in C / X s, so the mean TTFT is C / X − T, T the mean time a request holds a
    decode slot: in_flight / capacity of its decode engine at full load (Little's law again; at less
    than full load a slot is held as long, the engine then holding fewer). The rule X · (limit + T) ≥ C
    for every used decode engine takes the least T (the proxy deals requests round robin, so T is their
    mean), the residence rounded down (capacity one rate unit high): never a missed limit."""
    limit = fm.workload.ttft_ms
    if e.role != "decode" or limit is None or fm.queue_clients is None:
        return None
    return units.us_down(limit / 1e3) + e.in_flight * fm.units_per_rps * units.US_PER_S // (
        e.capacity_milli_rps + 1
    )


CLIENT_SCALE = 1000
"""Requests in flight in the closed-loop rule's integers: thousandths (`prefill_client_lines`)."""
SPREAD_STEPS = 20
"""`prefill_client_lines` rounds the prefill time's squared coefficient of variation up to twentieths."""
CLIENT_POINTS = 16
"""`prefill_client_lines` places chord ends at ρ = k / 16 up to 1/2, then at 1 − 2^(−j/4)."""


CHORD_EXCESS = 0.05
"""The most the prefill chords lie above the requests they bound (`prefill_client_lines`: 5% below
ρ = 1/16, 2% beyond): a closed loop's flow in the solver is at most this fraction below the float
model's (`front.check_point`)."""


def prefill_client_lines(
    service_cv2: float, clients: int, rho_max: float, ranks: int = 1
) -> tuple[tuple[int, int], ...]:
    """Chords (α, β) of the requests per rank of a P engine of `ranks` pooled ranks, waiting or in
    prefill, at utilisation ρ: f(ρ) = ρ + C(n, nρ) ρ (1 + c²) / (2n (1 − ρ)) (`perf.disagg.
    prefill_in_system`, M/G/n; for one rank ρ + ρ² (1 + c²) / (2 (1 − ρ))), so that CLIENT_SCALE · f(ρ) ≤
    α + β ρ on the chord's own interval; α, β rounded up (α ≤ 0: a chord of a convex f with f(0) = 0
    meets ρ = 0 below 0). Ends at ρ = k / CLIENT_POINTS up to 1/2, then 1 − 2^(−j/4), up to the first
    end where f passes `clients` (one rank alone would hold more requests than the client has in
    flight: the last chord, increasing, then rules that load out) or past `rho_max` (the engine's
    rating: the prefill balance keeps ρ below it, where the later chords are below f). The maximum of
    the chords is f's piecewise-linear interpolant: at most 5% above f below ρ = 1/16, 2% beyond. c² is
    rounded up to SPREAD_STEPS-ths (f grows with it), so that engines of nearly one spread share their
    chords, up to their own ends, and `space.undominated` can compare them."""
    service_cv2 = math.ceil(service_cv2 * SPREAD_STEPS - 1e-9) / SPREAD_STEPS
    ends = [k / CLIENT_POINTS for k in range(CLIENT_POINTS // 2 + 1)]
    j = 4
    while prefill_in_system(ends[-1], service_cv2, ranks) <= clients and ends[-1] < rho_max:
        j += 1
        ends.append(1.0 - 2.0 ** (-j / 4))
    lines = []
    for a, b in itertools.pairwise(ends):
        fa, fb = prefill_in_system(a, service_cv2, ranks), prefill_in_system(b, service_cv2, ranks)
        beta = (fb - fa) / (b - a) * CLIENT_SCALE
        alpha = fa * CLIENT_SCALE - beta * a
        lines.append((math.ceil(alpha - 1e-9), math.ceil(beta - 1e-9)))
        if b >= rho_max:
            break
    return tuple(lines)


CLOSED_LOOP_ROOM = 10**10
"""Most the closed-loop rule's right side may be in its own units (`closed_loop_rule`): CP-SAT 9.15 with
the planner's parameters called a feasible model INFEASIBLE with it at 4e12 (Llama-3.1-8B, 4 clients,
one P and one D replica; OPTIMAL at 4e11 and below)."""


@dataclass(frozen=True)
class ClosedLoopRule:
    """One disaggregated model's closed-loop rule in integers (`closed_loop_rule`), X its flow in rate
    units and N_P its prefill replicas: for every used decode engine k, H_D ≥ hold[k] · X; for every
    used prefill engine k and pair (c, a) of prefill[k], H_P ≥ c · X + a · N_P; H_D + H_P ≤ room."""

    room: int
    hold: dict[int, int]
    """Decode engine k -> its slot time (in_flight / capacity) per unit of flow, in the rule's units."""
    prefill: dict[int, tuple[tuple[int, int], ...]]
    top_flow: int
    """The most X can be under the rule: room ÷ the least decode coefficient (or the engines' capacity)."""

    def flow(self, counts: list[int] | tuple[int, ...]) -> int | None:
        """The most X the rule lets engines at replica counts `counts` carry (None: no used prefill or
        decode engine): min over every pair (c, a) of a used prefill engine of
        ⌊(room − a · N_P) / (d + c)⌋, d the used decode engines' largest hold; at least 0."""
        holds = [c for k, c in self.hold.items() if counts[k]]
        pairs = [pair for k, lines in self.prefill.items() if counts[k] for pair in lines]
        if not holds or not pairs:
            return None
        d, n_p = max(holds), sum(counts[k] for k in self.prefill)
        return max(min((self.room - a * n_p) // (d + c) for c, a in pairs), 0)


def closed_loop_rule(space: DeploymentSpace, m: int) -> ClosedLoopRule | None:
    """Model m's closed-loop rule (None without a concurrency cap C or outside a disaggregated space).
    Every request is somewhere in its cycle (perf/disagg.py), so with X the flow, W = units_per_rps ·
    10⁶ (µs per request/s) and N_P the prefill replicas, for every used decode engine d, used prefill
    engine p and chord (α, β) of p's rank (`prefill_client_lines`):

        CLIENT_SCALE · X · (hold_d + lead_p) + β · prefill_us_p · X + α · dp_p · W · N_P
            ≤ CLIENT_SCALE · W · C

    (the decode slots X · hold, hold = in_flight / capacity, the slowest used decode engine's: at
    least the round-robin mean; the overhead and KV transfer X · lead, the slowest; every P replica
    charged as one of p, each rank at ρ = X · S_p / (W · N_P · dp_p): at least the round-robin mean).
    All of it is divided by the power of ten G that brings the right side within CLOSED_LOOP_ROOM and
    every term at its bounds within QUEUE_TERM_BOUND: coefficients rounded up, the right side down.
    Decode engines of different holds under round robin are charged the slowest's (Qwen3-8B's P 2x tp2
    | D 1x tp4 H100 b24 + 2x tp4 A100 b32 at 96 clients: 96 requests in the decode slots where round
    robin gives 86.9): the alternative bound by the slots, Σ in_flight · replicas, took the solve of
    that space's throughput then cost from 0.8 s to 34 s."""
    fm = space.models[m]
    clients = fm.concurrency
    if clients is None or not space.disaggregated:
        return None
    ks = space.engines_of(model=m)
    w = fm.units_per_rps * units.US_PER_S
    room = CLIENT_SCALE * w * clients
    engines = {k: space.engines[k] for k in ks}
    hold = {
        k: -(-CLIENT_SCALE * e.in_flight * w // max(e.capacity_milli_rps, 1))
        for k, e in engines.items()
        if e.role == "decode"
    }
    prefill = {
        k: tuple(
            (CLIENT_SCALE * e.lead_us + beta * e.prefill_us, alpha * e.dp * w)
            for alpha, beta in e.client_lines
        )
        for k, e in engines.items()
        if e.role == "prefill" and e.client_lines
    }
    if not hold or not prefill:
        return None
    top_x = sum(space.engines[k].capacity_milli_rps * space.max_replicas(space.engines[k]) for k in ks)
    top_p = sum(space.max_replicas(space.engines[k]) for k in prefill)

    def scaled(g: int) -> ClosedLoopRule:
        dec = {k: -(-c // g) for k, c in hold.items()}
        pre = {k: tuple((-(-c // g), -(-a // g)) for c, a in lines) for k, lines in prefill.items()}
        r = room // g
        return ClosedLoopRule(r, dec, pre, min(top_x, r // max(min(dec.values()), 1)))

    def fits(rule: ClosedLoopRule) -> bool:
        x = rule.top_flow
        return (
            rule.room <= CLOSED_LOOP_ROOM
            and max(rule.hold.values()) * x <= QUEUE_TERM_BOUND
            and all(
                c * x + abs(a) * top_p <= QUEUE_TERM_BOUND
                for lines in rule.prefill.values()
                for c, a in lines
            )
        )

    g = 1
    while not fits(rule := scaled(g)) and g < 10**18:
        g *= 10
    return rule


SYNC_SCALE = 100
"""κ (`perf.serving.burst_sync`) in hundredths in the burst rule's integers (rounded up: a longer wait)."""


def burst_sync_pct(fm: FleetModel) -> int:
    """κ of model `fm`'s output lengths in hundredths, rounded up."""
    return math.ceil(burst_sync(fm.workload) * SYNC_SCALE - 1e-9)


def drain_lines(prompts: int, sync_pct: int) -> tuple[tuple[int, int], ...]:
    """A burst's drain as lines (intercept, slope) in the queued count Q: N prompts sent at once, the
    replicas holding H, leave Q = N − H in the server's queue, the k-th starting at the k-th
    completion, k / X + κ · μ / 2 s by renewal theory (`perf.serving.client_queue_s`; μ the cycle,
    κ = `sync_pct` / 100), so the mean wait over the N prompts is F(Q) / (2N · X) s with
    F(Q) = Q ((1 − κ) Q + 1 + κ N) completions (one shared queue). F is convex: the planner charges
    its chords between Q = 0, 1, 2, 4, ... N (at most 1/8 above it); in hundredths, with
    α = 100 − 100κ and β = 100 + 100κ N, the chord over (a, b) is α (a + b) + β per queued prompt
    from −α a b: integers. Their maximum is 100 · F where it is exact, above it in between."""
    alpha, beta = SYNC_SCALE - sync_pct, SYNC_SCALE + sync_pct * prompts
    points = sorted({0, prompts, *(1 << k for k in range(prompts.bit_length()) if (1 << k) < prompts)})
    return tuple((-alpha * a * b, alpha * (a + b) + beta) for a, b in itertools.pairwise(points))


def drain_completions(prompts: int, queued: int, sync_pct: int) -> float:
    """Completions the mean prompt of a burst waits, as the planner charges it (`drain_lines`)."""
    if queued <= 0:
        return 0.0
    top = max(c + k * queued for c, k in drain_lines(prompts, sync_pct))
    return top / (2 * prompts * SYNC_SCALE)
