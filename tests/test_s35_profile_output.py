"""A log stamped at one time is a finite burst (bug 4); what `profile` prints for capped results, an
SGLang rate without a burstiness, a one-line log, and gzip files (bug 5)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.workload_profile import load_workload_file, profile_file

ROWS = [{"timestamp": 0, "prompt_tokens": 100 + i, "output_tokens": 50 + i} for i in range(20)]


def _lines(rows: Sequence[Mapping[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_a_log_stamped_at_one_time_is_a_finite_burst(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "zero.jsonl"
    log.write_text(_lines(ROWS))
    out = tmp_path / "w.json"
    assert main(["profile", str(log), "-o", str(out)]) == 0
    serving = load_workload_file(out)
    assert serving.num_prompts == 20 and serving.request_rate is None
    assert "a finite burst of 20 prompts" in capsys.readouterr().out


def test_a_one_line_log_is_not_said_to_be_stamped_at_one_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "one.jsonl"
    log.write_text(_lines([{**ROWS[0], "timestamp": 1.7e9}]))
    out = tmp_path / "w.json"
    assert main(["profile", str(log), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "same time" not in text and "one stamped request has no arrival gap" in text
    assert load_workload_file(out).num_prompts is None


def test_a_capped_result_prints_its_cap_and_an_sglang_rate_its_arrivals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lens = {"input_lens": [100, 200, 300, 400], "output_lens": [10, 20, 30, 40]}
    capped = tmp_path / "capped.json"
    capped.write_text(json.dumps({**lens, "request_rate": "inf", "max_concurrency": 32, "tokenizer_id": "m"}))
    assert main(["profile", str(capped)]) == 0
    assert "all at once, at most 32 in flight" in capsys.readouterr().out
    sglang = tmp_path / "sglang.jsonl"
    sglang.write_text(json.dumps({**lens, "request_rate": 4.0, "dataset_name": "random"}) + "\n")
    assert main(["profile", str(sglang)]) == 0
    text = capsys.readouterr().out
    assert "arrival rate: 4 requests/s; Poisson arrivals" in text and "no arrival gaps" not in text


def test_a_gzip_log_is_read_and_a_broken_one_refused_as_gzip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{**r, "timestamp": 1.7e9 + i * 0.5} for i, r in enumerate(ROWS)]
    plain, packed = tmp_path / "log.jsonl", tmp_path / "log.jsonl.gz"
    plain.write_text(_lines(rows))
    packed.write_bytes(gzip.compress(_lines(rows).encode()))
    assert profile_file(packed) == profile_file(plain)
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(_lines(rows).encode())[:40])
    assert main(["profile", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "gzip-compressed but does not decompress" in err and len(err.strip().splitlines()) == 1
