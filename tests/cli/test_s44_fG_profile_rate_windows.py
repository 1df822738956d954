"""`profile`: a rate that varies over the log, workload files without isl / osl, fractional token
counts (workload_profile.py `busiest_windows`, `load_workload_file`, `_tokens`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.workload import Serving
from autoparallel.workload_profile import load_workload_file, profile_file, to_serving, write_workload_file

DAY = 86_400.0
T0 = 1.76e9


def _write(path: Path, t: np.ndarray, isl: int = 300, osl: int = 80) -> None:
    """A log of the arrival times `t` (seconds from T0), every request of one shape (none left out)."""
    rows = [json.dumps({"timestamp": T0 + float(a), "prompt_tokens": isl, "output_tokens": osl}) for a in t]
    path.write_text("\n".join(rows) + "\n")


def _diurnal(seed: int, mean: float = 0.17) -> np.ndarray:
    """A day of arrivals whose rate rises and falls: mean * (1 + 0.8 sin(2 pi t / day)), thinned from a
    Poisson stream at its peak."""
    rng = np.random.default_rng(seed)
    top = mean * 1.8
    t = np.cumsum(rng.exponential(1.0 / top, int(top * DAY * 1.1)))
    t = t[t < DAY]
    keep = rng.random(len(t)) < mean * (1 + 0.8 * np.sin(2 * np.pi * t / DAY)) / top
    return t[keep]


def _busiest(t: np.ndarray, seconds: float) -> float:
    """The busiest window's rate as pandas counts it: the most arrivals in a trailing window."""
    s = pd.Series(1.0, index=pd.to_datetime(T0 + t, unit="s"))
    return float(s.rolling(f"{seconds:g}s").sum().max()) / seconds


def test_a_diurnal_log_is_flagged_at_its_busiest_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = _diurnal(7)
    log, out = tmp_path / "day.jsonl", tmp_path / "day.json"
    _write(log, t)
    prof = profile_file(log)
    assert prof.left_out == 0
    windows = {w.seconds: w for w in prof.busiest}
    assert set(windows) == {300.0, 3600.0}
    for seconds, w in windows.items():
        assert w.rate == pytest.approx(_busiest(t, seconds), rel=0.05)
        assert w.start_utc is not None and w.start_utc.endswith("UTC")
    hour = windows[3600.0]
    assert hour.varies and hour.rate > hour.steady_limit > prof.request_rate  # type: ignore[operator]
    # 5 minutes hold ~50 requests at this mean: their busiest reaches 1.8x by chance alone, not flagged
    assert not windows[300.0].varies and windows[300.0].steady_limit > 2 * prof.request_rate  # type: ignore[operator]
    # the day's peak (1.8x the mean, at 6 h) is planned from the busiest hour
    assert prof.peak_rate == windows[3600.0].rate
    assert prof.peak_rate == pytest.approx(1.8 * prof.request_rate, rel=0.08)  # type: ignore[operator]
    assert 4 * 3600 < hour.start < 7 * 3600
    assert main(["profile", str(log), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "busiest windows: 5 minutes " in text and "; hour " in text
    (line,) = [x for x in text.splitlines() if x.startswith("rate varies over the log")]
    assert f"--request-rate {prof.peak_rate:.4g}" in line and "1.1x the mean" in line
    doc = json.loads(out.read_text())
    assert doc["profile"]["peak_rate"] == pytest.approx(prof.peak_rate)
    assert doc["serving"]["request_rate"] == pytest.approx(prof.request_rate, rel=1e-5)  # the mean
    assert load_workload_file(out) == to_serving(prof)
    # a file written before, with no busiest windows in its profile, still loads
    del doc["profile"]["busiest"], doc["profile"]["peak_rate"]
    out.write_text(json.dumps(doc))
    assert load_workload_file(out) == to_serving(prof)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("rate", [1.0, 0.2])
def test_a_steady_poisson_log_is_not_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int, rate: float
) -> None:
    """10,000 Poisson arrivals at 1 request/s (33 five-minute windows) and 0.2 (14 hours: both
    lengths): the busiest window is printed, not called a varying rate."""
    t = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, 10_000))
    log = tmp_path / "steady.jsonl"
    _write(log, t)
    prof = profile_file(log)
    assert [w.seconds for w in prof.busiest] == ([300.0] if rate == 1.0 else [300.0, 3600.0])
    assert prof.peak_rate is None and not any(w.varies for w in prof.busiest)
    assert all(w.rate < w.steady_limit for w in prof.busiest)
    assert main(["profile", str(log)]) == 0
    text = capsys.readouterr().out
    assert "busiest window" in text and "rate varies" not in text


def test_a_workload_file_without_isl_or_osl_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log, out = tmp_path / "r.jsonl", tmp_path / "w.json"
    _write(log, np.arange(200) * 0.5, isl=882, osl=190)
    assert main(["profile", str(log), "-o", str(out)]) == 0
    whole = json.loads(out.read_text())
    for field, mean in (("isl", "882.0"), ("osl", "190.0")):
        doc = json.loads(json.dumps(whole))
        del doc["serving"][field]
        f = tmp_path / f"no_{field}.json"
        f.write_text(json.dumps(doc))
        with pytest.raises(
            InputError, match=rf"{f} has no serving\.{field}.*profile's {field}\.mean is {mean}"
        ):
            load_workload_file(f)
        capsys.readouterr()
        argv = ["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x1xH100", "--workload-file", str(f)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"serving.{field}" in err and str(f) in err
    # a hand-written file without a profile: the field is named, no mean is made up
    f = tmp_path / "hand.json"
    f.write_text(json.dumps({"serving": {"name": "mine", "osl": 100}}))
    with pytest.raises(InputError, match=r"has no serving\.isl, the mean prompt length in tokens: add it"):
        load_workload_file(f)
    # a profile whose means are the defaults (1,024 / 256) writes them too
    prof = profile_file(log)
    serving = Serving(name="profiled", isl=1024, osl=256, request_rate=2.0)
    write_workload_file(out, prof, serving)
    body = json.loads(out.read_text())["serving"]
    assert (body["isl"], body["osl"]) == (1024, 256)
    assert load_workload_file(out) == serving


def test_fractional_token_counts_are_malformed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {"timestamp": 0.0, "prompt_tokens": 100.0, "output_tokens": 50},  # whole: read
        {"timestamp": 0.5, "prompt_tokens": 100.9, "output_tokens": 50},
        {"timestamp": 1.0, "prompt_tokens": 100, "output_tokens": 50.5},
        {"timestamp": 1.5, "prompt_tokens": 120, "output_tokens": 60.0},
    ]
    log = tmp_path / "f.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    prof = profile_file(log)
    assert (prof.requests, prof.malformed, prof.malformed_lines) == (2, 2, (2, 3))
    assert prof.isl.mean == 110.0 and prof.osl.mean == 55.0
    assert main(["profile", str(log)]) == 0
    assert "malformed: 2 skipped (lines 2, 3)" in capsys.readouterr().out
    # every count fractional: no usable request, not a workload of truncated counts
    log.write_text(json.dumps({"timestamp": 0, "prompt_tokens": 100.9, "output_tokens": 50.9}) + "\n")
    with pytest.raises(InputError, match="no usable request"):
        profile_file(log)
    # a benchmark result's per-request lengths likewise
    bench = tmp_path / "b.json"
    bench.write_text(
        json.dumps({"request_rate": "inf", "input_lens": [100, 200.5, 300], "output_lens": [10, 20, 30.0]})
    )
    prof = profile_file(bench)
    assert (prof.requests, prof.malformed) == (2, 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_second_stamps_read_the_burstiness_from_the_counts(tmp_path: Path, seed: int) -> None:
    """Stamps too coarse for the gaps (whole seconds at 4 requests/s) leave the spread unknown; read as 1,
    a steady bursty log (gamma shape 0.1) was flagged as a rate varying 1.25x in 6 of 6 logs. The counts'
    Allan variance gives its spread; a rate that really swings is still flagged."""
    rng = np.random.default_rng(seed)
    span = 2 * 3600.0
    steady = np.cumsum(rng.gamma(0.1, 1 / (4 * 0.1), int(4 * span * 1.3)))
    _write(tmp_path / "steady.jsonl", np.floor(steady[steady < span]))
    prof = profile_file(tmp_path / "steady.jsonl")
    assert prof.stamp_resolution == 1.0 and prof.peak_rate is None, prof.busiest
    poisson = np.cumsum(rng.exponential(1 / 7.2, int(7.2 * span * 1.1)))
    poisson = poisson[poisson < span]
    swing = poisson[rng.random(len(poisson)) < (1 + 0.8 * np.sin(2 * np.pi * poisson / span)) / 1.8]
    _write(tmp_path / "swing.jsonl", np.floor(swing))
    prof = profile_file(tmp_path / "swing.jsonl")
    assert prof.peak_rate is not None and prof.peak_rate > 1.5 * prof.request_rate  # type: ignore[operator]


def test_a_burst_far_past_chance_is_flagged_and_planned_for(tmp_path: Path) -> None:
    """4,000 requests in one 5-minute window of a 4 h log (44x its mean): the window held fewer than 100
    requests at the mean, so it was not flagged, and a log whose hour was flagged too pointed the plan at
    the hour's rate, 12x below its 5-minute burst."""
    rng = np.random.default_rng(3)
    background = np.sort(rng.uniform(0, 4 * 3600.0, 140))
    burst = np.sort(7200.0 + rng.uniform(0, 300.0, 4000))
    _write(tmp_path / "burst.jsonl", np.sort(np.concatenate([background, burst])))
    prof = profile_file(tmp_path / "burst.jsonl")
    five = {w.seconds: w for w in prof.busiest}[300.0]
    assert five.varies and prof.peak_rate == five.rate  # the highest flagged window, not the longest
    assert five.rate > 10 * prof.request_rate  # type: ignore[operator]
