"""Fronts as tables and plots: the written Parquet / CSV and PNG hold what the front holds."""

from __future__ import annotations

from pathlib import Path

import pytest

import autoparallel as ap
from autoparallel.errors import InputError
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.sweeps.front import Front

OPTIONS = ServingOptions(max_num_seqs=(1, 4, 16, 64, 256))


@pytest.fixture(scope="module")
def front3() -> Front:
    return ap.pareto(
        "meta-llama/Llama-3.1-8B",
        "1x4xH100",
        ("throughput", "ttft", "headroom"),
        workload="batch",
        options=OPTIONS,
    )


def _png(path: Path) -> tuple[int, int, int, str]:
    """(width, height, non-white pixels, description) of a PNG, read back with Pillow."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB"))
        ink = int((pixels.min(axis=2) < 250).sum())
        return img.width, img.height, ink, str(img.info.get("Description", ""))


def test_two_objective_plot_has_every_point_and_a_knee(tmp_path: Path) -> None:
    front = ap.pareto(
        "meta-llama/Llama-3.1-8B", "1x4xH100", ("throughput", "tpot"), workload="batch", options=OPTIONS
    )
    png = tmp_path / "front.png"
    assert front.plot(png) == len(front) >= 3
    width, height, ink, meta = _png(png)
    assert width > 400 and height > 300 and ink > 5000
    assert meta == f"points={len(front)} panels=1"
    knee = front.knee()
    assert 0 <= knee < len(front) and front.rows()[knee]["knee"]


def test_three_objectives_give_pairwise_panels_and_tables(tmp_path: Path, front3: Front) -> None:
    import pandas as pd

    assert front3.complete and len(front3) >= 3
    png = tmp_path / "f.png"
    assert front3.plot(png) == len(front3)
    assert _png(png)[3] == f"points={len(front3)} panels=3"
    front3.write(tmp_path / "f.parquet")
    front3.write(tmp_path / "f.csv")
    for table in (pd.read_parquet(tmp_path / "f.parquet"), pd.read_csv(tmp_path / "f.csv")):
        assert len(table) == len(front3)
        assert {
            "objective_throughput",
            "objective_ttft",
            "objective_memory",
            "label",
            "ep",
            "gpus",
            "usd_per_hour",
            "usd_per_million_tokens",
            "solver_status",
        } <= set(table.columns)
        assert table["knee"].sum() == 1
        assert list(table["objective_ttft"]) == pytest.approx(front3.values("ttft"))


def test_weighted_choice_depends_on_the_normalisation(front3: Front) -> None:
    thr, ttft = front3.values("throughput"), front3.values("ttft")
    assert front3.pick({"throughput": 1}) == thr.index(max(thr))
    assert front3.pick({"ttft": 1}) == ttft.index(min(ttft))
    # Under `max`, throughput's 10 %-wide band barely moves the sum: TTFT decides (documented).
    spread = (max(thr) - min(thr)) / max(thr)
    picked = front3.pick({"throughput": 1, "ttft": 1}, "max")
    by_hand = min(range(len(front3)), key=lambda i: -thr[i] / max(thr) + ttft[i] / max(ttft))
    assert picked == by_hand
    ranged = front3.pick({"throughput": 1, "ttft": 1}, "range")
    lo_t, hi_t, lo_f, hi_f = min(thr), max(thr), min(ttft), max(ttft)
    assert ranged == min(
        range(len(front3)), key=lambda i: (hi_t - thr[i]) / (hi_t - lo_t) + (ttft[i] - lo_f) / (hi_f - lo_f)
    )
    assert spread > 0
    with pytest.raises(InputError, match="not an objective"):
        front3.pick({"cost": 1})
    with pytest.raises(InputError, match="unknown normalisation"):
        front3.normalized("zscore")  # type: ignore[arg-type]


def test_bad_plot_paths(tmp_path: Path, front3: Front) -> None:
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        front3.plot(tmp_path / "f.jpg")
    with pytest.raises(InputError, match="not found"):
        front3.plot(tmp_path / "nope" / "f.png")


def test_training_front_through_the_api_has_no_float_dominated_point(tmp_path: Path) -> None:
    from autoparallel.configs import Recompute, ZeroStage
    from autoparallel.solvers.training.space import TrainingOptions

    options = TrainingOptions(
        non_uniform_stages=False,
        per_stage_recompute=False,
        micro_batch_values=(1, 4),
        zero_stages=(ZeroStage.NONE, ZeroStage.PARAMETERS),
        recompute_modes=(Recompute.NONE, Recompute.FULL),
        max_pp=2,
    )
    front = ap.pareto(
        "meta-llama/Llama-3.2-1B",
        "1x4xH100",
        ("headroom", "mfu"),
        workload=ap.Training(seq_len=2048, global_batch=32),
        options=options,
    )
    assert front.complete and len(front) >= 2 and isinstance(front[0], ap.TrainingPlan)
    head, tps = front.values("headroom"), front.values("throughput")
    for i in range(len(front)):
        assert not any(j != i and head[j] >= head[i] and tps[j] >= tps[i] for j in range(len(front)))
    rows = front.rows()
    assert {"objective_memory", "objective_cost", "mfu", "zero", "micro_batch", "usd_per_hour"} <= set(
        rows[0]
    )
    assert rows[0]["label"].startswith("tp")
