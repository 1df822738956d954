"""Fit the training model's efficiency constants on the `fit` rows only, and report fit and check rows.

The constants (perf/efficiency.py `EFFICIENCY`: per generation `gemm`, `gemm_fp8`, `attention`; the shared
`elementwise_bytes_per_h`; perf/training_layer.py `TP_COMM_EXPOSED`) are fitted by a robust least-squares
fit of log(predicted / published) (Cauchy loss, scale 10 %, so the 2021 ZeRO-3 collapse rows do not drag
the fit) over the rows `benchmarks.training_accuracy.split_of` marks `fit`. Rows marked `check` (every
row of a kept-aside source, and one in CHECK_EVERY of the rest by hash of the row id) are never seen by
the fit; they are reported beside it. Everything else in the model (FP8 memory, MoE grouped GEMMs,
attention shape and kernel factors, communication) is a mechanism with a named source, not fitted.

The search is a coordinate descent on multiplicative steps (no SciPy): deterministic, ~1 min.

Usage: uv run python benchmarks/training_fit.py [CSV]
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from autoparallel.perf import efficiency as eff_mod
from autoparallel.perf import training_layer
from benchmarks.training_accuracy import (
    REFERENCE,
    RowResult,
    accuracy_line,
    evaluate,
    load_rows,
    split_of,
)

SCALE = 0.10
"""Cauchy loss scale on log error: errors well past 10 % count logarithmically, not quadratically."""

Param = tuple[str, Callable[[], float], Callable[[float], None]]


def _eff_param(arch: str, field: str) -> Param:
    def get() -> float:
        return float(getattr(eff_mod.EFFICIENCY[arch], field))

    def put(value: float) -> None:
        eff_mod.EFFICIENCY[arch] = eff_mod.EFFICIENCY[arch].model_copy(update={field: value})

    return f"{arch}.{field}", get, put


def _shared_elementwise() -> Param:
    def get() -> float:
        return float(eff_mod.EFFICIENCY["hopper"].elementwise_bytes_per_h)

    def put(value: float) -> None:
        for arch in list(eff_mod.EFFICIENCY):
            eff_mod.EFFICIENCY[arch] = eff_mod.EFFICIENCY[arch].model_copy(
                update={"elementwise_bytes_per_h": value}
            )

    return "elementwise_bytes_per_h", get, put


def _tp_exposed() -> Param:
    def get() -> float:
        return float(training_layer.TP_COMM_EXPOSED)

    def put(value: float) -> None:
        training_layer.TP_COMM_EXPOSED = value

    return "TP_COMM_EXPOSED", get, put


def parameters() -> list[Param]:
    """The fitted constants."""
    return [
        _eff_param("ampere", "gemm"),
        _eff_param("ampere", "attention"),
        _eff_param("hopper", "gemm"),
        _eff_param("hopper", "gemm_fp8"),
        _eff_param("hopper", "attention"),
        _shared_elementwise(),
        _tp_exposed(),
    ]


def loss(results: Sequence[RowResult]) -> float:
    """Σ log(1 + (log(pred / pub) / SCALE)²)."""
    return sum(math.log1p((math.log(r.predicted / r.published) / SCALE) ** 2) for r in results)


def _evaluate(rows: Sequence[dict[str, str]]) -> list[RowResult]:
    return [r for r in evaluate(REFERENCE, rows, memory=False) if isinstance(r, RowResult)]


def fit(rows: Sequence[dict[str, str]], rounds: int = 4) -> float:
    """Coordinate descent on `parameters()` over `rows`; leaves the fitted values in place."""
    best = loss(_evaluate(rows))
    for step in (0.2, 0.1, 0.05, 0.02)[:rounds]:
        improved = True
        while improved:
            improved = False
            for _, get, put in parameters():
                for factor in (1.0 + step, 1.0 / (1.0 + step)):
                    old = get()
                    put(old * factor)
                    trial = loss(_evaluate(rows))
                    if trial < best - 1e-9:
                        best, improved = trial, True
                    else:
                        put(old)
    return best


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else REFERENCE
    start = time.perf_counter()
    rows = load_rows(path)
    fit_rows = [row for row in rows if split_of(row) == "fit"]
    before = _evaluate(rows)
    print(f"rows: {len(rows)}; fit {len(fit_rows)}, check {len(rows) - len(fit_rows)} (split_of)")
    print("shipped constants: " + ", ".join(f"{name} {get():.4g}" for name, get, _ in parameters()))
    for part in ("fit", "check"):
        print(f"  {part:5}: {accuracy_line([r for r in before if r.split == part])}")
    fitted = fit(fit_rows)
    after = _evaluate(rows)
    values = ", ".join(f"{name} {get():.4g}" for name, get, _ in parameters())
    print(f"fitted on the fit rows (loss {fitted:.2f}): {values}")
    for part in ("fit", "check"):
        print(f"  {part:5}: {accuracy_line([r for r in after if r.split == part])}")
    print(f"run time: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
