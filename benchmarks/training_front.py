"""The training front of step time and peak memory: by triples vs one CP-SAT model per query.

    uv run python benchmarks/training_front.py            # both methods (~3 minutes)
    uv run python benchmarks/training_front.py --quick    # the triples only
    uv run python benchmarks/training_front.py --window   # the triples with and without the window

`pareto --train`'s default front (throughput vs headroom) is computed by `solvers/training/front.py`:
each query is the least of the (shape, micro-batch, ZeRO mode) triples' own optima under the memory
cap, the triples re-bounded at the cap and solved only while first in line. The one-model queries
(`solvers/pareto.py::_model_queries`) ask the same question of one CP-SAT model over the whole space.
Both start from the same tables and bounds (not timed); the columns are the front's points, each
method's seconds and CP-SAT calls, and whether the two fronts are the same vectors in the same order.
One run each, on whatever machine runs it: the ratio is the figure to quote.

`--window` times the triples with their window (`front.WINDOW_PERMILLE`: each solve first looks just
above the triple's key) against the same without it, on models of many layers of two kinds over eight
or more stages, whose sub-solves are the slowest; the columns are the same but the second method is
the triples without the window.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers import driver
from autoparallel.solvers.pareto import Front, _front, _model_queries
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.encoder import build
from autoparallel.solvers.training.front import OBJECTIVES, TripleFront
from autoparallel.solvers.training.points import Point
from autoparallel.solvers.training.solve import prepare
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.solvers.training.tables import build_tables
from autoparallel.workload import Training

CASES = [
    # model, cluster, seq_len, global batch
    ("Qwen/Qwen3-30B-A3B", "2x8xH100", 4096, 256),
    ("deepseek-ai/DeepSeek-V3", "32x8xH100", 4096, 1024),
]
WINDOW_CASES = [
    ("google/gemma-2-9b", "64x8xH100", 4096, 256),  # 42 layers, sliding and global attention
    ("google/gemma-3-12b-it", "64x8xH100", 4096, 256),  # 48 layers, five sliding to one global
    ("meta-llama/Llama-3.1-70B", "64x8xH100", 4096, 256),  # 80 layers of one kind
]


def _keep(point: Point, run: driver.Run) -> Point:
    return point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="the triples only")
    group.add_argument("--window", action="store_true", help="the triples with and without the window")
    args = parser.parse_args()
    settings = SolverSettings()
    options = TrainingOptions(per_stage_recompute=True, runner_up=False)  # the space the docs quote
    other = "no window s" if args.window else "model s"
    head = f"{'case':42} {'points':>6} {'triples s':>9} {'calls':>5}"
    print(head + ("" if args.quick else f" {other:>8} {'calls':>5} {'ratio':>6}  same"))
    for model, cluster, seq, batch in WINDOW_CASES if args.window else CASES:
        w = Training(seq_len=seq, global_batch=batch)
        t = build_tables(build_space(load_model(model), Cluster.parse(cluster), w, options))
        bounds, hint = prepare(t, options)
        fronts = []
        for method in ("triples", "no window" if args.window else "model")[: 1 if args.quick else 2]:
            front: Front[Point] = Front(objectives=OBJECTIVES)
            if method == "triples":
                query = TripleFront(t, bounds, settings).next
            elif method == "no window":
                query = TripleFront(t, bounds, settings, window_permille=None).next
            else:
                query = _model_queries(front, partial(build, t, bounds), settings, hint)
            start = time.perf_counter()
            _front(front, query, _keep)
            fronts.append((time.perf_counter() - start, front))
        (fast_s, fast), *rest = fronts
        name = f"{model} {cluster} gb{batch}"
        cells = f"{name:42} {len(fast):6d} {fast_s:9.1f} {fast.solves:5d}"
        if rest:
            slow_s, slow = rest[0]
            same = slow.vectors == fast.vectors and slow.complete == fast.complete
            cells += f" {slow_s:8.1f} {slow.solves:5d} {slow_s / fast_s:6.1f}  {same}"
        print(cells, flush=True)


if __name__ == "__main__":
    main()
