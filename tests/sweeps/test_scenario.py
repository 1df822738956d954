"""Scenarios as data: grids, files, ids and labels; bad input is one InputError."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoparallel.errors import InputError
from autoparallel.sweeps import grid, load_scenarios, make_scenario
from autoparallel.sweeps import scenario as scenario_module
from autoparallel.workload import Serving, Training


def test_grid_is_the_product_with_stable_distinct_ids() -> None:
    wl = ["chatbot", {"isl": 4096, "osl": 512}, {"isl": 2048, "osl": 512, "ttft_ms": 800}]
    a = grid(["meta-llama/Llama-3.2-1B", "Qwen/Qwen3-8B"], ["1xH100", "2x8xH100"], wl, ["throughput", "cost"])
    b = grid(["meta-llama/Llama-3.2-1B", "Qwen/Qwen3-8B"], ["1xH100", "2x8xH100"], wl, ["throughput", "cost"])
    assert len(a) == 2 * 2 * 3 * 2
    assert [s.id for s in a] == [s.id for s in b]
    assert len({s.id for s in a}) == len(a) and all(len(s.id) == 16 for s in a)
    labels = {s.workload_label for s in a}
    assert labels == {"chatbot", "custom isl=4096 osl=512", "custom isl=2048 osl=512 ttft_ms=800"}
    assert a[0].label == "meta-llama/Llama-3.2-1B on 1xH100 | chatbot | throughput"


def test_id_changes_with_the_package_version(monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_scenario("meta-llama/Llama-3.2-1B", "1xH100")
    before = s.id
    monkeypatch.setattr(scenario_module, "package_version", lambda: "9.9.9")
    assert s.id != before


def test_workloads_become_serving_and_training_objects() -> None:
    w = make_scenario("m", "1xH100", {"preset": "rag", "isl": 16000}).to_workload()
    assert isinstance(w, Serving) and (w.isl, w.osl, w.ttft_ms) == (16000, 256, 5000.0)
    assert w.name == "rag isl=16000"
    t = make_scenario("m", "1x8xH100", {"seq_len": 2048, "global_batch": 64}, "mfu", "deepspeed")
    assert isinstance(t.to_workload(), Training) and t.kind == "training" and t.engine == "deepspeed"
    assert make_scenario("m", "1xH100", "chatbot").to_workload() == Serving.preset("chatbot")


def test_mixed_grid_keeps_each_engine_with_its_kind() -> None:
    g = grid(
        ["m"],
        ["1x8xH100"],
        ["chatbot", {"seq_len": 4096, "global_batch": 128}],
        ["throughput"],
        ["vllm", "megatron"],
    )
    assert [(s.kind, s.engine) for s in g] == [("serving", "vllm"), ("training", "megatron")]


@pytest.mark.parametrize(
    "args, match",
    [
        (("m", "1xH100", {"isl": 1, "seq_len": 2}), "mixes training"),
        (("m", "1xH100", {"ilsl": 1}), "unknown workload field 'ilsl'"),
        (("m", "1xH100", "chatbott"), "unknown workload"),
        (("m", "1xH100", "chatbot", "mfu"), "unknown serving objective"),
        (("m", "1xH100", "chatbot", "throughput", "tgi"), "not modelled"),
        (("m", "1xZZZ"), "GPU"),
        (("m", "1xH100", {"isl": -3}), "isl"),
    ],
)
def test_bad_scenarios_are_input_errors(args: tuple, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError, match=match):
        make_scenario(*args)


def test_yaml_grid_and_list(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        "grid:\n  models: [meta-llama/Llama-3.2-1B]\n  clusters: [1xH100, 1x8xA100-80G]\n"
        "  workloads: [chatbot, {isl: 8192, osl: 128, tpot_ms: 40}]\n  objectives: [throughput, ttft]\n"
        "scenarios:\n  - {model: Qwen/Qwen3-8B, cluster: 2x8xH100, seq_len: 4096, global_batch: 256,"
        " engine: megatron}\n"
    )
    got = load_scenarios(f)
    assert len(got) == 1 * 2 * 2 * 2 + 1
    assert got[-1].kind == "training" and got[-1].engine == "megatron"


def test_csv_rows(tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    f.write_text(
        "model,cluster,workload,isl,osl,request_rate,objective\n"
        "meta-llama/Llama-3.2-1B,1xH100,chatbot,,,,throughput\n"
        "meta-llama/Llama-3.2-1B,1xH100,,2048,256,3.5,cost\n"
    )
    a, b = load_scenarios(f)
    assert a.workload == (("preset", "chatbot"),)
    assert dict(b.workload) == {"isl": 2048, "osl": 256, "request_rate": 3.5} and b.objective == "cost"


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("bad.yaml", "grid: [models: x\n", "not valid YAML or JSON"),
        ("bad.yaml", "grid:\n  model: [x]\n  clusters: [1xH100]\n", "unknown grid key 'model'"),
        ("bad.yaml", "runs: []\n", "unknown key 'runs'"),
        ("bad.csv", "model,cluster,gpu\nm,1xH100,H100\n", "unknown column 'gpu'"),
        ("bad.csv", "model,cluster\n", "no scenarios"),
        ("bad.csv", "model,cluster\n,1xH100\n", "has no model"),
        ("bad.txt", "x", ".yaml, .yml or .csv"),
        ("deep.yaml", "scenarios: " + "[" * 5000 + "]" * 5000 + "\n", "nests too deeply to read"),
        (
            "twice.yaml",
            "scenarios:\n  - {model: m, cluster: 1xH100, isl: 5, workload: {isl: 100}}\n",
            "'isl' is given both inside `workload:` and beside it",
        ),
        (
            "nested.yaml",
            "scenarios:\n  - {model: m, cluster: 1xH100, workload: {workload: {isl: 7}}}\n",
            "holds another `workload:` mapping",
        ),
    ],
)
def test_malformed_files_are_one_line_input_errors(tmp_path: Path, name: str, text: str, match: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(InputError, match=match) as exc:
        load_scenarios(f)
    assert "\n" not in str(exc.value)


def test_missing_file() -> None:
    with pytest.raises(InputError, match=r"cannot read scenario file '/no/such/file\.yaml': No such file"):
        load_scenarios("/no/such/file.yaml")
    with pytest.raises(InputError, match=r"cannot read scenario file '/no/such/file\.csv': No such file"):
        load_scenarios("/no/such/file.csv")


def test_sweep_takes_scenarios_as_row_mappings_and_refuses_anything_else() -> None:
    from autoparallel.sweeps import sweep

    rows = [{"model": "meta-llama/Llama-3.2-1B", "cluster": "1xH100", "isl": 512, "osl": 64}]
    table = sweep(rows, executor="serial", progress=False).to_pandas()
    assert list(table["status"]) == ["ok"]
    assert list(table["isl"]) == [512]
    for bad, match in (
        ([{"model": 1}], "scenario 1 has no cluster"),
        ([rows[0], 3], r"scenario 2 \(int\) is not a Scenario or a mapping"),
        ([{**rows[0], "gpu": "H100"}], "unknown column 'gpu'"),
        (5, "must be a list or a scenario file's path, got int"),
    ):
        with pytest.raises(InputError, match=match):
            sweep(bad, executor="serial", progress=False)  # type: ignore[arg-type]


def test_a_scenario_rows_workload_mapping_is_its_fields(tmp_path: Path) -> None:
    """`workload: {isl: 4096, osl: 512}` in a scenario row means what it means in the grid; it was
    read as a preset name and refused."""
    f = tmp_path / "s.yaml"
    f.write_text(
        "grid:\n  models: [meta-llama/Llama-3.2-1B]\n  clusters: [1xH100]\n"
        "  workloads: [{isl: 4096, osl: 512, ttft_ms: 1500}, {preset: rag, request_rate: 5}]\n"
        "scenarios:\n"
        "  - {model: meta-llama/Llama-3.2-1B, cluster: 1xH100,\n"
        "     workload: {isl: 4096, osl: 512, ttft_ms: 1500}}\n"
        "  - {model: meta-llama/Llama-3.2-1B, cluster: 1xH100, workload: {preset: rag, request_rate: 5}}\n"
    )
    grid_a, grid_b, row_a, row_b = load_scenarios(f)
    assert row_a.workload == grid_a.workload and row_b.workload == grid_b.workload
    assert row_a.id == grid_a.id


def test_a_sweep_of_more_than_a_hundred_thousand_scenarios_is_refused_before_it_is_built(
    tmp_path: Path,
) -> None:
    """A 3,000 x 3,000 `--isl` / `--osl` grid (9 million scenarios) ran for minutes without a word
    while it built them; the count is checked first, from the axes' lengths."""
    from autoparallel.cli import main
    from autoparallel.sweeps import sweep

    values = ",".join(str(i) for i in range(1, 3001))
    argv = ["sweep", "--models", "m", "--clusters", "1xH100", "--isl", values, "--osl", values]
    assert main(argv) == 2
    with pytest.raises(InputError, match="the grid: 400,000 scenarios; a sweep holds at most 100,000"):
        grid(["a", "b"], ["1xH100"] * 2000, [{"isl": i} for i in range(1, 101)])
    with pytest.raises(InputError, match="scenarios: 100,001 scenarios"):
        sweep([{"model": "m", "cluster": "1xH100"}] * 100_001)
    f = tmp_path / "s.csv"
    f.write_text("model,cluster\n" + "m,1xH100\n" * 100_001)
    with pytest.raises(InputError, match="100,001 scenarios"):
        load_scenarios(f)
