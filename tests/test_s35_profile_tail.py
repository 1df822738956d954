"""A long-tailed length log: the workload's stored shape carries the tail's mean (bug 1).

The profile kept percentiles 0..100 with p100 the longest request; the replay (`workload.lengths_at`)
read them piecewise linearly and rescaled every draw to the mean, and `workload._spread` integrated the
same trapezoids: a log-normal log of mean 922 read as a shape of mean 1,029 (every prompt scaled by
0.896) and a spread of 1.83 where the sample's was 0.99."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autoparallel.perf.serving_load import draw_lengths
from autoparallel.workload import _spread
from autoparallel.workload_profile import LengthStats, WorkloadProfile, profile_file, to_serving


def _lognormal_log(path: Path, n: int = 10_000) -> None:
    """Log-normal prompts (median 665, p99 ~4,400, max ~30,000) and outputs, Poisson at 5/s."""
    rng = np.random.default_rng(0)
    t = 1.7e9 + np.cumsum(rng.exponential(0.2, n))
    prompts = np.maximum(1, rng.lognormal(6.5, 0.8, n).astype(int))
    outputs = np.maximum(1, rng.lognormal(5.0, 0.7, n).astype(int))
    path.write_text(
        "".join(
            json.dumps({"timestamp": float(a), "prompt_tokens": int(i), "output_tokens": int(o)}) + "\n"
            for a, i, o in zip(t, prompts, outputs, strict=True)
        )
    )


def _shape_mean(quantiles: tuple[float, ...]) -> float:
    """The mean of the shape as the replay samples it (strata (i + 1/2) / n, interpolated)."""
    probs = (np.arange(100_000) + 0.5) / 100_000
    return float(np.interp(probs, np.linspace(0, 1, len(quantiles)), quantiles).mean())


def test_the_written_shape_has_the_samples_mean_and_spread(tmp_path: Path) -> None:
    log = tmp_path / "lognormal.jsonl"
    _lognormal_log(log)
    prof = profile_file(log)
    serving = to_serving(prof)
    for stats, quantiles in ((prof.isl, serving.isl_quantiles), (prof.osl, serving.osl_quantiles)):
        assert quantiles is not None
        # The replay's rescale is a small correction, not a shrink of the body.
        assert _shape_mean(quantiles) == pytest.approx(stats.mean, rel=0.005)
        second = 1.0 + _spread(0.0, quantiles)
        assert second == pytest.approx(1.0 + stats.cv**2, rel=0.02)  # E[x²] / E[x]²
        assert quantiles[:-1] == stats.quantiles[:-1]  # the body is the sample's percentiles
    drawn = draw_lengths(serving.isl, 0.0, 10_000, 1, serving.isl_quantiles)
    assert np.percentile(drawn, 50) == pytest.approx(prof.isl.p50, rel=0.01)


def test_a_benchmark_whose_tail_is_inside_the_context_keeps_its_mean() -> None:
    """No request left out, a top percent far above the p99 (one output 200 times the median): the
    last value carries the top percent's mean, not the longest request."""
    from autoparallel.workload import mean_carrying_quantiles

    sample = np.concatenate([np.full(990, 100.0), np.full(9, 300.0), [20_000.0]])
    stats = LengthStats(
        mean=float(sample.mean()),
        cv=float(sample.std() / sample.mean()),
        quantiles=tuple(float(x) for x in np.percentile(sample, np.linspace(0, 100, 101))),
    )
    shape = mean_carrying_quantiles(stats.quantiles, stats.mean, 1e7)
    assert _shape_mean(shape) == pytest.approx(stats.mean, rel=0.005)
    assert _shape_mean(stats.quantiles) > 1.5 * stats.mean  # what was written before
    prof = WorkloadProfile(
        source="vllm-bench",
        requests=1000,
        malformed=0,
        malformed_lines=(),
        isl=stats,
        osl=stats,
        request_rate=None,
        interarrival_cv=None,
        gamma_shape=None,
    )
    assert to_serving(prof).isl_quantiles == shape


def test_a_file_written_before_keeps_its_meaning(tmp_path: Path) -> None:
    """Quantiles ending at the longest request (the old files) are still drawn as they were: the
    interpolated shape rescaled to the mean."""
    old = (50.0, 100.0, 400.0)
    drawn = draw_lengths(100, 0.0, 1000, 1, old)
    assert drawn.mean() == pytest.approx(100, abs=1)
    assert drawn.max() == pytest.approx(400 * 100 / _shape_mean(old), rel=0.02)
