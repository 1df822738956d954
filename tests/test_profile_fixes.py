"""`profile` and workload files: a repeated JSON key is refused as YAML's is, a benchmark result's
impossible load fields are refused (not read as the default load), a file mixing benchmark runs with
request lines says what it skipped, a benchmark too long to replay is written without its prompt count,
and a ramp-up from 1e-300 requests/s is one line with no numpy warnings (workload_profile.py,
models/config_file.py)."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.models.config_file import parse_config_text
from autoparallel.workload_profile import (
    MAX_REPLAYED_PROMPTS,
    load_workload_file,
    profile_file,
    to_serving,
    write_workload_file,
)


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


# 1. A key repeated in one JSON object.


@pytest.mark.parametrize(
    ("text", "key", "line", "first"),
    [
        ('{"serving": {"name": "x", "isl": 1000, "osl": 200, "isl": 50000}}', "'isl'", 1, 1),
        (
            '{"serving": {"name": "a", "isl": 1000, "osl": 200},\n'
            ' "serving": {"name": "b", "isl": 9, "osl": 2}}',
            "'serving'",
            2,
            1,
        ),
        ('{"serving": {\n "name": "x",\n "isl": 1000,\n "osl": 200,\n "is\\u006c": 5}}', "'isl'", 5, 3),
        ('{"serving": {"name": "x", "isl": 1000, "osl": 200, "tags": [{"a": 1, "a": 2}]}}', "'a'", 1, 1),
    ],
)
def test_a_workload_file_that_repeats_a_key_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, line: int, first: int
) -> None:
    """`json.loads` kept the last value: `isl` twice planned 50,000, two `serving` objects the second."""
    f = tmp_path / "w.json"
    f.write_text(text)
    with pytest.raises(InputError, match=f"repeats key {key} at line {line} \\(first at line {first}\\)"):
        load_workload_file(f)
    assert main(["plan", "meta-llama/Llama-3.1-8B", "--cluster", "1xH100", "--workload-file", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert "repeats key" in err and len(err.splitlines()) == 1


def test_equal_keys_in_different_objects_and_a_models_config_still_read() -> None:
    """Keys repeat across objects freely; a model's config.json keeps its last value, as transformers
    reads it (`unique_keys` off), so a model the engines load is not refused."""
    doc = parse_config_text('{"a": {"k": 1}, "b": {"k": 2}, "c": ["k", "k"]}', "x.json", unique_keys=True)
    assert doc == {"a": {"k": 1}, "b": {"k": 2}, "c": ["k", "k"]}
    assert parse_config_text('{"n": 1, "n": 2}', "config.json") == {"n": 2}


# 2. A benchmark result's load fields.

LENS = {"endpoint_type": "openai", "input_lens": [100, 200, 300, 400], "output_lens": [10, 20, 30, 40]}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_concurrency", 0),
        ("max_concurrency", -3),
        ("max_concurrency", True),
        ("max_concurrency", 2.5),
        ("max_concurrency", "8"),
        ("request_rate", -5),
        ("request_rate", 0),
        ("request_rate", True),
        ("request_rate", "NaN"),
        ("request_rate", "fast"),
        pytest.param("request_rate", -(10**400), id="request_rate--10^400"),
        ("burstiness", 0),
        ("burstiness", -1),
        ("burstiness", "NaN"),
        ("burstiness", False),
    ],
)
def test_an_impossible_load_field_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: Any
) -> None:
    """They were read as no cap, every prompt at once, or Poisson arrivals."""
    f = _write(tmp_path / "r.json", {**LENS, "request_rate": 4.0, field: value})
    with pytest.raises(InputError, match=f"{field} "):
        profile_file(f)
    assert main(["profile", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and len(err.splitlines()) == 1


def test_legitimate_load_fields_still_read(tmp_path: Path) -> None:
    prof = profile_file(_write(tmp_path / "a.json", {**LENS, "request_rate": 4.0, "max_concurrency": 4.0}))
    assert prof.max_concurrency == 4  # an integral float
    assert to_serving(prof).concurrency is None  # at least the 4 prompts: no cap (`Serving.concurrency`)
    for at_once in ("inf", math.inf, None, 10**400):
        prof = profile_file(_write(tmp_path / "b.json", {**LENS, "request_rate": at_once}))
        assert prof.request_rate is None and prof.max_concurrency is None
    prof = profile_file(_write(tmp_path / "c.json", {**LENS, "request_rate": 4.0, "burstiness": None}))
    assert prof.request_rate == 4.0 and to_serving(prof).burstiness == 1.0  # null: vLLM's default
    prof = profile_file(_write(tmp_path / "d.json", {**LENS, "request_rate": 4.0, "burstiness": "inf"}))
    assert prof.interarrival_cv == 0.0


# 3. Benchmark runs and request lines in one file.


def test_a_file_mixing_runs_and_request_lines_profiles_the_larger_and_counts_the_other(
    tmp_path: Path,
) -> None:
    """One SGLang run of 50 requests and one request line profiled 1 request, malformed 0."""
    rng = np.random.default_rng(2)
    run = {
        "backend": "sglang",
        "dataset_name": "random",
        "request_rate": 4.0,
        "completed": 50,
        "input_lens": rng.integers(100, 900, 50).tolist(),
        "output_lens": rng.integers(10, 90, 50).tolist(),
    }
    line = {"prompt_tokens": 500, "completion_tokens": 50}
    f = tmp_path / "mixed.jsonl"
    f.write_text(json.dumps(run) + "\n" + json.dumps(line) + "\n")
    prof = profile_file(f)
    assert (prof.source, prof.requests, prof.malformed, prof.malformed_lines) == ("sglang-bench", 50, 1, (2,))
    small = {**run, "completed": 2, "input_lens": [100, 200], "output_lens": [10, 20]}
    f.write_text("\n".join([json.dumps(line)] * 3 + [json.dumps(small)]) + "\n")
    prof = profile_file(f)
    assert (prof.source, prof.requests, prof.malformed, prof.malformed_lines) == ("request-log", 3, 1, (4,))


# 4. A benchmark too long to replay.


def test_a_benchmark_too_long_to_replay_is_written_without_its_prompt_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000,000 prompts were written as num_prompts, which plan and evaluate then refused (the replay
    runs past its pass budget); the rate and cap stay, and `profile` says why on stderr."""
    f = _write(tmp_path / "r.json", {**LENS, "request_rate": 4.0, "max_concurrency": 64})
    prof = profile_file(f)
    assert to_serving(prof).num_prompts == 4
    for n in (MAX_REPLAYED_PROMPTS + 1, 1_000_000, 5_000_000):
        big = prof.model_copy(update={"requests": n})
        serving = to_serving(big)
        assert serving.num_prompts is None and serving.request_rate == 4.0 and serving.concurrency == 64
    out = tmp_path / "w.json"
    write_workload_file(out, big, serving)
    assert load_workload_file(out).num_prompts is None
    kept = to_serving(prof.model_copy(update={"requests": MAX_REPLAYED_PROMPTS}))
    assert kept.num_prompts == MAX_REPLAYED_PROMPTS
    from autoparallel.cli import main

    monkeypatch.setattr("autoparallel.workload_profile.MAX_REPLAYED_PROMPTS", 3)
    capsys.readouterr()
    assert main(["profile", str(f), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("note:") and "4 prompts" in err and len(err.strip().splitlines()) == 1
    assert load_workload_file(out).num_prompts is None


# 5. A ramp-up from 1e-300 requests/s.


@pytest.mark.parametrize("strategy", ["exponential", "linear"])
def test_a_ramp_from_below_the_rate_floor_is_one_line_without_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], strategy: str
) -> None:
    doc = {
        **LENS,
        "request_rate": "inf",
        "ramp_up_strategy": strategy,
        "ramp_up_start_rps": 1e-300,
        "ramp_up_end_rps": 20,
    }
    f = _write(tmp_path / "r.json", doc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow RuntimeWarning fails the test
        with pytest.raises(InputError, match="ramp_up_start_rps 1e-300"):
            profile_file(f)
        assert main(["profile", str(f)]) == 2
        err = capsys.readouterr().err.strip()
        assert "ramp-up" in err and len(err.splitlines()) == 1
        prof = profile_file(_write(f, {**doc, "ramp_up_start_rps": 1e-9, "ramp_up_end_rps": 1e7}))
    assert prof.load == "ramp-mean" and prof.request_rate is not None


# Integers too long for a float, where a log or a result holds numbers.


def test_a_400_digit_integer_is_malformed_not_an_internal_error(tmp_path: Path) -> None:
    """float() of it overflows: a stamp, a length or a start time of 10^400 was exit 3."""
    huge = 10**400
    log = tmp_path / "log.jsonl"
    rows = [
        {"prompt_tokens": 10, "completion_tokens": 5, "timestamp": huge},
        {"prompt_tokens": 10, "completion_tokens": 5, "timestamp": 5},
        {"prompt_tokens": huge, "completion_tokens": 5, "timestamp": 6},
        {"prompt_tokens": 10, "completion_tokens": 5, "timestamp": 7},
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    prof = profile_file(log)
    assert prof.requests == 2 and prof.malformed_lines == (1, 3)
    result = {**LENS, "input_lens": [100, huge, 300, 400], "start_times": [0, huge, 2, 3]}
    prof = profile_file(_write(tmp_path / "r.json", result))
    assert prof.requests == 3 and prof.malformed == 1


def test_profiling_a_10000_request_log_stays_fast(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    t = 1.7e9 + np.cumsum(rng.exponential(0.2, 10_000))
    lens = rng.integers(1, 2000, (10_000, 2))
    rows = [
        json.dumps({"timestamp": float(a), "prompt_tokens": int(i), "completion_tokens": int(o)})
        for a, (i, o) in zip(t, lens, strict=True)
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(rows) + "\n")
    start = time.perf_counter()
    prof = profile_file(log)
    assert time.perf_counter() - start < 2.0 and prof.requests == 10_000
