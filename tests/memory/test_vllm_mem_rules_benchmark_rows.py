"""Rows of reference/vllm_logs_dev.csv the sourced vLLM rules fix, and the benchmark's deviation notes."""

from __future__ import annotations

import csv
import importlib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "vllm_logs_dev.csv"


def _bench() -> ModuleType:
    return importlib.import_module("benchmarks.memory_accuracy")


def _rows() -> dict[str, dict[str, str]]:
    with REFERENCE.open(newline="", encoding="utf-8") as handle:
        return {row["row_id"]: row for row in csv.DictReader(handle)}


needs_csv = pytest.mark.skipif(not REFERENCE.is_file(), reason=f"reference data not found at {REFERENCE}")


@needs_csv
@pytest.mark.parametrize(
    ("row_id", "component", "bound"),
    [
        ("V025", "weights", 0.03),  # Gemma 3: the global layers' linear-scaled RoPE cache
        ("V035", "weights", 0.03),
        ("V007", "kv_gib", 0.10),  # 0.9: 1024 sequences on H100 by default
        ("V008", "non_torch", 0.05),  # 0.6.4: the CUDA context counts as non-torch memory
        ("V008", "kv_gib", 0.05),
        ("V025", "cuda_graph", 0.40),  # 0.10: piecewise graphs only, 512-size limit on B200
    ],
)
def test_sourced_rules_bring_rows_inside(row_id: str, component: str, bound: float) -> None:
    result = _bench().evaluate_row(_rows()[row_id])
    assert abs(result.errors[component]) <= bound, result.pairs[component]


def test_a_0_8_row_with_a_profile_split_ran_v0() -> None:
    """V1 logged no activation / non-torch split before PR #19312; a 0.8 row that has one ran V0."""
    bench = _bench()
    row = {"vllm_version": "0.8.5.post1", "activation_peak_gib": "0.28", "non_torch_gib": "0.08"}
    assert bench._version_with_engine(row) == "0.8.5.post1 (V0)"
    assert (
        bench._version_with_engine({**row, "activation_peak_gib": "", "non_torch_gib": ""}) == "0.8.5.post1"
    )
    assert bench._version_with_engine({**row, "vllm_version": "0.19.0"}) == "0.19.0"
    assert bench._version_with_engine({**row, "vllm_version": "0.8.5 (V1)"}) == "0.8.5 (V1)"


def test_deviation_notes_name_the_mechanisms() -> None:
    notes = _bench().KNOWN_DEVIATIONS
    assert "not logged" not in notes["unsloth"] and "Num Sequences = 160" in notes["unsloth"]
    assert "unexplained" not in notes["V025"] and "RoPE" in notes["V025"]
    assert "PR #17885" in notes["V007"]
    assert all("create_lora_weights" in notes[r] for r in ("V098", "V099", "V102", "V104"))
    assert "non-driver rank" in notes["V013"]
