"""The wait for a running slot under an arrival rate: an M/G/c queue per engine replica.

An engine admits a waiting request only while fewer than its limit run (vLLM V1
`Scheduler.schedule`: `len(self.running) < self.max_num_running_reqs`; SGLang's
`--max-running-requests`, TensorRT-LLM's `max_batch_size` alike), and a request holds its slot from
admission to its last token. Requests arriving at λ per second therefore queue for c servers, the
c = max_num_seqs (× data-parallel ranks) slots, each busy S = c / X seconds per request at full load
(X the replica's completions per second, Little's law). Below capacity the queue is short, near it
long: at 98% of capacity 8 slots keep a request waiting seconds, where the running batch's prefill
alone is tens of milliseconds.

The mean wait is Allen and Cunneen's approximation for GI/G/c (A. O. Allen, "Probability,
Statistics, and Queueing Theory", 2nd ed. 1990, §6; W. Whitt, "Approximations for the GI/G/m queue",
Production and Operations Management 2 (1993)): the M/M/c wait, Erlang C(c, a) / (c μ − λ), scaled by
(c_a² + c_s²) / 2, with c_a² the squared coefficient of variation of the gaps between arrivals (1 for
Poisson, 1 / k for `vllm bench serve --burstiness k`'s gamma gaps) and c_s² that of the slot time.
"""

from __future__ import annotations

import math

ERLANG_C_NEGLIGIBLE_SIGMAS = 10.0
"""Slots beyond the offered load by more than this many of its standard deviations (√a) wait with
probability below 10⁻²⁰: Erlang C is taken as 0 there."""


def erlang_c(slots: int, offered: float) -> float:
    """The probability that an arrival waits in an M/M/c queue of `slots` servers at `offered` = λ / μ
    Erlangs: C = B / (1 − ρ (1 − B)), B Erlang's loss formula, 1 / B = Σ_{j=0..c} c! / ((c − j)! a^j)
    (summed from j = 0 while its terms matter). 1 at ρ = a / c ≥ 1."""
    if offered <= 0:
        return 0.0
    if offered >= slots:
        return 1.0
    if slots - offered > ERLANG_C_NEGLIGIBLE_SIGMAS * math.sqrt(offered) + 20:
        return 0.0
    term, total = 1.0, 1.0
    for k in range(slots, 0, -1):  # term_j = term_{j−1} · (c − j + 1) / a
        term *= k / offered
        total += term
        if k < offered and term < 1e-17 * total:
            break
    loss = 1.0 / total
    rho = offered / slots
    return loss / (1.0 - rho * (1.0 - loss))


def slot_wait_s(rate_per_s: float, slots: int, completions_per_s: float, variability: float) -> float:
    """Mean seconds an arrival waits for one of `slots` slots that together complete
    `completions_per_s` requests per second when all are busy, requests arriving at `rate_per_s`:
    C(c, a) / (X − λ) · `variability` (Allen–Cunneen; `variability` = (c_a² + c_s²) / 2). inf at or
    beyond capacity (λ ≥ X): the queue grows without bound."""
    if rate_per_s <= 0:
        return 0.0
    if rate_per_s >= completions_per_s:
        return math.inf
    offered = rate_per_s / completions_per_s * slots  # a = λ / μ, μ = X / c
    return erlang_c(slots, offered) / (completions_per_s - rate_per_s) * variability


def rate_within_wait(slots: int, completions_per_s: float, variability: float, room_s: float) -> float:
    """The largest arrival rate (requests/s) whose mean slot wait (`slot_wait_s`) is at most `room_s`
    (bisection: the wait grows with the rate); 0 when `room_s` < 0."""
    if room_s < 0 or completions_per_s <= 0:
        return 0.0
    lo, hi = 0.0, completions_per_s
    for _ in range(60):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if slot_wait_s(mid, slots, completions_per_s, variability) <= room_s else (lo, mid)
    return lo


def arrival_variability(burstiness: float, replicas: int) -> float:
    """c_a² of one replica's arrivals: gamma gaps of shape k (`Serving.burstiness`) have c² = 1 / k;
    split at random over `replicas`, each replica's stream is thinned, c² = 1 + (1 / k − 1) / replicas
    (a thinned renewal process tends to Poisson)."""
    return 1.0 + (1.0 / burstiness - 1.0) / max(replicas, 1)
