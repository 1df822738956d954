"""Pins where the training planner's optimum ranks published layouts (benchmarks/training_accuracy.py).

For each pinned run the planner must accept the published layout (its rules and the default memory
margins) and, solving the same job on the same GPUs, find a plan at least as fast under the float
model: published / optimum ≤ 1 up to the solver's µs rounding.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from autoparallel.configs import ZeroStage

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference"
RUNS = REFERENCE / "training_runs_dev.csv"
pytestmark = pytest.mark.skipif(not RUNS.exists(), reason=f"reference data absent: {RUNS}")

# Published layouts inside the planner's default space that it accepts under MemoryConfig(); each
# solves to OPTIMAL in well under a second.
PINNED = {
    "T001": "Megatron GPT 1.7B on 32 A100 (Narayanan et al. 2021): dp only, full recompute",
    "T036": "NeMo LLAMA2-7B on 8 H100, FP8: distributed optimizer, selective recompute",
    "T111": "llm-foundry MPT-3B on 128 H100: FSDP SHARD_GRAD_OP, micro-batch 8",
    "T302": "llm-foundry MPT-125M at 32k tokens on 8 A100-40GB: the optimum ties the published layout",
}


def _bench() -> ModuleType:
    return importlib.import_module("benchmarks.training_accuracy")


@functools.cache
def _rows() -> dict[str, dict[str, str]]:
    with RUNS.open(newline="", encoding="utf-8") as fh:
        return {row["row_id"]: row for row in csv.DictReader(fh)}


@pytest.mark.parametrize("row_id", sorted(PINNED))
def test_optimum_at_least_as_fast_as_published(row_id: str) -> None:
    bench = _bench()
    result = bench.rank_row(_rows()[row_id])
    assert isinstance(result, bench.RankResult), result
    assert result.accepted, f"{row_id}: the planner rejects the published layout: {result.blockers}"
    assert result.status == "OPTIMAL", f"{row_id}: {result.status} {result.note}"
    assert result.ratio is not None
    assert result.ratio <= 1.0 + bench.ROUNDING, (
        f"{row_id}: published {bench.config_label(result.published)} predicts "
        f"{result.published_tps:.0f} tokens/s/GPU, faster than the optimum "
        f"{bench.config_label(result.solver)} at {result.solver_tps:.0f}"
    )


def _case(row_id: str) -> tuple[object, object, object]:
    bench = _bench()
    row = _rows()[row_id]
    cluster = bench.cluster_for(row)
    return bench.model_for(row), cluster, bench.build_config(row, cluster)


def test_memory_margins_reject_a_published_layout() -> None:
    """LLAMA3-8B with cp=2 on 8 H100 (NeMo) fits the GPU and the training margins, but not the general
    MemoryConfig() defaults (0.85 / 0.10 / 0.05): memory is the only blocker."""
    from autoparallel.memory.margins import MemoryConfig

    bench = _bench()
    model, cluster, cfg = _case("T042")
    general = MemoryConfig()
    assert [family for family, _ in bench.planner_blockers(model, cluster, cfg, general)] == ["memory"]
    assert bench.planner_blockers(model, cluster, cfg) == ()
    assert bench.planner_blockers(model, cluster, cfg, bench.RAW) == ()


def test_other_planner_rules_are_named() -> None:
    """ZeRO-3 with a pipeline and a micro-batch × dp that does not divide the batch are their own families."""
    bench = _bench()
    model, cluster, cfg = _case("T036")
    zero3_pp = cfg.model_copy(update={"zero": ZeroStage.PARAMETERS, "pp": 2, "dp": cfg.dp // 2})
    families = {family for family, _ in bench.planner_blockers(model, cluster, zero3_pp, bench.RAW)}
    assert families == {"zero_pipeline"}
    odd = cfg.model_copy(update={"micro_batch": 3})
    families = {family for family, _ in bench.planner_blockers(model, cluster, odd, bench.RAW)}
    assert "global_batch" in families
