"""The API boundary's checks of the objects a caller passes: a bounded expert tensor-parallel degree,
one training-precision domain, clusters, pools, GPUs, settings and fleet models validated again after
`model_copy`, prices and custom GPUs of any type, a model object whose `to_dict` is no dict, finite
workload numbers, and `compare` / `world_sizes` refused where they mean nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

import autoparallel as ap
from autoparallel import api
from autoparallel.bounds import BOUNDS
from autoparallel.cli import main
from autoparallel.solvers.deployment import FleetModel
from autoparallel.workload_profile import load_workload_file

SMALL = "meta-llama/Llama-3.2-1B"
FAST = ap.SolverSettings.create(time_limit_s=5)


def one_line(exc: pytest.ExceptionInfo[ap.InputError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and "validation error" not in text
    return text


# ----- 1. etp is a tensor-parallel degree ----------------------------------------------------------
@pytest.mark.parametrize("etp", [0, -1, BOUNDS["tp"].hi + 1])
def test_training_config_refuses_an_etp_out_of_the_tp_bound(etp: int) -> None:
    with pytest.raises(ValidationError, match="etp"):
        ap.TrainingConfig(etp=etp)


def test_evaluate_refuses_a_copied_etp_of_zero() -> None:
    cfg = ap.TrainingConfig(dp=8, global_batch=64).model_copy(update={"etp": 0})
    with pytest.raises(ap.InputError, match="etp=0") as exc:
        ap.evaluate(SMALL, "1x8xH100", cfg, compare=False)
    one_line(exc)


# ----- 2. one training-precision domain ------------------------------------------------------------
@pytest.mark.parametrize("precision", ["FP8", "bf16 ", "fp4", "int8"])
def test_evaluate_and_training_memory_refuse_another_precision_alike(precision: str) -> None:
    cfg = ap.TrainingConfig(dp=8, global_batch=64, precision=precision)
    rule = f"config: precision={precision!r}: use bf16, fp8 or fp16"
    with pytest.raises(ap.InputError) as exc:
        ap.evaluate(SMALL, "1x8xH100", cfg, compare=False)
    assert one_line(exc) == rule
    with pytest.raises(ap.InputError) as exc:
        ap.training_memory(SMALL, "H100", cfg)
    assert one_line(exc) == rule
    with pytest.raises(ValidationError, match="use bf16, fp8 or fp16"):
        ap.Training(precision=precision)


def test_fp16_is_a_training_precision_everywhere() -> None:
    """What bf16 runs as on a V100 (`validation.job_precision`) is a job and a layout of its own."""
    cfg = ap.TrainingConfig(dp=8, global_batch=64, precision="fp16")
    plan = ap.evaluate(SMALL, "1x8xH100", cfg, compare=False)
    assert plan.config.precision == plan.workload.precision == "fp16"
    assert ap.Training(precision="fp16").precision == "fp16"
    bf16 = ap.training_memory(SMALL, "H100", cfg.model_copy(update={"precision": "bf16"}))
    fp16 = ap.training_memory(SMALL, "H100", cfg)
    assert fp16.stages[0].gradients_gib < bf16.stages[0].gradients_gib  # no fp32 main_grad


# ----- 3. clusters, pools, GPUs, settings and fleet models validated again -------------------------
CLUSTER = ap.Cluster.parse("1x8xH100")
POOL = CLUSTER.pools[0]


def with_pool(**update: Any) -> ap.Cluster:
    return CLUSTER.model_copy(update={"pools": (POOL.model_copy(update=update),)})


def with_gpu(**update: Any) -> ap.Cluster:
    return with_pool(gpu=POOL.gpu.model_copy(update=update))


@pytest.mark.parametrize(
    ("cluster", "match"),
    [
        (with_pool(gpus_per_node=9), r"pools\[0\]: 9 GPUs per node is more than a H100-SXM node holds"),
        (with_pool(nodes=0), r"pools\[0\]\.nodes=0"),
        (with_pool(nodes=2.5), r"pools\[0\]\.nodes=2\.5"),
        (with_pool(gpu="H100"), r"pools\[0\]\.gpu='H100'"),
        (with_gpu(bf16_tflops=0), r"bf16_tflops=0: Input should be greater than or equal to 1"),
        (with_gpu(memory_gib=float("nan")), "memory_gib=nan: Input should be a finite number"),
        (with_gpu(usd_per_hour=float("inf")), "usd_per_hour=inf: Input should be a finite number"),
        (with_gpu(arch="zzz"), "unknown nvidia architecture"),
    ],
)
def test_the_api_validates_a_copied_cluster_again(cluster: ap.Cluster, match: str) -> None:
    with pytest.raises(ap.InputError, match=match) as exc:
        ap.analyze(SMALL, cluster)
    assert one_line(exc).startswith("cluster: ")
    with pytest.raises(ap.InputError, match=match):
        ap.evaluate(SMALL, cluster, ap.ServingConfig(), compare=False)


def test_a_copied_pool_of_numpy_counts_is_planned_on_python_ints() -> None:
    c = api._cluster(with_pool(gpus_per_node=np.int64(4)))
    assert type(c.gpus_per_node) is int and c.spec == "1x4xH100-SXM"


def test_a_valid_cluster_object_comes_back_itself() -> None:
    """The float model's memos are keyed by the cluster object (`memo.py`)."""
    assert api._cluster(CLUSTER) is CLUSTER
    custom = with_gpu(usd_per_hour=3.0)
    assert api._cluster(custom) is custom


def test_training_memory_validates_a_copied_gpu_again() -> None:
    gpu = ap.get_gpu("H100").model_copy(update={"memory_gib": float("nan")})
    with pytest.raises(ap.InputError, match="gpu: memory_gib=nan: Input should be a finite number"):
        ap.training_memory(SMALL, gpu, ap.TrainingConfig())


def test_solve_fleet_validates_a_fleet_models_workload_again() -> None:
    bad = ap.Serving.preset("chatbot").model_copy(update={"isl": 0})
    fleet = [FleetModel(ap.load_model(SMALL), bad, SMALL, 1.0)]
    with pytest.raises(ap.InputError, match=r"fleet model 1 \(.*\) workload: isl=0") as exc:
        ap.solve_fleet(fleet, "1x8xH100", settings=FAST)
    one_line(exc)


@pytest.mark.parametrize("priority", [float("nan"), -1.0, 0.0, "1"])
def test_solve_fleet_refuses_a_fleet_models_priority_out_of_range(priority: Any) -> None:
    fleet = [FleetModel(ap.load_model(SMALL), ap.Serving.preset("chatbot"), SMALL, priority)]
    with pytest.raises(ap.InputError, match="fleet model 1: priority="):
        ap.solve_fleet(fleet, "1x8xH100", settings=FAST)


def test_solve_fleet_validates_a_copied_cluster_and_entry_again() -> None:
    with pytest.raises(ap.InputError, match="9 GPUs per node"):
        ap.solve_fleet([{"model": SMALL}], with_pool(gpus_per_node=9), settings=FAST)
    entry = ap.FleetEntry(model=SMALL, request_rate=2.0).model_copy(update={"priority": -1.0})
    with pytest.raises(ap.InputError, match=r"fleet entry 1: priority=-1\.0"):
        ap.solve_fleet([entry], "1x8xH100", settings=FAST)


def test_copied_settings_are_validated_again() -> None:
    bad = FAST.model_copy(update={"time_limit_s": -1.0})
    with pytest.raises(ap.InputError, match=r"settings: time_limit_s=-1\.0"):
        ap.solve(SMALL, "1x1xH100", settings=bad)


# ----- 4. prices and custom GPUs of any type -------------------------------------------------------
def test_a_price_named_by_a_non_string_is_refused_in_one_line() -> None:
    with pytest.raises(ap.InputError, match="prices: a GPU name must be a string, got int 3"):
        ap.solve_fleet([{"model": SMALL}], "1x8xH100", prices={3: 2}, settings=FAST)  # type: ignore[dict-item]
    with pytest.raises(ap.InputError, match="a GPU name must be a string"):
        CLUSTER.with_prices({3: 2})  # type: ignore[dict-item]


@pytest.mark.parametrize("price", [np.int64(2), np.float32(2.0), 2, "H100=2"])
def test_numpy_prices_and_price_text_are_taken(price: Any) -> None:
    prices = price if isinstance(price, str) else {"H100": price}
    c = ap.Cluster.parse("1x8xH100", prices=prices)
    assert c.gpu.usd_per_hour == 2.0 and type(c.gpu.usd_per_hour) is float


@pytest.mark.parametrize(("gpus", "match"), [([3], r"gpus\[0\] must be a GPU"), ("x", "gpus must be a list")])
def test_cluster_parse_refuses_custom_gpus_that_are_not_gpus(gpus: Any, match: str) -> None:
    with pytest.raises(ap.InputError, match=match):
        ap.Cluster.parse("1x8xH100", gpus=gpus)


def test_cluster_parse_validates_a_copied_custom_gpu_again() -> None:
    gpu = ap.get_gpu("H100").model_copy(update={"name": "H100-slow", "aliases": (), "bf16_tflops": 0})
    with pytest.raises(ap.InputError, match="bf16_tflops=0"):
        ap.Cluster.parse("1x8xH100-slow", gpus=[gpu])


# ----- 5. a model object whose to_dict is no dict --------------------------------------------------
def test_load_model_refuses_a_to_dict_that_is_no_dict() -> None:
    class NotAConfig:
        def to_dict(self) -> Any:
            return "nope"

    with pytest.raises(ap.InputError, match=r"NotAConfig\.to_dict\(\) returned a str, not a config dict"):
        ap.load_model(NotAConfig())


# ----- 6. workload numbers are finite ---------------------------------------------------------------
@pytest.mark.parametrize("field", ["request_rate", "ttft_ms", "tpot_ms", "burstiness", "isl_cv", "osl_cv"])
def test_serving_says_a_nan_is_not_a_finite_number(field: str) -> None:
    with pytest.raises(ValidationError, match="Input should be a finite number"):
        ap.Serving(**{field: float("nan")})


def test_serving_config_and_training_say_a_nan_is_not_a_finite_number() -> None:
    with pytest.raises(ValidationError, match="Input should be a finite number"):
        ap.ServingConfig(gpu_memory_utilization=float("nan"))
    with pytest.raises(ValidationError, match="Input should be a finite number"):
        ap.Training(tokens=float("nan"))
    with pytest.raises(ValidationError, match="Input should be a finite number"):
        ap.TrainingConfig(moe_capacity_factor=float("inf"))


def test_a_workload_files_nan_rate_is_not_a_finite_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wl = tmp_path / "nan.wl.json"
    wl.write_text(json.dumps({"serving": {"isl": 100, "osl": 10, "request_rate": "NaN"}}))
    with pytest.raises(ap.InputError, match="request_rate: Input should be a finite number"):
        load_workload_file(wl)
    assert main(["plan", SMALL, "--cluster", "1x1xH100", "--workload-file", str(wl)]) == 2
    assert "request_rate: Input should be a finite number" in capsys.readouterr().err


# ----- 7. compare and world_sizes ------------------------------------------------------------------
@pytest.mark.parametrize("compare", ["no", 0, None])
def test_evaluate_refuses_a_compare_that_is_not_a_bool(compare: Any) -> None:
    with pytest.raises(ap.InputError, match="compare must be True or False"):
        ap.evaluate(SMALL, "1x1xH100", ap.ServingConfig(), compare=compare)


def test_training_options_allowing_no_world_size_are_refused_as_serving_options_are() -> None:
    job = ap.Training(seq_len=2048, global_batch=64)
    with pytest.raises(ValueError, match="world_sizes allows no value"):
        ap.TrainingOptions(world_sizes=())
    copied = ap.TrainingOptions().model_copy(update={"world_sizes": ()})
    with pytest.raises(ap.InputError, match=r"options: .*world_sizes allows no value"):
        ap.solve(SMALL, "1x8xH100", job, settings=FAST, options=copied)
