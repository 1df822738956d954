"""Input-handling inconsistencies (s45 fE): a workload file's unknown top-level key was dropped unread
(one inside `serving` was refused); a `.jsonl` results file with a UTF-8 byte order mark was "not JSON"
on resume (a `.csv` one was read); a flat llama config.json with a stray `text_config` was "missing"
a key it held at the top level."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.models.parse import spec_from_config
from autoparallel.sweeps.results import read_rows, write_rows
from autoparallel.workload_profile import load_workload_file
from tests.local_model_config import LLAMA

SERVING = {"isl": 512, "osl": 128}


def _file(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "wl.json"
    path.write_text(json.dumps(doc))
    return path


# 1. a workload file's top-level keys: serving, and what `profile` writes beside it


@pytest.mark.parametrize(
    ("extra", "shown"),
    [
        ({"training": {"seq_len": 4096}}, "training"),  # a second workload, dropped unread
        ({"profle": {}}, "profle"),  # a misspelt key
        ({"bad\nkey": 1}, "'bad\\\\nkey'"),  # shown escaped, on one line
    ],
)
def test_an_unknown_top_level_key_is_refused_as_one_inside_serving_is(
    tmp_path: Path, extra: dict[str, Any], shown: str
) -> None:
    path = _file(tmp_path, {"serving": SERVING, **extra})
    with pytest.raises(InputError, match=f"wl.json: {shown}: Extra inputs are not permitted; ") as err:
        load_workload_file(path)
    assert "\n" not in str(err.value)
    inner = _file(tmp_path, {"serving": {**SERVING, "bogus": 1}})
    with pytest.raises(InputError, match=r"serving\.bogus: Extra inputs are not permitted"):
        load_workload_file(inner)


def test_the_keys_profile_writes_are_accepted(tmp_path: Path) -> None:
    """`profile -o` writes serving and profile; `profile --json` adds notes."""
    doc = {"serving": SERVING, "profile": {"source": "request-log", "peak_rate": 2.0}, "notes": ["n"]}
    assert load_workload_file(_file(tmp_path, doc)).isl == 512


def test_the_cli_refuses_it_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, {"serving": SERVING, "training": {}, "extra": 1})
    args = ["evaluate", "meta-llama/Llama-3.2-1B", "--cluster", "1xH100", "--workload-file", str(path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("writes") and "training: Extra inputs are not permitted (and 1 more);" in err
    assert len(err.splitlines()) == 1


# 2. a JSON lines results file with a byte order mark


def test_a_jsonl_results_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    row = {"scenario_id": "a", "model": "m", "status": "ok", "tp": 1, "throughput_tok_s": 4782.43}
    out.write_bytes(b"\xef\xbb\xbf" + (json.dumps(row) + "\r\n").encode())
    assert [r["scenario_id"] for r in read_rows(out)] == ["a"]
    csv = tmp_path / "r.csv"  # as a CSV one is
    write_rows(csv, [row])
    csv.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes())
    assert [r["scenario_id"] for r in read_rows(csv)] == ["a"]


# 4. a flat config with a stray text_config


def test_a_stray_text_config_is_named_where_the_key_was_looked_for() -> None:
    cfg = {**LLAMA, "text_config": {"foo": 1}}
    with pytest.raises(InputError) as err:
        spec_from_config(cfg, name="stray")
    text = str(err.value)
    assert "is missing `text_config.hidden_size` (also looked for `text_config.n_embd`" in text
    assert "its `hidden_size` is at the top level" in text and "remove `text_config`" in text


def test_a_nested_text_config_missing_a_key_everywhere_says_text_config() -> None:
    text = {k: v for k, v in LLAMA.items() if k != "num_attention_heads"}
    cfg = {"model_type": "llama", "text_config": text}
    with pytest.raises(InputError, match=r"is missing `text_config\.num_attention_heads`.*; add it to the"):
        spec_from_config(cfg, name="nested")
    flat = {k: v for k, v in LLAMA.items() if k != "num_attention_heads"}
    with pytest.raises(InputError, match=r"is missing `num_attention_heads`.*; add it to the config$"):
        spec_from_config(flat, name="flat")
    assert spec_from_config({"model_type": "llama", "text_config": LLAMA}, name="ok").hidden_size == 2048
