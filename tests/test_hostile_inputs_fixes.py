"""Hostile inputs that were accepted silently or answered wrongly: non-finite / repeated --weights,
misspelt engines, two spellings of one GPU's price, 4-decimal JSON rounding, the wrong fix for the
batch-limit problem, unicode digits and invalid indices in scheduler variables, a duplicated CSV
header."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.cli.pareto_cmd import _weights
from autoparallel.errors import InputError
from autoparallel.hardware import Cluster, detect_cluster
from autoparallel.hardware.cluster import parse_prices
from autoparallel.memory.serving import vllm_memory
from autoparallel.sweeps import grid, load_scenarios
from autoparallel.sweeps.front import check_weights

SMALL = "meta-llama/Llama-3.2-1B"
H100_NAME = "NVIDIA H100 80GB HBM3"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_weights_are_refused(value: str) -> None:
    with pytest.raises(InputError, match="finite number"):
        check_weights({"throughput": float(value), "tpot": 1.0}, ("throughput", "tpot"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("throughput=1,throughput=2", "'throughput' is given twice"),
        ("throughput", "'throughput' is not NAME=NUMBER (e.g. throughput=1)"),
    ],
)
def test_repeated_or_bare_weights_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        _weights(text)
    assert fragment in str(info.value)


def test_pareto_nan_weight_exits_2_before_solving(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from autoparallel import api

    def solved(*args: object, **kwargs: object) -> None:
        raise AssertionError("the front was solved before --weights was checked")

    monkeypatch.setattr(api, "pareto", solved)
    argv = ["pareto", SMALL, "--cluster", "1x8xH100", "--objectives", "throughput,tpot"]
    assert main([*argv, "--weights", "throughput=nan,tpot=1"]) == 2
    err = capsys.readouterr().err
    assert "is nan" in err and len(err.splitlines()) == 1


TRAIN = {"seq_len": 4096, "global_batch": 128}


@pytest.mark.parametrize(
    ("workload", "engines"),
    [("chatbot", ["vllm", "sglnag"]), (TRAIN, ["megatron", "deepsped"])],
)
def test_a_misspelt_engine_is_refused_not_dropped(workload: str | dict[str, int], engines: list[str]) -> None:
    with pytest.raises(InputError, match=f"unknown engine {engines[1]!r}"):
        grid([SMALL], ["1x8xH100"], [workload], engines=engines)


def test_engines_of_the_other_kind_are_still_skipped() -> None:
    rows = grid([SMALL], ["1x8xH100"], ["chatbot", TRAIN], engines=["vllm", "megatron"])
    assert [(s.kind, s.engine) for s in rows] == [("serving", "vllm"), ("training", "megatron")]


def test_a_scenario_file_grid_with_a_misspelt_engine_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"grid: {{models: [{SMALL}], clusters: [1x8xH100], engines: [vllm, sglnag]}}\n")
    with pytest.raises(InputError, match="unknown engine 'sglnag'"):
        load_scenarios(path)


def test_a_csv_header_with_a_column_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(f"model,cluster,isl,isl\n{SMALL},1x8xH100,128,4096\n")
    with pytest.raises(InputError, match="column 'isl' appears twice"):
        load_scenarios(path)


@pytest.mark.parametrize("text", ["H100=2,H100-SXM=3", "H100-SXM=3,H100=2", "H100=2,h100=3"])
def test_two_spellings_of_one_gpu_price_are_refused(text: str) -> None:
    with pytest.raises(InputError) as info:
        Cluster.parse("1x8xH100").with_prices(parse_prices(text))
    (first, a), (second, b) = (item.split("=") for item in text.split(","))
    assert f"{a} as {first!r} and {b} as {second!r}" in str(info.value)


@pytest.mark.parametrize("text", ["H100-SXM=3", "H100=3,H100-SXM=3"])
def test_one_price_per_gpu_still_prices_it(text: str) -> None:
    cluster = Cluster.parse("1x8xH100").with_prices(parse_prices(text))
    assert cluster.pools[0].gpu.usd_per_hour == 3


def test_json_rounding_keeps_small_values_and_large_ones_precision() -> None:
    from autoparallel.plan import round_floats  # the plan's and the fleet's JSON alike

    out = round_floats(
        {"request_rate": 1e-9, "tpot_ms": 1e-300, "n": 3, "x": [2.5e-7, 0.0], "big": 12418.3}, 4
    )
    assert out == {"request_rate": 1e-9, "tpot_ms": 1e-300, "n": 3, "x": [2.5e-7, 0.0], "big": 12418.3}
    assert isinstance(out["n"], int)


def test_plan_json_keeps_four_decimals_on_large_values() -> None:
    from autoparallel.plan import round_floats

    assert round_floats(12418.345678) == 12418.3457 and round_floats(0.123456789) == 0.123457


def test_the_batch_limit_problem_gets_the_batch_limit_fix() -> None:
    report = vllm_memory(SMALL, "H100", max_num_seqs=10000)
    assert not report.fits
    assert report.problems[-1] == "fix: use --max-num-batched-tokens 10000, or --max-num-seqs 8192"
    assert vllm_memory(SMALL, "H100", max_num_seqs=10000, max_num_batched_tokens=10000).fits
    assert vllm_memory(SMALL, "H100", max_num_seqs=8192).fits


@pytest.mark.parametrize(
    ("env", "gpus"),
    [
        ({"CUDA_VISIBLE_DEVICES": "0,-1"}, 1),
        ({"CUDA_VISIBLE_DEVICES": "0,1,9,2"}, 2),
        ({"CUDA_VISIBLE_DEVICES": "2,1gpu"}, 2),
        ({"CUDA_VISIBLE_DEVICES": "GPU-a,GPU-b,3"}, 2),
    ],
)
def test_cuda_visible_devices_counts_up_to_the_first_invalid_index(env: dict[str, str], gpus: int) -> None:
    assert detect_cluster(env, lambda: (H100_NAME,) * 8).gpus_per_node == gpus


@pytest.mark.parametrize(
    "env",
    [
        {"SLURM_GPUS_PER_NODE": "²"},
        {"SLURM_GPUS_ON_NODE": "٣"},
        {"CUDA_VISIBLE_DEVICES": "0,0"},
        {"CUDA_VISIBLE_DEVICES": "²"},
    ],
)
def test_unicode_digits_and_repeated_indices_are_one_line_input_errors(env: dict[str, str]) -> None:
    with pytest.raises(InputError) as info:
        detect_cluster(env, lambda: (H100_NAME,) * 8)
    assert len(str(info.value).splitlines()) == 1


def test_a_fleet_entry_takes_the_bounds_the_cli_takes() -> None:
    """Fleet entries had bounds of their own (isl up to 10^7 where the CLI takes 2^24; TTFT up to 10^7
    ms where it takes a day): one table, `bounds.BOUNDS`, for both."""
    from autoparallel.bounds import BOUNDS
    from autoparallel.fleet import FleetEntry

    FleetEntry(model="m", isl=int(BOUNDS["isl"].hi), ttft_ms=BOUNDS["ttft_ms"].hi)
    with pytest.raises(ValueError):
        FleetEntry(model="m", isl=int(BOUNDS["isl"].hi) + 1)
    with pytest.raises(ValueError):
        FleetEntry(model="m", request_rate=BOUNDS["request_rate"].lo / 2)
