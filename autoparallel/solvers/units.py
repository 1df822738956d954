"""Scaled integer units of the CP-SAT models: the one place each scale is declared.

CP-SAT needs integer coefficients. Floats from the cost model become integers here, rounded so that
rounding only makes the solver more conservative: usages round up, capacities round down (STYLE §4).
Resolutions are coarse on purpose (the CP-SAT primer measured solve time growing with the scale
factor), but fine enough that rounding never changes which configuration is best by more than the
stated tolerance:

    memory      KiB      (an 80 GiB GPU is 8.4e7 units; a block of KV cache is >= 16 KiB)
    time        µs       (TPOT 5-500 ms: 5e3-5e5 units)
    throughput  milli-tokens/s
    request rate (deployment/space.py) 1 / (1000 · rate_scale) requests/s per model, rate_scale the
                smallest divisor of the model's osl at which its slowest candidate engine sustains
                >= 1000 units (else osl: one unit is one output milli-token/s)
    cost        micro-US$ per million output tokens

Tolerance: a rounded-down capacity or throughput of N units loses less than one unit, under 1/N of
it; N >= 1000 for every engine of at least 1 output token/s, so rounding changes which configuration
is best by at most 0.1 % of its throughput.
"""

from __future__ import annotations

import math

BYTES_PER_KIB = 1024
"""Memory unit: 1 KiB."""
US_PER_S = 1_000_000
"""Time unit: 1 µs."""
MILLI_TOKENS_PER_TOKEN = 1000
"""Throughput unit: 1/1000 token per second."""
MICRO_USD_PER_USD = 1_000_000
"""Cost unit: 1e-6 US$ per million output tokens."""


def kib_up(nbytes: float) -> int:
    """Bytes used -> KiB, rounded up."""
    return math.ceil(nbytes / BYTES_PER_KIB - 1e-9)


def kib_down(nbytes: float) -> int:
    """Bytes available -> KiB, rounded down."""
    return math.floor(nbytes / BYTES_PER_KIB + 1e-9)


def us_up(seconds: float) -> int:
    """A duration -> µs, rounded up (a time the plan takes)."""
    return math.ceil(seconds * US_PER_S - 1e-6)


def us_down(seconds: float) -> int:
    """A time limit -> µs, rounded down."""
    return math.floor(seconds * US_PER_S + 1e-6)


def milli_tokens_up(tokens_per_s: float) -> int:
    """Tokens/s -> milli-tokens/s, rounded up (a rate the plan must sustain)."""
    return math.ceil(tokens_per_s * MILLI_TOKENS_PER_TOKEN - 1e-6)


def milli_tokens_down(tokens_per_s: float) -> int:
    """Tokens/s -> milli-tokens/s, rounded down (a rate the plan sustains)."""
    return math.floor(tokens_per_s * MILLI_TOKENS_PER_TOKEN + 1e-6)


def micro_usd(usd: float) -> int:
    """US$ -> micro-US$, rounded to nearest."""
    return round(usd * MICRO_USD_PER_USD)
