"""Session 39 fixes: ISO stamps read alike on Python 3.10 and 3.11+ (`workload_profile.iso_seconds`) and a
metrics scrape's length spread from its buckets (`workload_profile._histogram_cv`); a second Ctrl-C
during a pool sweep's shutdown is tests/cli/test_s34_sweep_interrupt.py's."""

from __future__ import annotations

import calendar
import json
import math
from pathlib import Path

import numpy as np
import pytest

from autoparallel.workload_profile import _seconds, iso_seconds, profile_file

MIDNIGHT = float(calendar.timegm((2026, 1, 1, 0, 0, 0)))
"""2026-01-01T00:00:00Z in epoch seconds, computed without `datetime`."""

STAMPS = {
    "2026-01-01T00:00:00.123456789Z": MIDNIGHT + 0.123456,  # nanoseconds: cut to microseconds
    "2026-01-01T00:00:00.1Z": MIDNIGHT + 0.1,  # Go's RFC3339Nano trims trailing zeros
    "2026-01-01T00:00:00.12Z": MIDNIGHT + 0.12,
    "2026-01-01T00:00:00.123Z": MIDNIGHT + 0.123,
    "2026-01-01T00:00:00Z": MIDNIGHT,  # no fraction
    "2026-01-01t00:00:00.5z": MIDNIGHT + 0.5,  # RFC 3339 allows both letters in lower case
    "2026-01-01T05:30:00+05:30": MIDNIGHT,
    "2026-01-01T05:30:00.25+0530": MIDNIGHT + 0.25,
    "2025-12-31T18:30:00,75-05:30": MIDNIGHT + 0.75,
    "2026-01-01 00:00:00.000001+00:00": MIDNIGHT + 1e-6,
    "20260101T000000Z": MIDNIGHT,
    "2026-01-01T00:00Z": MIDNIGHT,
}


@pytest.mark.parametrize(("stamp", "expected"), STAMPS.items())
def test_iso_stamps_read_alike_on_every_python(stamp: str, expected: float) -> None:
    # `datetime.fromisoformat` on 3.10 refused every stamp here but the +05:30 one without a fraction;
    # 3.11 refused the lower-case z. 5e-7 s: a rounded (not cut) fraction of nanoseconds is 1e-6 off.
    assert iso_seconds(stamp) == pytest.approx(expected, abs=5e-7)
    assert _seconds(stamp) == pytest.approx(expected, abs=5e-7)


@pytest.mark.parametrize(
    "text", ["2026-13-01T00:00:00Z", "2026-01-01T25:00Z", "2026-01-01T00:00:00+24:00", "2026-01-01Tnoon", "x"]
)
def test_a_stamp_of_no_real_time_is_no_stamp(text: str) -> None:
    assert iso_seconds(text) is None and _seconds(text) is None


def test_a_bare_eight_digit_string_is_a_number() -> None:
    assert iso_seconds("20260101") is None and _seconds("20260101") == 20260101.0


def test_a_log_of_nanosecond_and_trimmed_stamps_is_read_whole(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    at = np.cumsum(rng.exponential(0.2, 300))
    lines = []
    for n, t in enumerate(at):
        whole, frac = divmod(float(t), 1.0)
        digits = f"{frac:.9f}"[2:]
        digits = digits.rstrip("0") if n % 3 else digits  # Go trims a fraction's trailing zeros
        minute, second = divmod(int(whole), 60)
        stamp = f"2026-01-01T00:{minute:02d}:{second:02d}{'.' + digits if digits else ''}Z"
        lines.append(json.dumps({"prompt_tokens": 100 + n, "output_tokens": 50, "timestamp": stamp}))
    log = tmp_path / "nano.jsonl"
    log.write_text("\n".join(lines) + "\n")
    prof = profile_file(log)
    assert (prof.requests, prof.malformed) == (300, 0)
    assert prof.request_rate == pytest.approx(299 / float(at[-1] - at[0]), rel=1e-5)


def _vllm_edges(max_model_len: int) -> list[int]:
    """vLLM's length-histogram edges: the 1-2-5 steps up to `max_model_len` (vllm/v1/metrics/buckets.py
    `build_1_2_5_buckets`)."""
    out: list[int] = []
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step > max_model_len:
                return out
            out.append(m * step)
        step *= 10


def _scrape(prompts: np.ndarray, outputs: np.ndarray, max_model_len: int = 8192) -> str:
    """A vLLM /metrics scrape of these requests' prompt and output lengths."""
    lines = []
    for name, lengths in (("prompt", prompts), ("generation", outputs)):
        metric = f"vllm:request_{name}_tokens"
        lines.append(f"# TYPE {metric} histogram")
        for edge in _vllm_edges(max_model_len):
            lines.append(f'{metric}_bucket{{engine="0",le="{float(edge)}"}} {float((lengths <= edge).sum())}')
        lines.append(f'{metric}_bucket{{engine="0",le="+Inf"}} {float(len(lengths))}')
        lines.append(f'{metric}_count{{engine="0"}} {float(len(lengths))}')
        lines.append(f'{metric}_sum{{engine="0"}} {float(lengths.sum())}')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("cv", [0.5, 0.75, 1.0, 1.25, 1.5])
def test_a_scrapes_spread_agrees_with_its_requests(tmp_path: Path, cv: float) -> None:
    # 50,000 lognormal lengths of mean 200 (an output length), as one vLLM scrape of an 8,192-token
    # server counts them. The std of the 101 percentile points read 1.3x to 2.2x the requests' spread.
    rng = np.random.default_rng(int(cv * 100))
    sigma2 = math.log(1 + cv * cv)
    lengths = rng.lognormal(math.log(200) - sigma2 / 2, math.sqrt(sigma2), 50_000)
    lengths = np.clip(np.round(lengths), 1, 8192)
    path = tmp_path / "metrics.txt"
    path.write_text(_scrape(lengths, lengths))
    prof = profile_file(path)
    measured = float(lengths.std() / lengths.mean())
    assert prof.osl.cv == pytest.approx(measured, rel=0.10)
    assert prof.isl.cv == prof.osl.cv


def test_a_few_long_outputs_do_not_make_the_spread(tmp_path: Path) -> None:
    # The hunter's scrape: 30 of 50,000 outputs between 2,000 and 5,000 tokens made p100 5,000 and the
    # spread 2.49, where the same requests as a log measured 0.95.
    counts = {10: 34, 20: 369, 50: 4449, 100: 15696, 200: 32350, 500: 46796, 1000: 49565, 2000: 49970}
    lines = [
        f'vllm:request_generation_tokens_bucket{{le="{float(e)}"}} {float(c)}' for e, c in counts.items()
    ]
    lines += [
        'vllm:request_generation_tokens_bucket{le="5000.0"} 50000.0',
        'vllm:request_generation_tokens_bucket{le="+Inf"} 50000.0',
        "vllm:request_generation_tokens_count 50000.0",
        "vllm:request_generation_tokens_sum 10217957.0",
        'vllm:request_prompt_tokens_bucket{le="1000.0"} 50000.0',
        'vllm:request_prompt_tokens_bucket{le="+Inf"} 50000.0',
        "vllm:request_prompt_tokens_count 50000.0",
        "vllm:request_prompt_tokens_sum 20000000.0",
    ]
    path = tmp_path / "metrics.txt"
    path.write_text("\n".join(lines) + "\n")
    prof = profile_file(path)
    assert prof.osl.mean == pytest.approx(204.36, abs=0.01)
    assert 0.85 < prof.osl.cv < 1.05
    assert prof.osl.max == 5000  # the written shape is the quantiles', unchanged
