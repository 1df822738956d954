"""One Triton block-FP8 fused-MoE rate for vLLM and SGLang on Hopper: what each would do to the rows.

    uv run python benchmarks/triton_moe_rate.py [--csv PATH]

SGLang's block-FP8 experts are charged at `TRITON_BLOCK_FP8_FRACTION` (read off a dense Triton GEMM
benchmark); vLLM's at `moe_flops_fraction`, though vLLM runs the same Triton kernel family at TP 8
(see that constant's docstring). This sets both engines' `block_fp8_moe_flops_fraction` on Hopper to
each rate of `RATES` and prints, per rate: vLLM's fit rows' TPOT (within 20 %, ratio range), SGLang's
checked rows' TPOT, and the ratio range of the prompt-heavy vLLM fixed-length checks' TPOT
(benchmarks/fixed_length_checks.py, prompts of 2,000 tokens and more). It chooses nothing: it is the
evidence that the two engines' rows want different rates for one kernel.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from benchmarks import fixed_length_checks
from benchmarks.serving_accuracy import DEFAULT_CSV, Result, evaluate_csv
from benchmarks.serving_fit import _factors

RATES = (0.20, 0.30, 0.45)
"""Fractions of the FP8 dense peak tried: the dense Triton kernel's read-off 0.20, vLLM's MoE 0.45."""


def _tpot(results: list[Result], engine: str, split: str) -> str:
    ratios = [r.ratio for r in results if r.engine == engine and r.split == split and r.what == "TPOT ms"]
    within = sum(abs(x - 1) <= 0.2 for x in ratios)
    return f"{within}/{len(ratios)} within 20% ({min(ratios):.2f}-{max(ratios):.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args(argv)
    if not args.csv.exists():
        print(f"reference data not found: {args.csv}", file=sys.stderr)
        return 1
    print("rate   vLLM fit TPOT              SGLang checked TPOT         vLLM prompt-heavy fixed TPOT")
    for rate in RATES:
        with contextlib.ExitStack() as stack:
            for engine in ("vllm", "sglang"):
                stack.enter_context(_factors(engine, "hopper", block_fp8_moe_flops_fraction=rate))
            results, _ = evaluate_csv(args.csv)
            fixed = [
                fixed_length_checks.predict(run).mean_tpot_ms / run.tpot_ms
                for run in fixed_length_checks.RUNS
                if run.engine == "vllm" and run.isl >= 2000  # the prompt-heavy runs
            ]
        print(
            f"{rate:.2f}   {_tpot(results, 'vllm', 'fit'):26s} {_tpot(results, 'sglang', 'checked'):27s} "
            f"{min(fixed):.2f}-{max(fixed):.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
