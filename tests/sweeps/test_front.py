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
        grad_reduce_in_bf16=True,  # ZeRO 0 / 3 as priced run in Megatron with bf16 gradient reduction
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


def _small_training_front(objectives: tuple[str, ...]) -> Front:
    from autoparallel.configs import Recompute, ZeroStage
    from autoparallel.solvers.training.space import TrainingOptions

    options = TrainingOptions(
        non_uniform_stages=False,
        per_stage_recompute=False,
        micro_batch_values=(1, 4),
        zero_stages=(ZeroStage.NONE, ZeroStage.PARAMETERS),
        recompute_modes=(Recompute.NONE, Recompute.FULL),
        max_pp=2,
        grad_reduce_in_bf16=True,  # ZeRO 0 / 3 as priced run in Megatron with bf16 gradient reduction
    )
    workload = ap.Training(seq_len=2048, global_batch=32)
    return ap.pareto("meta-llama/Llama-3.2-1B", "1x4xH100", objectives, workload=workload, options=options)


def test_plot_text_is_drawn_literally_not_as_mathtext(tmp_path: Path) -> None:
    """The training cost axis, `$ per step (GPUs x step time x $/GPU-h)`, holds two `$`: matplotlib drew
    the text between them as mathtext (italics, no dollars). Every text the plot draws is escaped."""
    import matplotlib
    from matplotlib import cbook

    from autoparallel.sweeps.deployment_front import DEPLOYMENT_METRICS
    from autoparallel.sweeps.front import SERVING_METRICS, TRAINING_METRICS, _plain

    for title, _ in (*SERVING_METRICS.values(), *TRAINING_METRICS.values(), *DEPLOYMENT_METRICS.values()):
        assert not cbook.is_math_text(_plain(title)), title
    front = _small_training_front(("headroom", "mfu"))  # mfu is cost: the two-dollar axis
    svg = tmp_path / "f.svg"
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text, to read back
        front.plot(svg, title="$5 and $6")
    text = svg.read_text()
    assert "$ per step (GPUs x step time x $/GPU-h) ↓" in text and "$5 and $6" in text


def test_every_training_field_that_tells_points_apart_is_in_the_label_and_the_row() -> None:
    """Rows of `pareto Qwen/Qwen3-30B-A3B --train` shared labels (`tp4 pp4 dp1 mb2 zdist none` three
    times) and columns: the stage split, etp and per-stage recompute were in neither. Now the label
    names every non-default field and the row holds every field of the configuration."""
    from autoparallel.configs import Recompute, TrainingConfig
    from autoparallel.solvers.training.space import TrainingOptions
    from autoparallel.sweeps.front import training_columns, training_label

    base = TrainingConfig(tp=2, pp=2, dp=2, ep=2, micro_batch=2, global_batch=64, recompute=Recompute.NONE)
    variants = [
        {},
        {"layers_per_stage": (9, 7)},
        {"etp": 1},
        {"stage_recompute": (Recompute.FULL, Recompute.NONE)},
        {"stage_recompute": (Recompute.NONE, Recompute.FULL)},
        {"vp": 2},
        {"cp": 2, "dp": 1},
        {"cp": 2, "dp": 1, "cp_comm": "a2a"},
        {"offload_optimizer": True},
        {"sequence_parallel": False},
        {"precision": "fp8"},
        {"moe_capacity_factor": 1.25},
        {"ep_overlap": True},
    ]
    configs = [base.model_copy(update=v) for v in variants]
    labels = [training_label(c, 16) for c in configs]
    assert len(set(labels)) == len(labels), labels
    assert labels[0] == "tp2 pp2 dp2 ep2 mb2 zdist none" and labels[1].endswith(" L9/7")
    assert "full/none" in labels[3] and "none/full" in labels[4]
    columns = [training_columns(c, 16) for c in configs]
    assert len({tuple(sorted(c.items())) for c in columns}) == len(columns)
    assert columns[0]["layers_per_stage"] == "8/8" and columns[3]["stage_recompute"] == "full/none"
    assert set(columns[0]) == set(TrainingConfig.model_fields) - {"global_batch", "seq_len"}
    front = ap.pareto(
        "Qwen/Qwen3-30B-A3B",
        "1x8xH100",
        workload=ap.Training(seq_len=2048, global_batch=64),
        options=TrainingOptions(micro_batch_values=(1,)),
    )
    rows = front.rows()
    # etp is a column of every row (None: = tp); which values the front holds is the cost model's call
    assert len({r["label"] for r in rows}) == len(rows) and {r["etp"] for r in rows} <= {None, 1}
