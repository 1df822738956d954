"""The wait for a running slot under an arrival rate: a birth–death queue per engine replica.

An engine admits a waiting request only while fewer than its limit run (vLLM V1
`Scheduler.schedule`: `len(self.running) < self.max_num_running_reqs`; SGLang's
`--max-running-requests`, TensorRT-LLM's `max_batch_size` alike), and a request holds its slot from
admission to its last token. Requests arriving at λ per second therefore queue for the c =
max_num_seqs slots. The slots do not work at a fixed speed: with n running, each request holds its
slot for cycle(n) = its prefill + (osl − 1) steps of T(n), and T grows with n (more KV read, more
tokens per step), so n running complete μ(n) = n / cycle(n) requests per second, up to the full
load's c / cycle(c). Taking every slot as busy for cycle(c) priced 367 slots at 19 req/s as waiting a
second where the replay, 165 running on average, waits none (the busy slots turn over twice as fast).

The number in the replica is then a birth–death chain (Kleinrock, "Queueing Systems" vol. 1, 1975,
§3.5): p(n) ∝ Π_{k ≤ n} λ / μ(k), with μ(k) = μ(c) beyond c, so the mean queue is
L_q = p(c) ρ / (1 − ρ)², ρ = λ / μ(c), and the mean wait L_q / λ. cycle(n) is taken affine between
a lone request's cycle (n = 1) and the full load's (n = c), the two the float model prices; with both
equal this is M/M/c's Erlang C wait exactly. Arrivals and slot times that are not exponential scale
it by (c_a² + c_s²) / 2, Allen and Cunneen's factor for GI/G/c (A. O. Allen, "Probability, Statistics,
and Queueing Theory", 2nd ed. 1990; W. Whitt, "Approximations for the GI/G/m queue", Production and
Operations Management 2, 1993): c_a² of the gaps between arrivals (1 for Poisson, 1 / k for
`vllm bench serve --burstiness k`'s gamma gaps), c_s² of the slot times.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

SlotQueue = tuple[int, float, float, float]
"""(slots, lone cycle s, full-load cycle s, (c_a² + c_s²) / 2) of one replica's slot queue: the
arguments of `slot_wait_s` and `rate_within_wait` after the rate."""


def slot_wait_s(
    rate_per_s: float, slots: int, lone_cycle_s: float, full_cycle_s: float, variability: float
) -> float:
    """Mean seconds an arrival waits for one of `slots` slots, requests arriving at `rate_per_s`, a
    lone request holding its slot `lone_cycle_s` and each of a full load's `full_cycle_s` (module
    doc; `variability` = (c_a² + c_s²) / 2). inf at or beyond the full load's rate."""
    if rate_per_s <= 0:
        return 0.0
    full_rate = slots / full_cycle_s
    if rate_per_s >= full_rate:
        return math.inf
    return _wait_s(rate_per_s, full_rate, _log_service_rates(slots, lone_cycle_s, full_cycle_s), variability)


def _log_service_rates(slots: int, lone_cycle_s: float, full_cycle_s: float) -> np.ndarray:
    """log μ(n) = log(n / cycle(n)) for n = 1..slots (module doc), which no arrival rate changes."""
    n = np.arange(1, slots + 1, dtype=float)
    lone = min(lone_cycle_s, full_cycle_s)
    cycle = lone + (full_cycle_s - lone) * (n - 1) / max(slots - 1, 1)
    return np.log(n / cycle)


def _wait_s(rate_per_s: float, full_rate: float, log_service: np.ndarray, variability: float) -> float:
    """`slot_wait_s` below the full load's rate, given `_log_service_rates`."""
    log_p = np.concatenate(([0.0], np.cumsum(math.log(rate_per_s) - log_service)))  # p(n) / p(0)
    rho = rate_per_s / full_rate
    tail = log_p[-1] - math.log1p(-rho)  # Σ_{n ≥ c} p(n) = p(c) / (1 − ρ)
    top = max(float(log_p.max()), tail)
    total = float(np.exp(log_p[:-1] - top).sum()) + math.exp(tail - top)
    p_full = math.exp(log_p[-1] - top) / total
    queued = p_full * rho / (1.0 - rho) ** 2
    return queued / rate_per_s * variability


def rate_within_wait(
    slots: int, lone_cycle_s: float, full_cycle_s: float, variability: float, room_s: float
) -> float:
    """The largest arrival rate (requests/s) whose mean slot wait (`slot_wait_s`) is at most `room_s`,
    below the full load's slots / `full_cycle_s` (bisection: the wait grows with the rate); 0 when
    `room_s` < 0."""
    if room_s < 0 or full_cycle_s <= 0:
        return 0.0
    lo, hi = 0.0, slots / full_cycle_s
    full_rate = hi
    log_service: np.ndarray | None = None  # the service rates, the same at every rate tried
    for _ in range(30):  # to 10⁻⁹ of the full load's rate
        mid = (lo + hi) / 2.0
        # `slot_wait_s(mid, slots, lone_cycle_s, full_cycle_s, variability)`, its rate-free part kept
        if mid <= 0:
            wait = 0.0
        elif mid >= full_rate:
            wait = math.inf
        else:
            if log_service is None:
                log_service = _log_service_rates(slots, lone_cycle_s, full_cycle_s)
            wait = _wait_s(mid, full_rate, log_service, variability)
        lo, hi = (mid, hi) if wait <= room_s else (lo, mid)
    return lo


def rated_milli_tps(
    full_milli_tps: int,
    ttft_us: int,
    limit_us: int,
    max_num_seqs: int,
    dp: int,
    osl: int,
    lone_cycle_s: Callable[[], float],
    variability: float,
) -> int:
    """Output milli-tokens/s one data rank of an engine carries with a TTFT limit holding at an
    arrival rate: the one rule of the deployment space (`solvers.deployment.space.rated_milli_tps`)
    and of the serving explanation's request_rate reason (`solvers.serving.explain`).

    The engine's `dp` ranks of `max_num_seqs` slots each are pooled into one birth–death queue (module
    doc; `perf.rate_slot_wait_s` pools them alike), a slot held `lone_cycle_s()` by a lone request and
    slots · osl / (dp · `full_milli_tps` / 1000) s each at full load; the most it carries is the rate
    whose mean wait (`rate_within_wait`, scaled by `variability`) fits the room its TTFT without that
    wait (`ttft_us`) leaves under `limit_us`, per rank, at most `full_milli_tps` (rounded down). 0
    where `ttft_us` alone exceeds the limit (the lone cycle is then not asked for)."""
    if full_milli_tps <= 0:
        return full_milli_tps
    room_s = (limit_us - ttft_us) / 1e6
    if room_s < 0:
        return 0
    slots = max(max_num_seqs, 1) * dp
    full_cycle_s = slots / (full_milli_tps * dp / 1000 / osl)
    rate = rate_within_wait(slots, lone_cycle_s(), full_cycle_s, variability, room_s) / dp
    return min(full_milli_tps, math.floor(rate * osl * 1000))
