"""`autoparallel profile` on what vLLM's and SGLang's benchmarks and servers write (workload_profile.py):
ramp-up and self-timed runs, `--burstiness inf`, current SGLang metric names, results saved without
per-request lists, failed requests, and which engine wrote a result."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.workload_profile import profile_file, to_serving


def _vllm_delays(
    n: int, rate: float, shape: float, ramp: tuple[str, float, float] | None, seed: int
) -> np.ndarray:
    """Send times as vllm/benchmarks/serve.py `get_request` draws them: gap i is gamma(shape, 1 / (r_i
    shape)) (1 / r_i when shape is inf), r_i from `_get_current_request_rate`; cumulative, rescaled to
    n / rate only without a ramp."""
    rng = np.random.default_rng(seed)
    if ramp is None:
        rates = np.full(n, rate)
    else:
        strategy, start, end = ramp
        progress = np.arange(n) / max(n - 1, 1)
        rates = (
            start + (end - start) * progress if strategy == "linear" else start * (end / start) ** progress
        )
    gaps = 1.0 / rates if math.isinf(shape) else rng.gamma(shape, 1.0 / (rates * shape))
    delays = np.cumsum(gaps)
    return delays if ramp is not None else delays * (n / rate) / delays[-1]


def _vllm_result(
    n: int = 400,
    *,
    rate: float | str = 5.0,
    burstiness: float = 1.0,
    max_concurrency: int | None = None,
    ramp: tuple[str, float, float] | None = None,
    starts: np.ndarray | None = None,
    detailed: bool = True,
    seed: int = 1,
) -> dict[str, Any]:
    """A `vllm bench serve --save-result [--save-detailed]` result (serve.py `main_async` + `benchmark`)."""
    rng = np.random.default_rng(seed)
    doc: dict[str, Any] = {
        "date": "20250101-000000",
        "endpoint_type": "openai",
        "backend": "openai",
        "label": None,
        "model_id": "Qwen/Qwen3-8B",
        "tokenizer_id": "Qwen/Qwen3-8B",
        "num_prompts": n,
        "request_rate": rate,
        "burstiness": burstiness,
        "max_concurrency": max_concurrency,
        "duration": 100.0,
        "completed": n,
        "failed": 0,
        "request_throughput": 4.0,
    }
    if ramp is not None:
        doc.update(ramp_up_strategy=ramp[0], ramp_up_start_rps=ramp[1], ramp_up_end_rps=ramp[2])
    if detailed:
        doc["input_lens"] = rng.integers(500, 1500, n).tolist()
        doc["output_lens"] = rng.integers(50, 400, n).tolist()
        doc["ttfts"] = [0.05] * n
        doc["itls"] = [[]] * n
        doc["errors"] = [""] * n
        if starts is not None:
            doc["start_times"] = (starts + 81234.5).tolist()  # time.perf_counter(): an arbitrary origin
    return doc


def _write(tmp_path: Path, doc: dict[str, Any], name: str = "result.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))  # json.dumps writes float("inf") as Infinity, as vLLM's does
    return path


def _report(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["profile", str(path)]) == 0
    return capsys.readouterr().out


def test_a_vllm_ramp_up_is_profiled_from_its_start_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--ramp-up-strategy linear --ramp-up-start-rps 1 --ramp-up-end-rps 20` writes request_rate "inf":
    it was profiled "all at once", a burst of every prompt. Its start times are its arrivals."""
    n, ramp = 2000, ("linear", 1.0, 20.0)
    delays = _vllm_delays(n, math.inf, 1.0, ramp, seed=2)
    path = _write(tmp_path, _vllm_result(n, rate="inf", ramp=ramp, starts=delays))
    prof = profile_file(path)
    assert prof.load == "start-times" and prof.ramp_up == "linear 1 to 20 requests/s"
    assert prof.request_rate == pytest.approx((n - 1) / (delays[-1] - delays[0]))
    from autoparallel.workload_profile import ramp_gaps

    mean, cv = ramp_gaps(*ramp, n, 1.0)
    # One draw of the ramp agrees with its expected mean and spread (the span's noise is 3 %: 4 sigma)
    assert prof.request_rate == pytest.approx(mean, rel=0.13)
    assert prof.interarrival_cv == pytest.approx(cv, rel=0.13)
    w = to_serving(prof)
    assert w.request_rate == pytest.approx(prof.request_rate, rel=1e-5) and w.num_prompts == n
    out = _report(path, capsys)
    assert "all at once" not in out and "measured from the benchmark's per-request start times" in out


@pytest.mark.parametrize("strategy", ["linear", "exponential"])
def test_a_ramp_without_start_times_is_planned_at_its_mean_rate(
    tmp_path: Path, strategy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A result without `start_times` (an older vLLM, or a capped run without `queue_times`): the ramp's
    mean rate, n over the expected span sum(1 / r_i), and the spread of its gaps, which agree with the
    generator's own draws."""
    n, ramp = 1000, (strategy, 2.0, 16.0)
    path = _write(tmp_path, _vllm_result(n, rate="inf", ramp=ramp, burstiness=0.5))
    prof = profile_file(path)
    progress = np.arange(n) / (n - 1)
    rates = 2.0 + 14.0 * progress if strategy == "linear" else 2.0 * 8.0**progress
    assert prof.load == "ramp-mean" and prof.request_rate == pytest.approx(n / float(np.sum(1.0 / rates)))
    draws = [np.diff(_vllm_delays(n, math.inf, 0.5, ramp, seed=s)) for s in range(20)]
    pooled = np.concatenate(draws)
    assert prof.request_rate == pytest.approx(len(pooled) / pooled.sum(), rel=0.02)
    assert prof.interarrival_cv == pytest.approx(pooled.std() / pooled.mean(), rel=0.05)
    assert prof.gamma_shape == pytest.approx(1.0 / prof.interarrival_cv**2)
    out = _report(path, capsys)
    assert "all at once" not in out and f"mean of the benchmark's {strategy} 2 to 16 requests/s" in out
    assert "averaged over its run" in out


def test_a_self_timed_trace_is_profiled_but_a_burst_stays_at_once(tmp_path: Path) -> None:
    """`--dataset-name timed_trace` (self-timed) writes request_rate "inf" and no ramp: its start times
    spread over the run (the last sent long after the first answer) are its arrivals. A true burst starts
    every request before the first token comes back: still all at once, not 10^5 requests/s."""
    n = 600
    trace = _vllm_delays(n, 3.0, 1.0, None, seed=4)
    prof = profile_file(_write(tmp_path, _vllm_result(n, rate="inf", starts=trace)))
    assert prof.load == "start-times" and prof.request_rate == pytest.approx(3.0, rel=0.02)
    assert prof.interarrival_cv == pytest.approx(1.0, abs=0.1)
    burst = np.linspace(0.0, 0.004, n)  # 600 tasks started in 4 ms; the first token after 50 ms
    prof = profile_file(_write(tmp_path, _vllm_result(n, rate="inf", starts=burst)))
    assert prof.request_rate is None and to_serving(prof).num_prompts == n


def test_under_a_client_cap_start_times_are_not_arrivals(tmp_path: Path) -> None:
    """vLLM stamps start_time inside the --max-concurrency semaphore: a capped burst's start times spread
    as slots free. Arrivals are start - queue time; without `queue_times` they are unknown."""
    n = 300
    sends = np.arange(n) * 0.5  # one slot freed every 0.5 s
    doc = _vllm_result(n, rate="inf", max_concurrency=8, starts=sends)
    prof = profile_file(_write(tmp_path, doc))
    assert prof.request_rate is None and prof.max_concurrency == 8  # a burst under its cap, as before
    doc["queue_times"] = (sends - 0.001 * np.arange(n) / n).tolist()  # every request arrived at once
    prof = profile_file(_write(tmp_path, doc))
    assert prof.request_rate is None and prof.max_concurrency == 8


def test_burstiness_inf_is_evenly_spaced_not_poisson(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--burstiness inf` (serve.py get_request: constant gaps of 1 / rate) is written `Infinity`: it was
    dropped and replayed as Poisson (burstiness 1). It is the burstiness bound, as even log gaps are."""
    path = _write(tmp_path, _vllm_result(rate=5.0, burstiness=math.inf))
    prof = profile_file(path)
    assert prof.request_rate == 5.0 and prof.interarrival_cv == 0.0
    assert to_serving(prof).burstiness == 1000.0
    out = _report(path, capsys)
    assert "evenly spaced arrivals" in out and "burstiness inf" in out
    ramp = ("linear", 1.0, 20.0)  # an even ramp: gaps of exactly 1 / r_i, spread by the ramp alone
    prof = profile_file(_write(tmp_path, _vllm_result(rate="inf", burstiness=math.inf, ramp=ramp)))
    from autoparallel.workload_profile import ramp_gaps

    assert prof.interarrival_cv == pytest.approx(ramp_gaps(*ramp, 400, math.inf)[1])


def _scrape(prefix: str, names: tuple[str, str], lengths: tuple[np.ndarray, np.ndarray]) -> list[str]:
    lines = []
    for name, values in zip(names, lengths, strict=True):
        lines.append(f"# TYPE {prefix}:{name} histogram")
        for edge in (100, 300, 500, 1000, 2000, 3000):
            lines.append(
                f'{prefix}:{name}_bucket{{le="{edge}.0",model_name="m"}} {float((values <= edge).sum())}'
            )
        lines.append(f'{prefix}:{name}_bucket{{le="+Inf",model_name="m"}} {float(len(values))}')
        lines.append(f'{prefix}:{name}_count{{model_name="m"}} {float(len(values))}')
        lines.append(f'{prefix}:{name}_sum{{model_name="m"}} {float(values.sum())}')
    return lines


def test_a_current_sglang_metrics_scrape_is_read(tmp_path: Path) -> None:
    """SGLang's TokenizerMetricsCollector (`--collect-tokens-histogram`) exports
    `sglang:prompt_tokens_histogram` / `sglang:generation_tokens_histogram`: the scrape was refused."""
    rng = np.random.default_rng(5)
    isl, osl = rng.integers(50, 2900, 1000), rng.integers(10, 990, 1000)
    new = ("prompt_tokens_histogram", "generation_tokens_histogram")
    lines = ["# TYPE sglang:prompt_tokens_total counter", 'sglang:prompt_tokens_total{model_name="m"} 9.0']
    lines += _scrape("sglang", new, (isl, osl))
    lines += _scrape("sglang", ("uncached_prompt_tokens_histogram", "x_tokens_histogram"), (isl // 2, osl))
    path = tmp_path / "metrics.txt"
    path.write_text("\n".join(lines) + "\n")
    prof = profile_file(path)
    assert prof.source == "prometheus" and prof.requests == 1000
    assert prof.isl.mean == pytest.approx(isl.mean()) and prof.osl.mean == pytest.approx(osl.mean())
    old = _scrape("sglang", ("request_prompt_tokens", "request_generation_tokens"), (isl, osl))
    path.write_text("\n".join(lines + old) + "\n")  # both names: one histogram read, not both summed
    prof = profile_file(path)
    assert prof.requests == 1000 and prof.isl.mean == pytest.approx(isl.mean())


@pytest.mark.parametrize(
    ("doc", "lines", "flag"),
    [
        (_vllm_result(detailed=False), 1, "--save-detailed"),
        (
            {"backend": "sglang", "dataset_name": "random", "request_rate": 4.0, "completed": 10},
            2,
            "--output-details",
        ),
    ],
)
def test_a_result_saved_without_per_request_lists_says_how_to_save_them(
    tmp_path: Path, doc: dict[str, Any], lines: int, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "no usable request (1 malformed lines)": the hint was never reached."""
    path = tmp_path / "result.json"
    path.write_text("\n".join([json.dumps(doc)] * lines) + "\n")
    with pytest.raises(InputError, match=f"no per-request lengths.*{flag}"):
        profile_file(path)
    assert main(["profile", str(path)]) == 2
    err = capsys.readouterr().err
    assert flag in err and "malformed" not in err and len(err.strip().splitlines()) == 1


def test_failed_requests_are_counted_as_failed_not_malformed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """vLLM's calculate_metrics records a failed request's output length as 0 (and its error): they were
    reported as malformed lines."""
    doc = _vllm_result(100, rate=5.0)
    doc["output_lens"][3] = doc["output_lens"][7] = 0
    doc["errors"][3] = doc["errors"][7] = "Bad Gateway"
    doc["errors"][9] = "timeout"  # an error with a length: failed too
    doc["output_lens"][11] = -4  # nonsense: malformed
    prof = profile_file(_write(tmp_path, doc))
    assert (prof.requests, prof.failed, prof.malformed) == (96, 3, 1)
    out = _report(tmp_path / "result.json", capsys)
    assert "failed: 3 requests" in out and "malformed: 1 skipped" in out
    doc["output_lens"] = [0] * 100
    with pytest.raises(InputError, match="every one of the benchmark's 100 requests failed"):
        profile_file(_write(tmp_path, doc))


def test_the_engine_is_read_from_the_keys_not_the_line_count(tmp_path: Path) -> None:
    """vLLM's --append-result writes a JSON object per line (was labelled sglang-bench); SGLang's result
    of one run is one line (was labelled vllm-bench)."""
    vllm = _vllm_result(50)
    path = tmp_path / "appended.json"
    path.write_text(json.dumps(vllm) + "\n" + json.dumps(vllm))
    prof = profile_file(path)
    assert prof.source == "vllm-bench" and prof.requests == 100
    sglang = {"backend": "sglang", "dataset_name": "random", "request_rate": 4.0, "max_concurrency": None}
    sglang |= {"completed": 3, "input_lens": [100, 200, 300], "output_lens": [10, 20, 30]}
    path.write_text(json.dumps(sglang) + "\n")
    assert profile_file(path).source == "sglang-bench"


def test_an_sglang_trace_replay_without_its_times_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--use-trace-timestamps` writes request_rate "trace": its rate is nowhere in the result, so it is
    neither a burst nor a stream at some rate."""
    run = {"backend": "sglang", "dataset_name": "mooncake", "request_rate": "trace", "completed": 2}
    path = tmp_path / "trace.jsonl"
    path.write_text(json.dumps(run | {"input_lens": [100, 200], "output_lens": [10, 20]}) + "\n")
    assert main(["profile", str(path)]) == 2
    err = capsys.readouterr().err
    assert "request_rate 'trace'" in err and len(err.strip().splitlines()) == 1
