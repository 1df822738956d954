"""Pins benchmarks/training_accuracy.py per published run: which rows are within ±20 % and which fit.

A row leaving the ±20 % band, or a published config predicted not to fit, fails here. Rows known
to miss are listed with the reason; one that starts to pass should move out of the list.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "training_runs_dev.csv"
pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason=f"reference data absent: {REFERENCE}")

KNOWN_OUTSIDE = {
    # DeepSpeed ZeRO-3 of 2021 on 384-1536 A100s collapsed (Narayanan et al. Fig. 10): per-parameter
    # all-gathers whose ring latency grows with the rank count; we model bucketed, prefetched gathers.
    "T012": "ZeRO-3 2021 latency collapse",
    "T014": "ZeRO-3 2021 latency collapse",
    "T016": "ZeRO-3 2021 latency collapse",
    # MPT-13B without recompute at micro-batch 2: llm-foundry runs 20 % below our FSDP model.
    "T126": "MPT-13B micro-batch 2, FSDP",
    "T127": "MPT-13B micro-batch 2, FSDP",
    "T128": "MPT-13B micro-batch 2, FSDP",
    "T129": "MPT-13B micro-batch 2, FSDP",
    "T217": "MPT-760M micro-batch 96 at seq 512 runs slower than at 1024-2048",
    "T275": "MPT-1B on 32 A100-40GB: an outlier among its 8-128 GPU siblings",
    "T045": "NeMo LLAMA2-13B SFT with pp=4 on 8 GPUs",
    # DeepSeek-V3 (PP16, 61 layers + 1 MTP module): with DualPipe's all-to-all overlap -26 % (was -52 %
    # without it). The even split leaves 3 layers + LM head + the MTP module on stage 15, the slowest
    # stage; DeepSeek's own layout is unpublished, and node-limited routing (≤ 4 nodes per token) and
    # FP8 dispatch, which halve its cross-node all-to-all bytes, are not modelled.
    "T028": "DeepSeek-V3: even pipeline split, node-limited FP8 dispatch not modelled",
}
KNOWN_NOT_FITTING = {
    "T028": "DeepSeek-V3: micro-batch unpublished; FP8 activation caching and MLA up-projection recompute",
    # 82.7 GiB with TE's FP8 weight + transpose copies (+2 B/param); NeMo's FP8 parameter gather
    # (no bf16 weight copy) is not modelled.
    "T041": "Nemotron-340B, vp 12: FP8 parameter gather not modelled",
    "T046": "LLAMA2-70B SFT, dp=1: Apex DistributedFusedAdam parameter remainders (not modelled)",
}
SKIPPED = {"T047", "T048", "T049"}  # LoRA


def _bench() -> ModuleType:
    return importlib.import_module("benchmarks.training_accuracy")


@functools.cache
def _results() -> dict[str, object]:
    bench = _bench()
    return {r.row_id: r for r in bench.evaluate(REFERENCE)}


def _row_ids() -> list[str]:
    if not REFERENCE.exists():
        return []
    with REFERENCE.open(newline="", encoding="utf-8") as fh:
        return [row["row_id"] for row in csv.DictReader(fh)]


@pytest.mark.parametrize("row_id", _row_ids())
def test_row(row_id: str) -> None:
    bench = _bench()
    result = _results()[row_id]
    if row_id in SKIPPED:
        assert isinstance(result, bench.Skipped)
        return
    assert isinstance(result, bench.RowResult), result
    within = abs(result.rel_error) <= bench.WITHIN
    if row_id in KNOWN_OUTSIDE:
        assert not within, (
            f"{row_id} now within ±20 % ({result.rel_error:+.1%}): remove it from KNOWN_OUTSIDE"
        )
    else:
        assert within, f"{row_id}: predicted {result.predicted:.3f} vs published {result.published:.3f}"
    if row_id in KNOWN_NOT_FITTING:
        assert not result.fits, f"{row_id} now fits: remove it from KNOWN_NOT_FITTING"
    else:
        assert result.fits, (
            f"{row_id}: predicted peak {result.peak_gib:.1f} GiB > {result.memory_gib:.1f} GiB"
        )


def test_summary() -> None:
    bench = _bench()
    done = [r for r in _results().values() if isinstance(r, bench.RowResult)]
    errors = sorted(abs(r.rel_error) for r in done)
    assert len(done) >= 190
    assert sum(e <= bench.WITHIN for e in errors) / len(done) >= 0.94
    assert errors[len(errors) // 2] <= 0.06  # median |error|
