"""DeepSeek-V3.2 bursts on 8×H200: the medians and the peak rate the published runs print, checked.

    uv run python benchmarks/burst_shape_checks.py [--csv PATH]

The reference rows I201-I219 (inference_benchmarks_dev.csv) carry the means of each `vllm bench serve`
run that gpustack's performance page for DeepSeek-V3.2 on H200 prints (github.com/gpustack/gpustack,
docs/performance-lab/deepseek-v3.2/h200.md, the line each row's `source_url` names). The same blocks
also print the median TTFT, TPOT and ITL and the peak output tokens/s (the most output tokens in one
second); those are not in the CSV and nothing was fitted to them. They are below, and each row is
replayed as `benchmarks/serving_accuracy.py` replays it (its `predict`).

What they tell apart: the mean ITL mixes the decode step with stalls behind prompt work; the median
ITL is the typical decode step of the run, and the peak rate is the fullest decode steps (about one
token per running request per step). Prints predicted / measured for each.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root

from autoparallel.perf.serving_load import BenchmarkRun
from benchmarks import serving_accuracy

PUBLISHED = {
    "I201": (6009.0, 12849.39, 171.63, 81.97),
    "I202": (7949.0, 11240.35, 672.86, 64.46),
    "I203": (4212.0, 66076.17, 608.74, 141.56),
    "I204": (10222.0, 10233.68, 115.72, 74.61),
    "I206": (6010.0, 10762.25, 188.99, 83.88),
    "I207": (6095.0, 13557.38, 176.29, 82.69),
    "I208": (6293.0, 10296.60, 223.35, 78.13),
    "I209": (8911.0, 12663.74, 398.19, 59.95),
    "I210": (11298.0, 8024.81, 107.58, 58.87),
    "I211": (11757.0, 8346.50, 111.65, 56.54),
    "I213": (13083.0, 6815.18, 95.20, 53.51),
    "I214": (12798.0, 5448.81, 87.57, 54.16),
    "I215": (12674.0, 5289.41, 92.04, 58.50),
    "I216": (13860.0, 5145.47, 85.23, 53.86),
    "I217": (8352.0, 4727.17, 128.33, 91.44),
    "I218": (4635.0, 23945.42, 312.75, 142.18),
    "I219": (4661.0, 23100.28, 264.04, 137.80),
}
"""Row id: (peak output tokens/s, median TTFT ms, median TPOT ms, median ITL ms), as the page prints
them for that row's run (the speculative-decoding runs, I205 and I212, are not replayed)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=serving_accuracy.DEFAULT_CSV)
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"reference CSV not found: {args.csv}", file=sys.stderr)
        return 2
    rows = {r["row_id"]: r for r in csv.DictReader(args.csv.open())}
    print("row   engine  layout          peak tok/s  median TTFT  median TPOT  median ITL")
    for rid, (peak, ttft, tpot, itl) in PUBLISHED.items():
        row, runs = rows[rid], []

        def keep(run: BenchmarkRun, runs: list[BenchmarkRun] = runs) -> None:
            runs.append(run)

        serving_accuracy.predict(row, on_run=keep)
        run = runs[0]
        flags = (" ep" if row["ep"] else "") + (" dpa" if row["dp_attention"] else "")
        layout = f"tp{row['tp']} dp{row['dp'] or 1}{flags}"
        ratios = (
            run.peak_output_tokens_per_s / peak,
            run.median_ttft_ms / ttft,
            run.median_tpot_ms / tpot,
            run.median_itl_ms / itl,
        )
        engine = serving_accuracy.engine_of(row)
        print(f"{rid}  {engine:<7} {layout:<15} " + "  ".join(f"{r:11.2f}" for r in ratios))
    print("(predicted / measured; dpa: attention data parallelism)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
