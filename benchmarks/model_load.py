"""Time parsing + analysing every zoo model (the path `autoparallel plan` takes before solving).

Run: `uv run python benchmarks/model_load.py [--repeat N]`. Each model is parsed from its zoo card with
caches cleared, then analysed (parameter groups, KV bytes, FLOPs, weight bytes, TP limits 1..64). The
target is well under 50 ms per model; transformers and torch must stay unimported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from autoparallel.models.parse import spec_from_config
from autoparallel.models.spec import ModelSpec
from autoparallel.models.zoo import list_models


def _analyse(spec: ModelSpec) -> None:
    _ = spec.params, spec.active_params
    spec.kv_bytes_per_token_by_kind()
    spec.kv_bytes_per_sequence(8192)
    spec.forward_flops_per_token(8192)
    spec.weight_bytes()
    for tp in range(1, 65):
        spec.tp_violations(tp)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions per model (median reported)")
    args = parser.parse_args()
    start = time.perf_counter()
    entries = list_models()
    index_ms = (time.perf_counter() - start) * 1e3
    rows = []
    for entry in entries:
        parse_ms, analyse_ms = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            spec = spec_from_config(entry.config, name=entry.id)
            t1 = time.perf_counter()
            _analyse(spec)
            t2 = time.perf_counter()
            parse_ms.append((t1 - t0) * 1e3)
            analyse_ms.append((t2 - t1) * 1e3)
        rows.append((entry.id, spec.num_layers, statistics.median(parse_ms), statistics.median(analyse_ms)))
    width = max(len(r[0]) for r in rows)
    print(f"zoo index: {len(entries)} cards read in {index_ms:.1f} ms")
    print(f"{'model':<{width}} {'layers':>6} {'parse ms':>9} {'analyse ms':>11} {'total ms':>9}")
    for name, layers, p, a in rows:
        print(f"{name:<{width}} {layers:>6} {p:>9.2f} {a:>11.2f} {p + a:>9.2f}")
    totals = [p + a for _, _, p, a in rows]
    print(f"median {statistics.median(totals):.2f} ms, max {max(totals):.2f} ms per model (target < 50 ms)")
    heavy = [m for m in ("transformers", "torch") if m in sys.modules]
    print("heavy imports: " + (", ".join(heavy) if heavy else "none"))
    return 0 if max(totals) < 50 and not heavy else 1


if __name__ == "__main__":
    raise SystemExit(main())
