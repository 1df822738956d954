"""`profile` of a vLLM /metrics scrape whose requests run past the last finite bucket (s34 bug 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autoparallel.cli import main
from autoparallel.workload_profile import profile_file, to_serving

EDGES_8K = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
"""vLLM's `build_1_2_5_buckets(8192)` (vllm/v1/metrics/buckets.py): a server at --max-model-len 8192."""


def _scrape(path: Path, prompts: np.ndarray, outputs: np.ndarray, prompt_sum: float | None = None) -> None:
    lines = []
    for name, values in (("request_prompt_tokens", prompts), ("request_generation_tokens", outputs)):
        total = float(values.sum()) if prompt_sum is None or "prompt" not in name else prompt_sum
        for e in EDGES_8K:
            below = float((values <= e).sum())
            lines.append(f'vllm:{name}_bucket{{engine="0",le="{float(e)}",model_name="m"}} {below}')
        lines.append(f'vllm:{name}_bucket{{engine="0",le="+Inf",model_name="m"}} {float(len(values))}')
        lines.append(f'vllm:{name}_count{{model_name="m",engine="0"}} {float(len(values))}')
        lines.append(f'vllm:{name}_sum{{model_name="m",engine="0"}} {total}')
    path.write_text("\n".join(lines) + "\n")


def test_requests_above_the_last_bucket_are_spread_at_the_mean_the_sum_leaves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prompts of 3,000 to 7,500 tokens on an 8,192-token server: 56 % sit only in +Inf. They were
    piled at the 5,000 edge (mean 5,255 above a "max" of 5,000, p99 4,954, max_model_len 5,555);
    now they are spread above it at the mean `_sum` leaves them, and reported."""
    rng = np.random.default_rng(8)
    prompts = rng.integers(3000, 7501, 5000).astype(float)
    outputs = rng.integers(100, 501, 5000).astype(float)
    scrape = tmp_path / "metrics8k.txt"
    _scrape(scrape, prompts, outputs)
    prof = profile_file(scrape)
    above = prof.isl.above_last_bucket
    over = prompts[prompts > 5000]
    assert above is not None and above.edge == 5000 and above.requests == len(over)
    assert above.share == pytest.approx(len(over) / len(prompts), abs=1e-6)
    assert 5000 < above.mean < 1.15 * over.mean() and above.spread_to >= above.mean
    assert prof.osl.above_last_bucket is None
    assert abs(prof.isl.mean - prompts.mean()) < 1e-6
    assert prof.isl.max >= prof.isl.mean and prof.isl.p99 > 5000
    assert prof.isl.p50 == pytest.approx(np.percentile(prompts, 50), rel=0.1)
    serving = to_serving(prof)
    assert serving.max_model_len is not None and serving.max_model_len >= np.percentile(prompts, 99) + 500
    out = tmp_path / "w.json"
    assert main(["profile", str(scrape), "-o", str(out)]) == 0
    capsys.readouterr()
    doc = json.loads(out.read_text())
    assert doc["profile"]["isl"]["above_last_bucket"]["requests"] == len(over)


def test_a_mean_above_every_bucket_with_none_above_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `_sum` whose mean exceeds the last edge while no request is above it is not one scrape."""
    prompts = np.full(100, 400.0)
    scrape = tmp_path / "bad.txt"
    _scrape(scrape, prompts, prompts, prompt_sum=100 * 6000.0)
    assert main(["profile", str(scrape)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the top edge of its buckets" in err[0]


def test_the_profile_text_says_how_many_lengths_lie_above_the_last_bucket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(9)
    scrape = tmp_path / "metrics.txt"
    _scrape(scrape, rng.integers(3000, 7501, 500).astype(float), rng.integers(100, 501, 500).astype(float))
    assert main(["profile", str(scrape)]) == 0
    assert "prompt tokens above the last bucket" in capsys.readouterr().out
