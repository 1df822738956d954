"""Sweep results files (s44 fK): a CSV row cut short was read as a finished `ok` row with its numbers cut
(pandas padded it); two sweeps on one results file lost one sweep's rows; an edited local config.json
kept its scenario id, so a resume gave back the old plan; a results file without a column the resume
or the table reads was an internal error (KeyError)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from autoparallel.errors import InputError
from autoparallel.sweeps import grid, scenario
from autoparallel.sweeps.execute import run_scenarios
from autoparallel.sweeps.results import ResultStore, SweepResult, read_rows, write_rows
from tests.local_model_config import LLAMA

SMALL = "meta-llama/Llama-3.2-1B"


def _row(sid: str, **extra: object) -> dict[str, object]:
    return {
        "scenario_id": sid,
        "model": SMALL,
        "cluster": "1x1xH100",
        "workload": "chatbot",
        "objective": "throughput",
        "engine": "vllm",
        "status": "ok",
        "tp": 1,
        "pp": 1,
        "dp": 1,
        "gpus": 1,
        "throughput_tok_s": 4782.43,
        "tpot_ms": 12.5,
        **extra,
    }


# 1. a CSV row whose cells are not the header's is damage, named by its line


def test_a_csv_whose_last_line_is_cut_short_is_refused_naming_the_line(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    write_rows(out, [_row("a"), _row("b")])
    text = out.read_text()
    cut = text[: text.rindex("4782.43") + 2]  # two digits into throughput_tok_s: read as 47.0, ok
    out.write_text(cut)
    with pytest.raises(
        InputError, match=r"r\.csv': line 3 has \d+ cells, the header \d+: the file is damaged"
    ):
        read_rows(out)
    out.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 2])  # cut after the scenario id "b"
    with pytest.raises(InputError, match="line 3 has 1 cell, the header"):
        read_rows(out)
    out.write_text(text.replace("\nb,", "\nb,extra,", 1))
    with pytest.raises(InputError, match=r"line 3 has 14 cells, the header 13"):
        read_rows(out)
    out.write_text(text)
    assert [r["throughput_tok_s"] for r in read_rows(out)] == [4782.43, 4782.43]


def test_a_resume_from_a_torn_csv_is_an_input_error_before_solving(tmp_path: Path) -> None:
    (s,) = grid([SMALL], ["1x1xH100"], ["chatbot"])
    out = tmp_path / "r.csv"
    write_rows(out, [_row(s.id)])
    out.write_text(out.read_text()[:-20])
    with pytest.raises(InputError, match="line 2 has"):
        run_scenarios([s], workers=1, out=out)
    ResultStore(out).close()  # the refusal gave the lock back


# 2. one sweep at a time writes a results file


def test_a_second_sweep_on_the_same_results_file_is_refused_at_once(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    first = ResultStore(out)
    first.load()
    with pytest.raises(InputError, match=r"results file '.*r\.jsonl': another sweep is writing it now"):
        ResultStore(out)
    first.append(_row("a"))
    first.commit()
    second = ResultStore(out)  # the first one is done: free again
    assert [r["scenario_id"] for r in second.load()] == ["a"]
    second.commit()


_HOLD = """
import os, signal, sys
from autoparallel.sweeps.results import ResultStore
store = ResultStore(sys.argv[1])
store.load()
print("held", flush=True)
sys.stdin.readline()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_sweeps_lock_does_not_block_a_rerun(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match="another sweep is writing it now"):
            ResultStore(out)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    store = ResultStore(out)  # the system dropped the dead process's lock
    store.load()
    store.close()


# 3. a local model's config content is part of the scenario id


def test_an_edited_local_config_is_a_new_scenario(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    config = folder / "config.json"
    config.write_text(json.dumps(LLAMA))
    as_folder, as_file = (grid([m], ["1x1xH100"], ["chatbot"])[0] for m in (str(folder), str(config)))
    before = (as_folder.id, as_file.id)
    assert grid([str(folder)], ["1x1xH100"], ["chatbot"])[0].id == before[0]  # same content, same id
    carried = pickle.loads(pickle.dumps(as_folder))  # a worker gets the id the sweep asked for
    config.write_text(json.dumps({**LLAMA, "num_hidden_layers": 64}))
    os.utime(config, ns=(1, 1))  # an edit within one clock tick is still seen (size changed)
    after = tuple(grid([m], ["1x1xH100"], ["chatbot"])[0].id for m in (str(folder), str(config)))
    assert after[0] != before[0] and after[1] != before[1]
    assert carried.id == before[0] and carried == as_folder
    (folder / "hf_quant_config.json").write_text(json.dumps({"quantization": {"quant_algo": "FP8"}}))
    assert grid([str(folder)], ["1x1xH100"], ["chatbot"])[0].id not in (before[0], after[0])


def test_a_resume_solves_an_edited_local_model_again(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA))
    out = tmp_path / "r.jsonl"
    first = run_scenarios(grid([str(folder)], ["1x1xH100"], ["chatbot"]), workers=1, out=out)
    (folder / "config.json").write_text(json.dumps({**LLAMA, "num_hidden_layers": 64}))
    # one process: the model cache is keyed by the files' content too (it planned the old spec)
    again = run_scenarios(grid([str(folder)], ["1x1xH100"], ["chatbot"]), workers=1, out=out)
    assert again.skipped == 0 and again[0]["status"] == first[0]["status"] == "ok"
    assert again[0]["throughput_tok_s"] < first[0]["throughput_tok_s"] / 2  # 4x the layers
    assert len(read_rows(out)) == 2


def test_zoo_and_hub_ids_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values computed before the change, at package version 0.1.0."""
    monkeypatch.setattr(scenario, "package_version", lambda: "0.1.0")
    ids = [
        s.id
        for s in grid(
            ["meta-llama/Llama-3.1-8B", "Qwen/Qwen3-8B"],
            ["1x1xH100"],
            ["chatbot", {"seq_len": 4096, "global_batch": 64}],
        )
    ]
    assert ids == ["3b558411bfe426c9", "7f66cd55bf2c1c90", "d2f7ca98992745b8", "80f181d53c7f576f"]


# 4. a column the resume or the table reads is checked when the file is read


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_results_file_without_status_is_refused_naming_it(tmp_path: Path, suffix: str) -> None:
    (s,) = grid([SMALL], ["1x1xH100"], ["chatbot"])
    out = tmp_path / f"r{suffix}"
    write_rows(out, [{k: v for k, v in _row(s.id).items() if k != "status"}])
    with pytest.raises(InputError, match=rf"results file '.*r\{suffix}' has no 'status' column"):
        run_scenarios([s], workers=1, out=out)


def test_a_results_file_without_model_is_refused_naming_it(tmp_path: Path) -> None:
    (s,) = grid([SMALL], ["1x1xH100"], ["chatbot"])
    out = tmp_path / "r.csv"
    write_rows(out, [{k: v for k, v in _row(s.id).items() if k != "model"}])
    with pytest.raises(InputError, match=r"results file '.*r\.csv' has no 'model' column"):
        run_scenarios([s], workers=1, out=out)
    write_rows(out, [{k: v for k, v in _row(s.id).items() if k != "tp"}, _row("other")])
    res = run_scenarios([s], workers=1, out=out)  # rows as --json shows them; the table reads tp
    with pytest.raises(InputError, match=r"r\.csv': the row of scenario '[0-9a-f]+' has no 'tp'"):
        res.table()
    write_rows(out, [_row(s.id)])
    res = run_scenarios([s], workers=1, out=out)  # a whole row: taken as finished, shown
    assert res.skipped == 1 and "4,782" in res.table()
    assert SweepResult([_row("x")]).counts() == {"ok": 1}  # rows made by hand are not checked


def test_a_results_file_that_is_a_symlink_is_written_through(tmp_path: Path) -> None:
    """The rename replaced the link with a file (the target kept its old rows), and each path had its own
    lock: a sweep on the link and one on its target ran together."""
    real, link = tmp_path / "real" / "r.jsonl", tmp_path / "a" / "r.jsonl"
    real.parent.mkdir()
    link.parent.mkdir()
    write_rows(real, [_row("1")])
    link.symlink_to(Path("..") / "real" / "r.jsonl")
    write_rows(link, [_row("1"), _row("2")])
    assert link.is_symlink() and len(read_rows(real)) == 2
    first = ResultStore(real)
    with pytest.raises(InputError, match="another sweep is writing it now"):
        ResultStore(link)
    first.close()
