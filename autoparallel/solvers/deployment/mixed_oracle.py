"""Brute force over a mixed space (mixed.py): the oracle the CP-SAT deployment front is tested against.

Shares nothing with mixed_encoder.py but the space: for each mode it walks every replica-count vector
of that mode's engines whose GPUs fit each pool (`oracle.vectors`), packs them by simulation
(`oracle.fits`: wide engines on whole nodes, the narrow ones one by one, widest first, on the first
node with room that keeps them in one host or on whole hosts; no GPU count, no encoder rule, so
mixed_encoder's per-size rules on NVLink domains of 36 / 72 GPUs are checked independently),
keeps those that deploy the mode (an aggregated engine; a prefill and a decode engine) within the
concurrency cap (`oracle.within_concurrency`) and, aggregated, whose engines' TTFT with the client's
queue meets the limit (`oracle.within_ttft`, in floats: table TTFT + (C − held) / capacity by
Little's law; disaggregated, `oracle.within_role_queue`: flow · (limit + slot time) ≥ C), scores them in
the solver's units (a disaggregated flow as the space's `capacity_milli_rps` gives it: round robin,
within a cap's closed loop) and returns the non-dominated objective vectors. The disaggregated vectors are
walked once per link floor (mixed.py: that floor's prefill engines and the decode engines of the
pools at or above it, `MixedSpace.floor_engines`), every other role engine at 0, and the floors'
vectors pooled: the union the CP-SAT model's one-floor rule ranges over, enumerated without it.
Exponential: small spaces only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from autoparallel.solvers.deployment import oracle
from autoparallel.solvers.deployment.mixed import OBJECTIVES, MixedSpace
from autoparallel.solvers.deployment.space import DeploymentSpace


def _score(space: MixedSpace, mode: str, counts: tuple[int, ...], tpots: list[int], name: str) -> int:
    engines = space.aggregated.engines if mode == "aggregated" else space.roles.space.engines
    used = [(e, n, t) for e, n, t in zip(engines, counts, tpots, strict=True) if n]
    if name == "tpot":
        return max(t for _, _, t in used)
    if name == "cost":
        return sum(e.micro_usd_per_hour * n for e, n, _ in used)
    if name == "gpus":
        return sum(e.gpus * n for e, n, _ in used)
    fm = space.fleet_model
    if mode == "aggregated":
        return fm.workload.osl * sum(e.capacity_milli_rps * n for e, n, _ in used)
    return fm.workload.osl * space.roles.space.capacity_milli_rps(counts, 0)


def scored(space: MixedSpace, names: tuple[str, ...]) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """(mode, counts, objective vector) of every feasible deployment of the allowed modes."""
    out = []
    modes = {"auto": ("aggregated", "disaggregated"), "on": ("disaggregated",), "off": ("aggregated",)}
    rate = space.fleet_model.demand_milli_rps
    for mode in modes[space.mode]:
        sub = space.aggregated if mode == "aggregated" else space.roles.space
        sub = dataclasses.replace(sub, disaggregated=False)  # `vectors` / `fits` read GPUs and packing only
        tpots = space.agg_tpot_us if mode == "aggregated" else space.decode_tpot_us
        for counts in _walk(space, mode, sub):
            roles = {e.role for e, n in zip(sub.engines, counts, strict=True) if n}
            if not roles or (mode == "disaggregated" and roles != {"prefill", "decode"}):
                continue
            if not oracle.fits(sub, counts) or not oracle.within_concurrency(sub, counts, 0):
                continue
            if mode == "aggregated" and not oracle.within_ttft(sub, counts, 0):
                continue
            if mode == "disaggregated" and not oracle.within_role_queue(space.roles.space, counts, 0):
                continue
            if (
                rate
                and _score(space, mode, counts, tpots, "throughput") < rate * space.fleet_model.workload.osl
            ):
                continue
            out.append((mode, counts, tuple(_score(space, mode, counts, tpots, n) for n in names)))
    return out


def _walk(space: MixedSpace, mode: str, sub: DeploymentSpace) -> Iterator[tuple[int, ...]]:
    """Every count vector of `mode`'s engines (`sub`): the aggregated ones' at once; the role engines'
    per link floor (module doc), each vector once."""
    if mode == "aggregated":
        yield from oracle.vectors(sub)
        return
    seen: set[tuple[int, ...]] = set()
    for t in range(max(len(space.floors), 1)):
        ks = space.floor_engines(t)
        part = dataclasses.replace(sub, engines=tuple(sub.engines[k] for k in ks))
        for counts in oracle.vectors(part):
            full = [0] * len(sub.engines)
            for k, n in zip(ks, counts, strict=True):
                full[k] = n
            if (vector := tuple(full)) not in seen:
                seen.add(vector)
                yield vector


def brute_force_front(space: MixedSpace, names: tuple[str, ...]) -> set[tuple[int, ...]]:
    """The non-dominated objective vectors (solver units) over every deployment of the space."""
    signs = [1 if OBJECTIVES[n].maximize else -1 for n in names]
    vecs = {v for _, _, v in scored(space, names)}
    keyed = {v: tuple(s * x for s, x in zip(signs, v, strict=True)) for v in vecs}

    def dominated(v: tuple[int, ...]) -> bool:
        a = keyed[v]
        return any(w != v and all(x >= y for x, y in zip(keyed[w], a, strict=True)) for w in vecs)

    return {v for v in vecs if not dominated(v)}
