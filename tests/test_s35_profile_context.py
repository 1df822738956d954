"""Requests longer than the written max_model_len (bug 2): the workload is of the requests its context
admits, and `profile` says how many it leaves out and why.

On a log whose 0.1 % of prompts are 100,000 tokens the written max_model_len was 1,791 (the p99 prompt +
the p99 output), which vLLM's server refuses them at, yet the mean prompt (1,097) counted them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autoparallel.cli import main
from autoparallel.workload_profile import load_workload_file, profile_file, to_serving


def _rag_log(path: Path, n: int = 5000) -> None:
    rng = np.random.default_rng(2)
    prompts = rng.integers(500, 1501, n)
    prompts[::1000] = 100_000  # 0.1 %
    outputs = rng.integers(100, 301, n)
    path.write_text(
        "".join(
            json.dumps({"timestamp": 1.7e9 + i * 0.1, "prompt_tokens": int(p), "output_tokens": int(o)})
            + "\n"
            for i, (p, o) in enumerate(zip(prompts, outputs, strict=True))
        )
    )


def test_requests_the_context_refuses_are_left_out_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "rag.jsonl"
    _rag_log(log)
    prof = profile_file(log)
    serving = to_serving(prof)
    assert serving.max_model_len is not None and serving.max_model_len < 2000
    assert prof.isl.mean < 1010 and serving.isl < 1010  # the mean counted them: 1,097 before
    assert prof.isl.max + prof.osl.max <= serving.max_model_len + 300  # no 100k prompt in the lengths
    assert prof.requests == 5000 and prof.left_out >= 5 and prof.left_out_longest is not None
    assert prof.left_out_longest[0] == 100_000
    assert serving.request_rate == pytest.approx(10.0 * prof.kept / prof.requests, rel=1e-3)
    out = tmp_path / "w.json"
    assert main(["profile", str(log), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"left out: {prof.left_out} requests" in text and "the longest prompt (100,000)" in text
    assert load_workload_file(out) == serving


def test_a_small_benchmark_keeps_its_longest_request(tmp_path: Path) -> None:
    """The p99s are observed lengths: three prompts of 100, 200 and 300 tokens are all kept (an
    interpolated p99 of 298 would have left the longest out)."""
    result = tmp_path / "bench.json"
    lens = {"input_lens": [100, 200, 300], "output_lens": [10, 20, 30]}
    result.write_text(json.dumps({**lens, "request_rate": "inf", "tokenizer_id": "x"}))
    prof = profile_file(result)
    assert prof.left_out == 0 and to_serving(prof).num_prompts == 3
    assert to_serving(prof).max_model_len == 330
