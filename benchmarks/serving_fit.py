"""The grids that chose the serving model's fitted constants, over each engine's fit rows only.

    uv run python benchmarks/serving_fit.py [--csv PATH]

Fit rows are the ones named in the `source` of an engine's factors (`serving_accuracy.fit_rows`); no
checked row is read. Three grids, each printing every candidate's share within 20 %, median |error| and
geometric-mean ratio of output tokens/s on those rows, so the choice in perf/serving_efficiency.py can
be re-derived:

- TensorRT-LLM on Hopper (the FP8 Llama-3.1-8B rows): `flops_fraction` (the weights' GEMMs) ×
  `attention_hbm_fraction` (decode attention), weight streaming kept at vLLM's `hbm_fraction`.
- TensorRT-LLM on Blackwell (the NVFP4 Llama-3.1-405B rows): `fp4_gemm_scale` alone, the other
  factors Hopper's.
- vLLM: `moe_expert_overhead_s` (cost per layer and touched expert of the fused-MoE kernels).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autoparallel.memo import clear_memos
from autoparallel.perf import serving_efficiency as se
from benchmarks.serving_accuracy import DEFAULT_CSV, engine_of, fit_rows, predict

TRTLLM_GRID = {
    "flops_fraction": (0.45, 0.5, 0.55, 0.6, 0.65),
    "attention_hbm_fraction": (0.75, 0.8, 0.85, 0.9),
}
TRTLLM_BLACKWELL_GRID = {"fp4_gemm_scale": (0.5, 0.55, 0.575, 0.6, 0.625, 0.65, 0.7, 0.8, 0.9, 1.0)}
VLLM_GRID = {"moe_expert_overhead_s": (0.0, 1e-6, 2e-6, 3e-6, 4e-6, 5e-6)}
FITS = (
    ("trtllm", "hopper", TRTLLM_GRID),
    ("trtllm", "blackwell", TRTLLM_BLACKWELL_GRID),
    ("vllm", "hopper", VLLM_GRID),
)
"""(engine, GPU architecture, grid): each grid varies that architecture's factors over its fit rows."""


@contextmanager
def _factors(engine: str, arch: str, **update: float) -> Iterator[None]:
    """`engine`'s factors on GPU architecture `arch` with `update`, restored afterwards."""
    saved = se.ENGINE_EFFICIENCY[engine]
    se.ENGINE_EFFICIENCY[engine] = {**saved, arch: saved[arch].model_copy(update=update)}
    clear_memos()  # every memoized step, prompt and per-shape constant was priced at the old factors
    try:
        yield
    finally:
        se.ENGINE_EFFICIENCY[engine] = saved
        clear_memos()


def _score(rows: list[dict[str, str]]) -> str:
    ratios = [r.ratio for row in rows for r in predict(row) if r.what == "output tok/s"]
    errs = [abs(x - 1) for x in ratios]
    geo = math.exp(statistics.fmean(math.log(x) for x in ratios))
    within = sum(e <= 0.2 for e in errs)
    return f"within 20% {within}/{len(errs)}, median |err| {statistics.median(errs):.1%}, geo {geo:.3f}"


def grid(engine: str, arch: str, axes: dict[str, tuple[float, ...]], rows: list[dict[str, str]]) -> None:
    print(f"{engine} on {arch}: {len(rows)} fit rows ({', '.join(r['row_id'] for r in rows)})")
    for values in itertools.product(*axes.values()):
        update = dict(zip(axes, values, strict=True))
        with _factors(engine, arch, **update):
            print("  " + ", ".join(f"{k} {v:g}" for k, v in update.items()) + ": " + _score(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args(argv)
    if not args.csv.exists():
        print(f"reference data not found: {args.csv}", file=sys.stderr)
        return 1
    with args.csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for engine, arch, axes in FITS:
        mine = fit_rows(engine, arch)
        grid(engine, arch, axes, [r for r in rows if r["row_id"] in mine and engine_of(r) == engine])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
