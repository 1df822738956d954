"""CP-SAT training planner vs brute-force enumeration, on growing spaces.

    uv run python benchmarks/training_solver.py            # the full table (~5 minutes)
    uv run python benchmarks/training_solver.py --quick    # the three smallest rows
    uv run python benchmarks/training_solver.py --scale    # the default solve at scale, phase by phase

For each case, both sides search the UNIFORM-stage space (Megatron's even split, one recompute mode
for all stages), where the enumeration oracle is exact: `points` is that space's size (shape ×
micro-batch × ZeRO/offload × recompute). `cpsat_s` is solve_training's whole time (tables, bounds,
hint, CP-SAT, float re-check; ortools already imported), `enum_s` the enumeration's, and `table_s` a
plain Python search over the solver's integer tables (pruned by the same lower bounds, no CP-SAT):
on the uniform space that pruned loop is already exact and fast, and CP-SAT mostly proves it. `free` is the
CP-SAT time with free stage sizes and per-stage recompute on, whose space no enumeration can cover:
`free_points` counts the layer compositions × recompute modes per stage that it implies. Both sides
must agree on the uniform optimum (`same`).

`--scale` runs solve_training with default settings (10 s limit, runner-up on, seq 4096, global batch
1024) on the large MoE cases, and splits each call's wall time into its phases: `tables` (integer
tables from the float model), `bounds` (lower bounds per triple and the warm starts), `cpsat` (the
decomposition's sub-models: building and solving), `decode` (the float re-check) and `runner`.
`solves` counts the CP-SAT calls (one per triple left after pruning, each cut at the incumbent's step
time). The whole call must stay within the time limit + 1 s, and `status` is CP-SAT's: OPTIMAL only
when proven.
"""

from __future__ import annotations

import argparse
import math
import os
import time

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.oracle.training import enumerate_training
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.hints import best_uniform_point
from autoparallel.solvers.training.points import point_bounds
from autoparallel.solvers.training.solve import solve_training
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.solvers.training.tables import build_tables
from autoparallel.workload import Training

CASES = [
    # model, cluster, seq_len, global batch
    ("meta-llama/Llama-3.2-1B", "1x8xH100", 4096, 64),
    ("meta-llama/Llama-3.1-8B", "2x8xH100", 8192, 128),
    ("Qwen/Qwen3-30B-A3B", "4x8xH100", 4096, 256),
    ("meta-llama/Llama-3.1-70B", "8x8xH100", 8192, 512),
    ("mistralai/Mixtral-8x7B-v0.1", "8x8xH100", 4096, 512),
    ("meta-llama/Llama-3.1-405B", "32x8xH100", 8192, 1024),
    ("deepseek-ai/DeepSeek-V3", "256x8xH100", 4096, 15360),
]
SCALE = [
    # model, cluster, offload (DeepSeek-V3 fits 16 nodes only with its optimizer states offloaded)
    ("deepseek-ai/DeepSeek-V3", "16x8xH100", True),
    ("deepseek-ai/DeepSeek-V3", "64x8xH100", False),
    ("deepseek-ai/DeepSeek-V3", "256x8xH100", False),
    ("moonshotai/Kimi-K2-Instruct", "256x8xH100", False),
]
SETTINGS = SolverSettings(time_limit_s=60.0, workers=1, seed=0)
UNIFORM = TrainingOptions(non_uniform_stages=False, per_stage_recompute=False, runner_up=False)
FREE = TrainingOptions(per_stage_recompute=True, runner_up=False)


def _free_points(name: str, cluster: str, seq: int, batch: int) -> float:
    """Points of the free space: Σ over shapes of micro × state × C(L − 1, pp − 1) · modes^pp."""
    space = build_space(
        load_model(name), Cluster.parse(cluster), Training(seq_len=seq, global_batch=batch), FREE
    )
    per = len(space.micro_batches) * len(space.state_modes)
    modes = len(space.recompute_modes)
    return float(sum(per * math.comb(space.num_layers - 1, s.pp - 1) * modes**s.pp for s in space.shapes))


def run(cases: list[tuple[str, str, int, int]]) -> list[dict[str, object]]:
    solve_training(
        load_model(cases[0][0]), Cluster.parse(cases[0][1]), Training(), options=UNIFORM
    )  # warm-up
    rows = []
    for name, cluster_spec, seq, batch in cases:
        model, cluster = load_model(name), Cluster.parse(cluster_spec)
        workload = Training(seq_len=seq, global_batch=batch)
        space = build_space(model, cluster, workload, UNIFORM)
        points = (
            len(space.shapes) * len(space.micro_batches) * len(space.state_modes) * len(space.recompute_modes)
        )
        start = time.perf_counter()
        sol = solve_training(model, cluster, workload, settings=SETTINGS, options=UNIFORM)
        cpsat_s = time.perf_counter() - start
        start = time.perf_counter()
        oracle = enumerate_training(model, cluster, workload, options=UNIFORM)
        enum_s = time.perf_counter() - start
        start = time.perf_counter()
        tables = build_tables(space)
        best_uniform_point(tables, point_bounds(tables, refine_below=0), per_stage=False)
        table_s = time.perf_counter() - start
        start = time.perf_counter()
        free = solve_training(model, cluster, workload, settings=SETTINGS, options=FREE)
        free_s = time.perf_counter() - start
        rows.append(
            {
                "case": f"{name.split('/')[-1]} {cluster_spec}",
                "points": points,
                "cpsat_s": cpsat_s,
                "cpsat_solve_s": sol.stats.wall_s,
                "enum_s": enum_s,
                "enum/cpsat": enum_s / cpsat_s,
                "table_s": table_s,
                "same": abs(sol.perf.step_time_s / oracle.perf.step_time_s - 1) < 1e-5,
                "free_s": free_s,
                "free_status": free.stats.status,
                "free_points": _free_points(name, cluster_spec, seq, batch),
                "free_gain": 1 - free.perf.step_time_s / sol.perf.step_time_s,
            }
        )
        print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict[str, object]) -> str:
    same = "yes" if r["same"] else "NO"
    gain = 100 * float(r["free_gain"])  # type: ignore[arg-type]
    return (
        f"| {r['case']:<30} | {r['points']:>6} | {r['cpsat_s']:>7.2f} | {r['cpsat_solve_s']:>6.2f} | "
        f"{r['enum_s']:>7.2f} | {r['enum/cpsat']:>6.1f}x | {r['table_s']:>7.2f} | {same:>4} | "
        f"{r['free_s']:>6.2f} {r['free_status']:<8} | {r['free_points']:>9.2e} | {gain:>5.1f}% |"
    )


def run_scale(global_batch: int) -> list[dict[str, object]]:
    """The default solve of each SCALE case, its status and gap, and the seconds of each phase."""
    solve_training(load_model("meta-llama/Llama-3.2-1B"), Cluster.parse("1x8xH100"), Training())  # warm-up
    print(f"load: {os.getloadavg()[0]:.2f} (1-minute average, {os.cpu_count()} CPUs)")
    print(
        "| case                            | status   | gap   | wall_s | tables | bounds | cpsat  | decode | "
        "runner | solves | step_s  |"
    )
    print("|" + "---|" * 11)
    rows = []
    for name, spec, offload in SCALE:
        phases: dict[str, float] = {}
        start = time.perf_counter()
        sol = solve_training(
            load_model(name),
            Cluster.parse(spec),
            Training(seq_len=4096, global_batch=global_batch),
            options=TrainingOptions(offload=offload),
            timings=phases,
        )
        wall = time.perf_counter() - start
        row: dict[str, object] = {
            "case": f"{name.split('/')[-1]} {spec}{' offload' if offload else ''}",
            "status": sol.stats.status,
            "gap": sol.stats.gap,
            "wall_s": wall,
            **phases,
            "solves": sol.stats.solves,
            "step_s": sol.perf.step_time_s,
        }
        rows.append(row)
        print(
            f"| {row['case']:<32} | {sol.stats.status:<8} | {100 * sol.stats.gap:4.1f}% | {wall:6.2f} | "
            + " | ".join(
                f"{phases.get(k, 0.0):6.2f}"
                for k in ("tables", "bounds_hints", "cpsat", "decode", "runner_up")
            )
            + f" | {sol.stats.solves:6d} | {sol.perf.step_time_s:7.3f} |",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the three smallest cases")
    parser.add_argument("--scale", action="store_true", help="the default solve of the large MoE cases")
    parser.add_argument("--global-batch", type=int, default=1024, help="--scale: sequences per step")
    args = parser.parse_args()
    if args.scale:
        run_scale(args.global_batch)
        return
    print(
        "| case                           | points | cpsat_s | solve  |  enum_s | enum/cp | table_s | same | "
        "free_s (status) | free pts  | gain  |"
    )
    print("|" + "---|" * 11)
    run(CASES[:3] if args.quick else CASES)


if __name__ == "__main__":
    main()
