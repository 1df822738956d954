"""Stamps too coarse to show burstiness (bug 3), and evenly spaced float stamps (bug 5).

A Poisson stream of 5 requests/s stamped in whole seconds (vLLM's `ChatCompletionResponse.created =
int(time.time())`) profiled as "inter-arrival spread 2.00 (gamma shape 0.25)" and wrote burstiness
0.25; stamps every 0.1 s at epoch 1.7e9 printed "gamma shape 1000000000000.00"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autoparallel.cli import main
from autoparallel.workload_profile import profile_file, to_serving


def _write(path: Path, stamps: np.ndarray, key: str = "timestamp") -> Path:
    path.write_text(
        "".join(
            json.dumps({key: s, "usage": {"prompt_tokens": 500, "completion_tokens": 100}}) + "\n"
            for s in stamps.tolist()
        )
    )
    return path


def test_whole_second_stamps_give_the_rate_not_a_burstiness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arrivals = 1.7e9 + np.cumsum(np.random.default_rng(4).exponential(0.2, 3000))
    log = _write(tmp_path / "created.jsonl", np.floor(arrivals).astype(int), key="created")
    prof = profile_file(log)
    serving = to_serving(prof)
    assert serving.burstiness == 1.0 and serving.request_rate == pytest.approx(5.0, rel=0.05)
    assert prof.stamp_resolution == 1.0 and prof.interarrival_cv is None and prof.gamma_shape is None
    assert main(["profile", str(log)]) == 0
    out = capsys.readouterr().out
    assert "resolution (1 s)" in out and "gamma shape" not in out


def test_fine_stamps_and_slow_whole_second_stamps_keep_their_burstiness(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    fine = 1.7e9 + np.cumsum(rng.gamma(0.25, 0.2 / 0.25, 3000))  # float stamps, spread 2
    prof = profile_file(_write(tmp_path / "fine.jsonl", fine))
    assert prof.interarrival_cv == pytest.approx(2.0, rel=0.1) and prof.stamp_resolution is None
    slow = np.floor(1.7e9 + np.cumsum(rng.gamma(0.25, 20 / 0.25, 3000))).astype(int)  # a gap of 20 s
    prof = profile_file(_write(tmp_path / "slow.jsonl", slow, key="created"))
    assert prof.interarrival_cv == pytest.approx(2.0, rel=0.1) and prof.stamp_resolution is None


def test_evenly_spaced_float_stamps_are_evenly_spaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _write(tmp_path / "even.jsonl", 1.7e9 + np.arange(2000) * 0.1)
    prof = profile_file(log)
    assert prof.interarrival_cv == 0 and prof.request_rate == pytest.approx(10.0)
    assert to_serving(prof).burstiness == 1000.0
    assert main(["profile", str(log)]) == 0
    out = capsys.readouterr().out
    assert "evenly spaced arrivals" in out and "1000000000000" not in out
