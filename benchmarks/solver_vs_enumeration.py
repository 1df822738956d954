"""CP-SAT vs enumeration on growing serving spaces: time to the optimum, and the optimum itself.

    uv run python benchmarks/solver_vs_enumeration.py [--oracle-limit POINTS] [--workers N]

Three ways to the same optimum, on the same space and float cost model:

- cp-sat:     integer tables (serving/space.py) + the CP-SAT model (serving/encoder.py) + decode;
- table scan: the same integer tables, then a plain Python loop over (tuple, utilization) with the
              dominant replica count: what CP-SAT is given, searched by hand;
- brute force: the oracle (solvers/enumerate.py): every configuration, replica counts included,
              evaluated by the float model. Skipped above --oracle-limit points (the count shown).

Rows grow from 8 GPUs to 1024, dense to large MoE, with the optional knobs (FP8 weights and KV
cache, three memory utilizations, two max_model_len values) off and on. The honest reading: the
tables dominate CP-SAT's time and a loop over them is faster still on every row here, because the
serving space factorizes (replicas and utilization never multiply the float evaluations). Brute
force over whole configurations is what explodes with the GPU count; CP-SAT's value is the same
model carrying constraint families, explanations, lexicographic and Pareto queries.
"""

from __future__ import annotations

import argparse
import time

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.oracle.serving import enumerate_serving
from autoparallel.solvers.serving.encoder import candidate_entries, replica_cap
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import ServingOptions, ServingSpace, build_space
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

PLAIN = ServingOptions()
KNOBS = ServingOptions(
    kv_cache_dtypes=("auto", "fp8"),
    quantizations=(None, "fp8"),
    gpu_memory_utilizations=(0.85, 0.92, 0.95),
    max_model_lens=(2048, 8192),
)
ROWS = (
    ("meta-llama/Llama-3.1-8B", "1x8xH100", "plain"),
    ("meta-llama/Llama-3.1-70B", "1x8xH100", "plain"),
    ("meta-llama/Llama-3.1-70B", "1x8xH100", "knobs"),
    ("Qwen/Qwen3-30B-A3B", "2x8xH100", "plain"),
    ("meta-llama/Llama-3.1-70B", "4x8xH100", "plain"),
    ("deepseek-ai/DeepSeek-V3", "4x8xH200", "plain"),
    ("deepseek-ai/DeepSeek-V3", "4x8xH200", "knobs"),
    ("meta-llama/Llama-3.1-8B", "16x8xH100", "plain"),
    ("meta-llama/Llama-3.1-70B", "32x8xH100", "knobs"),
    ("deepseek-ai/DeepSeek-V3", "16x8xH200", "plain"),
    ("meta-llama/Llama-3.1-8B", "128x8xH100", "plain"),
    ("moonshotai/Kimi-K2-Instruct", "128x8xH200", "plain"),
)


def points(space: ServingSpace) -> int:
    """Configurations brute force evaluates: valid shapes × replica counts × the other knobs."""
    per_shape = sum((1 if s.ep else s.max_replicas) for s in space.shapes if not s.violations)
    return (
        per_shape
        * len(space.runtimes)
        * len(space.batches)
        * len(space.utilizations)
        * len(space.max_model_lens)
    )


def table_scan(space: ServingSpace) -> float:
    """Best total output tokens/s over the integer tables by a plain loop (throughput objective)."""
    t, w = space.tables, space.workload
    best = -1
    for i in candidate_entries(space):
        if w.tpot_ms is not None and t.step_us[i] > w.tpot_ms * 1000:
            continue
        if w.ttft_ms is not None and t.ttft_us[i] > w.ttft_ms * 1000:
            continue
        if any(t.mem_used_kib[i] <= b and t.mml_used_kib[i] <= b for b in space.budget_kib):
            best = max(best, t.tps_milli[i] * replica_cap(space, i))
    return best / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracle-limit", type=int, default=60_000, help="largest space brute force runs")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    settings = SolverSettings(workers=args.workers, seed=0)
    workload = Serving.preset("chatbot")
    print(
        f"{'model':30s} {'cluster':11s} {'knobs':5s} {'tuples':>6s} {'points':>10s} | {'tables':>7s} "
        f"{'cp-sat':>7s} {'scan':>6s} {'brute':>8s} {'brute/cp':>8s} | {'tok/s cp-sat':>12s} "
        f"{'tok/s brute':>12s}"
    )
    per_point: list[float] = []
    for model_id, cluster_spec, kind in ROWS:
        model, cluster = load_model(model_id), Cluster.parse(cluster_spec)
        options = KNOBS if kind == "knobs" else PLAIN
        t0 = time.perf_counter()
        space = build_space(model, cluster, workload, options)
        t_tables = time.perf_counter() - t0
        t0 = time.perf_counter()
        scan = table_scan(space)
        t_scan = time.perf_counter() - t0 + t_tables
        t0 = time.perf_counter()
        sol = solve_serving(model, cluster, workload, options=options, settings=settings, runner_up=False)
        t_cp = time.perf_counter() - t0
        n = points(space)
        brute, t_brute = "", ""
        ratio = ""
        if n <= args.oracle_limit:
            res = enumerate_serving(
                model, cluster, workload, objective=("throughput", "tpot"), options=options
            )
            brute = f"{res.objective_value:12.0f}" if res.objective_value is not None else f"{'none':>12s}"
            t_brute = f"{res.wall_s:7.2f}s"
            ratio = f"{res.wall_s / t_cp:7.1f}x"
            per_point.append(res.wall_s / n)
        else:
            estimate = n * (sum(per_point) / len(per_point)) if per_point else float("nan")
            brute, t_brute, ratio = f"{'(skipped)':>12s}", f"~{estimate:6.0f}s", f"~{estimate / t_cp:6.0f}x"
        tuples = len(candidate_entries(space))
        print(
            f"{model_id.split('/')[1][:30]:30s} {cluster_spec:11s} {kind:5s} {tuples:6d} {n:10d} | "
            f"{t_tables:6.2f}s {t_cp:6.2f}s {t_scan:5.2f}s {t_brute:>8s} {ratio:>8s} | "
            f"{sol.objective_value:12.0f} {brute} (scan {scan:.0f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
