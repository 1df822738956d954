"""`sweep` and `memory` take custom GPUs (--gpus-file) and `sweep` per-GPU prices (--price), as plan does."""

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from autoparallel.errors import InputError
from autoparallel.hardware import GPU
from autoparallel.sweeps import grid
from autoparallel.sweeps.scenario import Hardware, load_scenarios

RunCli = Callable[..., CompletedProcess[str]]
"""The `run_main` fixture (conftest.py): `run_cli` in this process."""

GPUS = "gpus:\n  - name: H100-lowclock\n    base: H100\n    bf16_tflops: 700\n    usd_per_hour: 1.9\n"


@pytest.fixture
def gpus_file(tmp_path: Path) -> Path:
    f = tmp_path / "gpus.yaml"
    f.write_text(GPUS)
    return f


def test_each_cluster_takes_only_its_own_gpus_price(gpus_file: Path) -> None:
    hw = Hardware(GPU.from_file(gpus_file), {"H100": 3.0, "H100-lowclock": 1.5})
    swept = grid(["Qwen/Qwen3-8B"], [hw.cluster("1x1xH100"), hw.cluster("1x1xH100-lowclock")], ["chatbot"])
    prices = [s.load_cluster().pools[0].gpu.usd_per_hour for s in swept]
    assert prices == [3.0, 1.5]
    hw.check_used(swept)
    with pytest.raises(InputError, match="A100"):
        Hardware(prices={"A100": 1.0}).check_used(grid(["Qwen/Qwen3-8B"], ["1x8xH100"], ["chatbot"]))


def test_the_api_sweep_takes_gpus_and_prices(tmp_path: Path, gpus_file: Path) -> None:
    import autoparallel as ap

    f = tmp_path / "s.csv"
    f.write_text("model,cluster\nQwen/Qwen3-8B,1x1xH100-lowclock\n")
    res = ap.sweep(str(f), gpus=str(gpus_file), prices="H100-lowclock=1.25", executor="serial")
    assert [r["usd_per_hour"] for r in res.to_dicts()] == [pytest.approx(1.25)]
    with pytest.raises(InputError, match="no cluster of the sweep"):
        ap.sweep(models=["Qwen/Qwen3-8B"], clusters=["1x1xH100"], prices={"A100": 1.0}, executor="serial")


def test_scenario_ids_read_the_package_version_once() -> None:
    from autoparallel.sweeps import scenario

    swept = grid(["Qwen/Qwen3-8B"], ["1x1xH100", "1x2xH100"], ["chatbot"])
    before = scenario.package_version.cache_info().misses
    assert len({s.id for s in swept * 3}) == 2
    assert scenario.package_version.cache_info().misses - before <= 1


def test_a_plain_sweep_keeps_its_clusters_as_strings() -> None:
    assert Hardware().cluster("1x8xH100") == "1x8xH100"


def test_scenario_file_clusters_read_with_the_gpus_file(tmp_path: Path, gpus_file: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        "grid:\n  models: [Qwen/Qwen3-8B]\n  clusters: [1x1xH100-lowclock]\nscenarios:\n"
        "  - {model: Qwen/Qwen3-8B, cluster: 1x1xH100-lowclock}\n"
    )
    with pytest.raises(InputError):
        load_scenarios(f)
    scenarios = load_scenarios(f, Hardware(GPU.from_file(gpus_file)))
    assert [s.load_cluster().pools[0].gpu.bf16_tflops for s in scenarios] == [700, 700]


def test_sweep_cli_prices_each_cluster(run_main: RunCli, gpus_file: Path) -> None:
    out = run_main(
        "sweep",
        "--models",
        "Qwen/Qwen3-8B",
        "--clusters",
        "1x1xH100-lowclock,1x1xH100",
        "--gpus-file",
        str(gpus_file),
        "--price",
        "H100=3",
        "--objectives",
        "cost",
        "--executor",
        "serial",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    per_hour = {r["cluster"]: r["usd_per_hour"] for r in rows}
    assert per_hour == {"1x1xH100-lowclock": pytest.approx(1.9), "1x1xH100-SXM": pytest.approx(3.0)}


def test_sweep_cli_refuses_a_price_no_cluster_has(run_main: RunCli) -> None:
    out = run_main(
        "sweep",
        "--models",
        "Qwen/Qwen3-8B",
        "--clusters",
        "1x1xH100",
        "--price",
        "A100=3",
        "--executor",
        "serial",
    )
    assert out.returncode == 2
    assert "no cluster of the sweep has that GPU" in out.stderr


def test_memory_cli_reads_a_custom_gpu(run_main: RunCli, gpus_file: Path) -> None:
    out = run_main(
        "memory", "Qwen/Qwen3-8B", "--gpu", "H100-lowclock", "--gpus-file", str(gpus_file), "--json"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["gpu"] == "H100-lowclock"


@pytest.mark.parametrize("flag", ["--price=", "--gpus-file="])
def test_an_empty_price_or_gpus_file_is_refused_not_ignored(run_main: RunCli, flag: str) -> None:
    out = run_main("plan", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", flag)
    assert out.returncode == 2, out.stdout


def test_a_priced_row_says_its_price(gpus_file: Path) -> None:
    hw = Hardware(GPU.from_file(gpus_file), {"H100": 4.25})
    plain, priced, custom = grid(
        ["Qwen/Qwen3-8B"], ["1x1xH100", hw.cluster("1x1xH100"), hw.cluster("2x1xH100-lowclock")], ["chatbot"]
    )
    assert "gpu_prices" not in plain.inputs
    assert priced.inputs["gpu_prices"] == "H100-SXM=4.25"
    assert custom.inputs["gpu_prices"] == "H100-lowclock=1.9"
