"""The DP stage partition against brute force, and CP-SAT's stage partition against the DP."""

from __future__ import annotations

import itertools
import random

import pytest
from ortools.sat.python import cp_model

from autoparallel.configs import Recompute, ZeroStage
from autoparallel.hardware import Cluster
from autoparallel.memory.margins import MemoryConfig
from autoparallel.models import load_model
from autoparallel.solvers.partition import additive_stage_cost, even_partition, min_max_partition
from autoparallel.solvers.training import encoder as enc_mod
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.solvers.training.tables import TrainingTables, build_tables
from autoparallel.workload import Training


# ----- the DP alone -------------------------------------------------------------------------------------
def _brute(n: int, stages: int, cost) -> float | None:
    best = None
    for cuts in itertools.combinations(range(1, n), stages - 1):
        bounds = (0, *cuts, n)
        costs = [cost(s, bounds[s], bounds[s + 1]) for s in range(stages)]
        if any(c is None for c in costs):
            continue
        worst = max(costs)
        best = worst if best is None else min(best, worst)
    return best


@pytest.mark.parametrize("seed", range(40))
def test_dp_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    n, stages = rng.randint(1, 9), rng.randint(1, 5)
    weights = [rng.randint(1, 20) for _ in range(n)]
    memory = [rng.randint(1, 10) for _ in range(n)]
    cost = additive_stage_cost(
        weights,
        stage_extra=lambda s: 3.0 * (s == 0),
        layer_memory=memory,
        memory_scale=lambda s: float(stages - s),
        memory_limit=rng.randint(10, 60),
    )
    got = min_max_partition(n, stages, cost)
    want = _brute(n, stages, cost)
    if want is None:
        assert got is None
        return
    assert got is not None
    assert got.max_cost == want
    assert sum(got.layers_per_stage) == n and min(got.layers_per_stage) >= 1
    assert got.stage_costs == tuple(
        cost(s, sum(got.layers_per_stage[:s]), sum(got.layers_per_stage[: s + 1])) for s in range(stages)
    )


def test_even_partition_is_megatrons_split() -> None:
    assert even_partition(61, 16) == (4,) * 13 + (3,) * 3
    assert even_partition(80, 1) == (80,)
    with pytest.raises(ValueError):
        even_partition(3, 4)
    assert min_max_partition(3, 4, lambda s, a, b: 1.0) is None


# ----- CP-SAT's partition against the DP, on the solver's integer tables --------------------------------
def _stage_cost(t: TrainingTables, i: int, m: int, z: int, c: int, pp: int):
    """Slowest-stage time of one stage under the tables' rules; None when it does not fit in memory."""
    kinds = t.space.kind_of_layer

    def cost(s: int, lo: int, hi: int) -> float | None:
        cnt = [0] * t.num_kinds
        for layer in range(lo, hi):
            cnt[kinds[layer]] += 1
        first, last = s == 0, s == pp - 1
        mem = sum(n * t.state_mib[k][i][z] for k, n in enumerate(cnt))
        mem += t.inflight(i, m, s) * sum(n * t.act_mib[k][c][i][m] for k, n in enumerate(cnt))
        mem += (t.first_state_mib[i][z] + t.first_act_mib[i][m]) * first
        mem += (t.last_state_mib[i][z] + t.last_act_mib[i][m]) * last
        if mem > t.capacity_mib:
            return None
        time = sum(n * t.layer_us[k][c][i][m] for k, n in enumerate(cnt)) + t.hop_us[i][m]
        return float(time + t.first_us[i][m] * first + t.last_us[i][m] * last)

    return cost


CASES = [
    # model, cluster, tp, pp, ep, micro, memory utilization (low values make memory bind: uneven stages)
    ("meta-llama/Llama-3.1-8B", "1x8xH100", 2, 4, 1, 1, 0.85),
    ("meta-llama/Llama-3.1-8B", "1x8xH100", 1, 8, 1, 2, 0.50),
    ("meta-llama/Llama-3.2-1B", "1x4xH100", 1, 4, 1, 4, 0.30),
    ("meta-llama/Llama-3.2-1B", "1x4xH100", 1, 4, 1, 4, 0.20),  # infeasible
    ("Qwen/Qwen3-30B-A3B", "2x8xH100", 1, 4, 4, 1, 0.70),  # dense-free MoE
    ("Qwen/Qwen3-30B-A3B", "2x8xH100", 2, 4, 2, 2, 0.70),
    ("deepseek-ai/DeepSeek-V2-Lite", "1x8xH100", 1, 4, 1, 1, 0.85),  # layer 0 dense, 26 MoE
    ("deepseek-ai/DeepSeek-V2-Lite", "2x8xH100", 1, 8, 2, 1, 0.40),
]


@pytest.mark.parametrize(("name", "cluster", "tp", "pp", "ep", "micro", "util"), CASES)
def test_cpsat_partition_equals_dp(
    name: str, cluster: str, tp: int, pp: int, ep: int, micro: int, util: float
) -> None:
    model = load_model(name)
    opts = TrainingOptions(
        tp_values=(tp,),
        pp_values=(pp,),
        cp_values=(1,),
        ep_values=(ep,),
        micro_batch_values=(micro,),
        zero_stages=(ZeroStage.DISTRIBUTED_OPTIMIZER,),
        recompute_modes=(Recompute.SELECTIVE,),
        margins=MemoryConfig(utilization=util),
    )
    space = build_space(model, Cluster.parse(cluster), Training(seq_len=2048, global_batch=64), opts)
    t = build_tables(space)
    dp = min_max_partition(model.num_layers, pp, _stage_cost(t, 0, 0, 0, 0, pp))
    enc = enc_mod.build(t)
    for lit in enc.families.values():
        enc.model.add(lit == 1)
    assert enc.vars.max_time_us is not None
    enc.model.minimize(enc.vars.max_time_us)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 20
    status = solver.solve(enc.model)
    if dp is None:
        assert status == cp_model.INFEASIBLE
        return
    assert status == cp_model.OPTIMAL
    assert round(solver.objective_value) == dp.max_cost
    slots = [solver.value(enc.vars.layers[j]) for j in range(pp)][::-1]
    assert sum(slots) == model.num_layers
    cost = _stage_cost(t, 0, 0, 0, 0, pp)
    bounds = [0, *itertools.accumulate(slots)]
    assert max(cost(s, bounds[s], bounds[s + 1]) or float("inf") for s in range(pp)) == dp.max_cost
