"""`autoparallel profile`: request logs and benchmark results -> workload files (workload_profile.py)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.workload_profile import load_workload_file, profile_file, to_serving


def _log(path: Path, n: int = 10_000, rate: float = 5.0, bad: int = 0) -> None:
    """A log of known shape: log-normal lengths (means 600 / 200, spread 0.8 / 1.0), Poisson arrivals."""
    rng = np.random.default_rng(3)

    def lengths(mean: float, cv: float) -> np.ndarray:
        s = np.sqrt(np.log1p(cv * cv))
        return np.maximum(np.rint(rng.lognormal(np.log(mean) - s * s / 2, s, n)), 1).astype(int)

    isl, osl = lengths(600, 0.8), lengths(200, 1.0)
    t = 1.7e9 + np.cumsum(rng.exponential(1.0 / rate, n))
    rows = [
        json.dumps({"timestamp": float(a), "prompt_tokens": int(i), "completion_tokens": int(o)})
        for a, i, o in zip(t, isl, osl, strict=True)
    ]
    broken = ["not json", '{"prompt_tokens": 10}', '{"prompt_tokens": -3, "output_tokens": 4}', "[1, 2]"]
    rows[5:5] = broken[:bad]
    path.write_text("\n".join(rows) + "\n")


def test_round_trip_recovers_distribution_and_rate(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    _log(log, bad=4)
    prof = profile_file(log)
    assert prof.requests == 10_000 and prof.malformed == 4 and prof.malformed_lines == (6, 7, 8, 9)
    assert prof.isl.mean == pytest.approx(600, rel=0.03) and prof.osl.mean == pytest.approx(200, rel=0.04)
    assert prof.isl.cv == pytest.approx(0.8, rel=0.1) and prof.osl.cv == pytest.approx(1.0, rel=0.15)
    assert prof.request_rate == pytest.approx(5.0, rel=0.05)
    assert prof.interarrival_cv == pytest.approx(1.0, rel=0.05)  # Poisson
    out = tmp_path / "w.json"
    assert main(["profile", str(log), "-o", str(out)]) == 0
    w = load_workload_file(out)
    assert w == to_serving(prof)
    assert (w.isl, w.osl) == (round(prof.isl.mean), round(prof.osl.mean))
    assert w.request_rate == pytest.approx(5.0, rel=0.05) and w.num_prompts is None
    assert w.max_model_len is not None and w.max_model_len >= w.isl + w.osl


def test_a_json_array_of_requests_reads_as_its_lines(tmp_path: Path) -> None:
    """The same requests as JSON Lines and as one (pretty-printed) JSON array profile alike; an
    element that is no request is reported by its position."""
    log = tmp_path / "requests.jsonl"
    _log(log, n=500, bad=4)
    items = [json.loads(line) if line.startswith("{") else line for line in log.read_text().splitlines()]
    array = tmp_path / "requests.json"
    array.write_text(json.dumps(items, indent=2))
    lines, whole = profile_file(log), profile_file(array)
    assert whole.requests == lines.requests == 500 and whole.malformed_lines == (6, 7, 8, 9)
    assert whole.isl == lines.isl and whole.request_rate == lines.request_rate


def test_evaluate_accepts_the_workload_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "requests.jsonl"
    _log(log, n=500)
    out = tmp_path / "w.json"
    assert main(["profile", str(log), "-o", str(out)]) == 0
    capsys.readouterr()
    args = ["evaluate", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--workload-file", str(out), "--json"]
    assert main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["workload"]["name"] == "profiled"
    assert len(plan["workload"]["isl_quantiles"]) == 101


def test_vllm_and_sglang_benchmark_results(tmp_path: Path) -> None:
    vllm = tmp_path / "vllm.json"
    vllm.write_text(
        json.dumps(
            {
                "request_rate": "inf",
                "max_concurrency": None,
                "completed": 3,
                "input_lens": [100, 200, 300],
                "output_lens": [10, 20, 30],
            }
        )
    )
    prof = profile_file(vllm)
    assert prof.source == "vllm-bench" and prof.requests == 3 and prof.isl.mean == 200
    w = to_serving(prof)
    assert w.num_prompts == 3 and w.request_rate is None  # all at once: a finite benchmark
    sglang = tmp_path / "sglang.jsonl"
    run = {"request_rate": 4.0, "max_concurrency": 16, "input_lens": [50, 150], "output_lens": [5, 15]}
    sglang.write_text(json.dumps(run) + "\n" + json.dumps(run) + "\n")
    prof = profile_file(sglang)
    assert prof.source == "sglang-bench" and prof.requests == 4 and prof.max_concurrency == 16
    w = to_serving(prof)  # a finite benchmark at its rate and under its cap, replayed as it ran
    assert (w.num_prompts, w.request_rate, w.burstiness) == (4, 4.0, 1.0)
    assert w.concurrency is None  # a cap of 16 over 4 prompts caps nothing (`Serving.concurrency`)
    bursty = tmp_path / "bursty.json"
    bursty.write_text(json.dumps({**run, "burstiness": 0.25, "max_concurrency": None}))
    w = to_serving(profile_file(bursty))
    assert (w.num_prompts, w.request_rate, w.burstiness) == (2, 4.0, 0.25)


def test_unusable_input_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("garbage\n{}\n")
    with pytest.raises(InputError, match="no usable request"):
        profile_file(bad)
    assert main(["profile", str(bad)]) == 2
    assert main(["profile", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["evaluate", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--workload-file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 3


def test_the_workload_keeps_the_measured_length_shape(tmp_path: Path) -> None:
    """A log where 30 % of the answers are 8 tokens and the rest 280 (mean 198, spread 0.65): the
    workload file keeps that shape, so a 1,000-prompt burst replays 30 % short requests. A
    log-normal of the same mean and spread has under 1 % below 20 tokens, and its mean TPOT is
    lower: the short requests, whose few tokens come out beside prompt chunks, set the mean."""
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import Cluster
    from autoparallel.models import load_model
    from autoparallel.perf.serving_load import LENGTH_SEED, draw_lengths, run_benchmark

    log = tmp_path / "bimodal.jsonl"
    outs = [8] * 300 + [280] * 700
    log.write_text("".join(json.dumps({"prompt_tokens": 220, "completion_tokens": o}) + "\n" for o in outs))
    out = tmp_path / "w.json"
    assert main(["profile", str(log), "-o", str(out)]) == 0
    w = load_workload_file(out).model_copy(update={"num_prompts": 1000})
    assert w.osl == 198 and w.osl_quantiles is not None and w.osl_cv == 0
    drawn = draw_lengths(w.osl, w.osl_cv, 1000, LENGTH_SEED + 1, w.osl_quantiles)
    assert 0.28 <= (drawn < 20).mean() <= 0.31
    cv = profile_file(log).osl.cv
    lognormal = draw_lengths(w.osl, cv, 1000, LENGTH_SEED + 1)
    assert (lognormal < 20).mean() < 0.05

    qwen, h100 = load_model("Qwen/Qwen3-8B"), Cluster.parse("1x1xH100")
    cfg = ServingConfig(max_num_seqs=256, max_model_len=4096)
    shaped = run_benchmark(qwen, h100, cfg, w)
    smooth = run_benchmark(qwen, h100, cfg, w.model_copy(update={"osl_quantiles": None, "osl_cv": cv}))
    assert shaped.mean_tpot_ms > 1.1 * smooth.mean_tpot_ms


def test_a_broken_workload_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "w.json"
    cases: list[tuple[bytes, str]] = [
        (
            json.dumps({"serving": {"isl": 200, "osl": 100, "osl_quantiles": [300, 200]}}).encode(),
            "must not decrease",
        ),
        (
            json.dumps({"serving": {"isl": 200, "osl": 100, "osl_quantiles": [5]}}).encode(),
            "osl_quantiles holds 1",
        ),
        (b'{"serving": {"isl": 200, "osl": 100, "osl_quantiles": [1, NaN]}}', "NaN is not a JSON number"),
        (b"\xc3\x28{}", "not valid UTF-8"),
        (b"\xff\xfe\x00garbage", "malformed JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b"{}", "no 'serving' object"),
        (
            b'{"serving": {"isl": 200, "osl": 100, "request_rate": -1}}',
            "serving.request_rate: Input should be greater than or equal to 0.000000001",
        ),
        (b'{"serving": {"isl": "abc", "osl": 100}}', "serving.isl: Input should be a valid integer"),
    ]
    for data, match in cases:
        f.write_bytes(data)
        with pytest.raises(InputError, match=match):
            load_workload_file(f)
        args = ["evaluate", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--workload-file", str(f)]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert "input_value" not in err  # the reason, not pydantic's dump of the input
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps({"serving": {"isl": 200, "osl": 100}}).encode())  # a BOM
    assert load_workload_file(f).isl == 200


def test_a_log_line_that_is_not_utf8_is_one_malformed_line(tmp_path: Path) -> None:
    log = tmp_path / "mixed.jsonl"
    good = [json.dumps({"prompt_tokens": 100, "completion_tokens": 20}).encode()] * 3
    log.write_bytes(b"\n".join([good[0], b'{"prompt_tokens": \xff\xfe 7}', *good[1:]]) + b"\n")
    prof = profile_file(log)
    assert prof.requests == 3 and prof.malformed == 1 and prof.malformed_lines == (2,)


def test_evenly_spaced_arrivals_have_no_burstiness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "even.jsonl"
    rows = [{"timestamp": 0.2 * i, "prompt_tokens": 100, "completion_tokens": 50} for i in range(500)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prof = profile_file(log)
    assert prof.interarrival_cv == 0 and prof.gamma_shape is None
    assert prof.request_rate == pytest.approx(5.0)
    assert main(["profile", str(log)]) == 0
    assert "evenly spaced arrivals" in capsys.readouterr().out


def test_hostile_json_in_a_log_is_malformed_lines_not_an_internal_error(tmp_path: Path) -> None:
    log = tmp_path / "hostile.jsonl"
    good = json.dumps({"prompt_tokens": 100, "completion_tokens": 20})
    log.write_text(
        "\n".join([good, "[" * 100_000 + "]" * 100_000, '{"prompt_tokens": ' + "9" * 5000 + "}", good])
    )
    prof = profile_file(log)
    assert prof.requests == 2 and prof.malformed_lines == (2, 3)
    whole = tmp_path / "deep.json"
    whole.write_text("{" + '"a":[' * 50_000 + "]" * 50_000 + "}")
    with pytest.raises(InputError, match="no usable request"):
        profile_file(whole)


def _scrape(path: Path, prompts: np.ndarray, outputs: np.ndarray) -> None:
    """A vLLM /metrics scrape of these lengths: 1-2-5 buckets, split over two label sets."""
    edges = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
    lines = [
        "# HELP vllm:request_prompt_tokens Number of prefill tokens processed.",
        "vllm:num_requests_running 3.0",
    ]
    for name, values in (("request_prompt_tokens", prompts), ("request_generation_tokens", outputs)):
        for label, part in (('model_name="a"', values[::2]), ('model_name="b"', values[1::2])):
            lines.append(f"vllm:{name}_sum{{{label}}} {float(part.sum())}")
            lines.append(f"vllm:{name}_count{{{label}}} {float(len(part))}")
            for e in edges:
                lines.append(f'vllm:{name}_bucket{{le="{float(e)}",{label}}} {float((part <= e).sum())}')
            lines.append(f'vllm:{name}_bucket{{le="+Inf",{label}}} {float(len(part))}')
    lines.append('vllm:request_prompt_tokens_bucket{le="7.0",model_name="c"} NaN')  # malformed, skipped
    path.write_text("\n".join(lines) + "\n")


def test_a_metrics_scrape_profiles_the_servers_length_histograms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A vLLM (or SGLang) /metrics scrape: the length histograms summed over label sets, exact means,
    percentiles inside the right buckets; one scrape has no arrival times, so the workload is a stream
    without a rate, and plans take it."""
    rng = np.random.default_rng(5)
    prompts = np.maximum(np.rint(rng.lognormal(5.0, 1.0, 4000)), 1)
    outputs = np.maximum(np.rint(rng.lognormal(4.2, 1.3, 4000)), 2)
    scrape = tmp_path / "metrics.txt"
    _scrape(scrape, prompts, outputs)
    prof = profile_file(scrape)
    assert prof.source == "prometheus" and prof.requests == 4000 and prof.malformed == 1
    assert abs(prof.isl.mean - prompts.mean()) < 1e-6 and abs(prof.osl.mean - outputs.mean()) < 1e-6
    for stats, values in ((prof.isl, prompts), (prof.osl, outputs)):
        assert list(stats.quantiles) == sorted(stats.quantiles)
        edges = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
        true = float(np.percentile(values, 50))
        lo = max(e for e in edges if e <= true)
        hi = min(e for e in edges if e >= true)
        assert lo / 1.01 <= stats.p50 <= hi * 1.01  # the median falls in its bucket
    serving = to_serving(prof)
    assert serving.num_prompts is None and serving.request_rate is None
    out = tmp_path / "w.json"
    assert main(["profile", str(scrape), "-o", str(out)]) == 0
    assert "prometheus" in capsys.readouterr().out
    assert main(["plan", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--workload-file", str(out)]) in (0, 1)


def test_a_broken_metrics_scrape_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Buckets that fall, or histograms with no request in them, are refused in one line."""
    falling = tmp_path / "falling.txt"
    falling.write_text(
        'vllm:request_prompt_tokens_bucket{le="10.0"} 5\nvllm:request_prompt_tokens_bucket{le="20.0"} 3\n'
        "vllm:request_prompt_tokens_count 5\nvllm:request_prompt_tokens_sum 40\n"
        'vllm:request_generation_tokens_bucket{le="10.0"} 5\nvllm:request_generation_tokens_count 5\n'
        "vllm:request_generation_tokens_sum 30\n"
    )
    empty = tmp_path / "empty.txt"
    empty.write_text(
        'vllm:request_prompt_tokens_bucket{le="10.0"} 0\nvllm:request_generation_tokens_bucket{le="10.0"} 0\n'
    )
    for path, why in ((falling, "not cumulative"), (empty, "no prompt-length histogram")):
        assert main(["profile", str(path)]) == 2
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1


def test_a_bad_timestamp_is_one_malformed_line_not_a_burst(tmp_path: Path) -> None:
    """A log at 2 requests/s with one line stamped NaN, one Infinity and one without a stamp keeps its
    rate from the 100 stamped lines and reports the three as malformed; before, the whole log was
    read as sent all at once. A log with no stamps at all is still a burst, with nothing malformed."""
    lines = [
        json.dumps({"prompt_tokens": 100, "output_tokens": 50, "timestamp": i * 0.5}) for i in range(100)
    ]
    lines += [
        '{"prompt_tokens": 100, "output_tokens": 50, "timestamp": NaN}',
        '{"prompt_tokens": 100, "output_tokens": 50, "timestamp": Infinity}',
        '{"prompt_tokens": 100, "output_tokens": 50}',
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n")
    prof = profile_file(log)
    assert prof.requests == 100 and prof.malformed == 3 and prof.malformed_lines == (101, 102, 103)
    assert prof.request_rate == pytest.approx(2.0)
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"prompt_tokens": 10, "output_tokens": 5}\n{"prompt_tokens": 12, "output_tokens": 6}\n')
    prof = profile_file(plain)
    assert prof.requests == 2 and prof.malformed == 0 and prof.request_rate is None


def test_a_benchmark_result_whose_length_lists_differ_counts_the_unpaired_requests(tmp_path: Path) -> None:
    result = tmp_path / "bench.json"
    result.write_text(json.dumps({"input_lens": [100, 200, 300], "output_lens": [10], "request_rate": 4.0}))
    prof = profile_file(result)
    assert prof.requests == 1 and prof.malformed == 2


def test_a_benchmark_results_nonsense_load_fields_are_refused_not_read_as_a_load(tmp_path: Path) -> None:
    """`max_concurrency: true` is not a cap of 1 client, a negative rate is no rate, and a burstiness
    of 0 or below (vLLM's gamma shape must be positive) is no burstiness: each is refused, naming
    the field (they were dropped in silence, the run profiled as all-at-once and Poisson), as a run's
    impossible ramp is and as runs of different loads are."""
    result = tmp_path / "bench.json"
    fields = {"input_lens": [100, 200], "output_lens": [10, 20]}
    result.write_text(json.dumps({**fields, "request_rate": -5, "burstiness": 1.0, "max_concurrency": 8}))
    with pytest.raises(InputError, match="request_rate -5"):
        profile_file(result)
    result.write_text(json.dumps({**fields, "request_rate": 5, "burstiness": 1.0, "max_concurrency": True}))
    with pytest.raises(InputError, match="max_concurrency"):
        profile_file(result)
    result.write_text(json.dumps({**fields, "request_rate": 5, "burstiness": -1.0, "max_concurrency": 8}))
    with pytest.raises(InputError, match="burstiness"):
        profile_file(result)


def test_a_stamp_written_as_the_string_inf_is_malformed_not_a_nan_rate(tmp_path: Path) -> None:
    """A stamp given as the string "inf" or "NaN" is one malformed line: before, "inf" parsed as a
    float and the whole log's rate and spread came out NaN."""
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"prompt_tokens": 10, "output_tokens": 5, "arrival_time": "inf"}\n'
        '{"prompt_tokens": 10, "output_tokens": 5, "arrival_time": "NaN"}\n'
        '{"prompt_tokens": 10, "output_tokens": 5, "arrival_time": "5"}\n'
        '{"prompt_tokens": 10, "output_tokens": 5, "arrival_time": "7"}\n'
    )
    prof = profile_file(log)
    assert prof.requests == 2 and prof.malformed_lines == (1, 2)
    assert prof.request_rate == pytest.approx(0.5) and prof.interarrival_cv == 0


@pytest.mark.parametrize(("scale", "unit"), [(1.0, "s"), (1e3, "ms"), (1e6, "us"), (1e9, "ns")])
def test_epoch_stamps_in_milliseconds_or_finer_keep_the_rate(tmp_path: Path, scale: float, unit: str) -> None:
    """Epoch stamps in ms, µs or ns (JavaScript, Java, Go loggers) give the rate the same arrivals in
    seconds give: read as seconds, a 4 requests/s log at epoch ms would plan for 0.004."""
    start = 1_733_400_000.5
    log = tmp_path / "log.jsonl"
    log.write_text(
        "".join(
            json.dumps({"prompt_tokens": 100, "output_tokens": 20, "ts": (start + i * 0.25) * scale}) + "\n"
            for i in range(9)
        )
    )
    prof = profile_file(log)
    assert prof.time_unit == unit and prof.request_rate == pytest.approx(4.0)


def test_a_log_without_arrival_stamps_says_which_keys_were_looked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A request log whose lines carry no stamp under any known key is planned as a stream, and the
    profile says so and names the keys, instead of reading it as a burst in silence; "arrival" is one
    of them."""
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"prompt_tokens": 10, "output_time": 5, "output_tokens": 5, "when": 3}\n')
    assert main(["profile", str(plain)]) == 0
    out = capsys.readouterr().out
    assert "not recorded: no line stamps its arrival under timestamp, arrival_time, arrival" in out
    stamped = tmp_path / "stamped.jsonl"
    stamped.write_text(
        '{"prompt_tokens": 10, "output_tokens": 5, "arrival": 1}\n'
        '{"prompt_tokens": 10, "output_tokens": 5, "arrival": 3}\n'
    )
    assert main(["profile", str(stamped)]) == 0
    assert "arrival rate: 0.5 requests/s" in capsys.readouterr().out


def test_values_past_every_bound_are_malformed_not_an_overflow(tmp_path: Path) -> None:
    """Stamps of ±1e308 overflowed the log's span to infinity: `profile` printed numpy's overflow
    warnings and wrote a workload file with a NaN rate that `evaluate` then refused. A length of 1e308
    in a benchmark result ran into the same overflow before its one-line error. Each is now a
    malformed line or request, as any value out of its bound is; a rate above the workload's bound
    (stamps nanoseconds apart, a result's rate of 1e308) is every request at once."""
    log = tmp_path / "log.jsonl"
    rows = [{"prompt_tokens": 100, "output_tokens": 50, "timestamp": 10.0 + i} for i in range(20)]
    rows += [
        {"prompt_tokens": 100, "output_tokens": 50, "timestamp": -1e308},
        {"prompt_tokens": 100, "output_tokens": 50, "timestamp": 1e308},
        {"prompt_tokens": 1e308, "output_tokens": 50, "timestamp": 40.0},
        {"prompt_tokens": 100, "output_tokens": 2**24 + 1, "timestamp": 41.0},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings were the first sign
        prof = profile_file(log)
    assert prof.requests == 20 and prof.malformed_lines == (21, 22, 23, 24)
    assert prof.request_rate == pytest.approx(1.0)
    result = tmp_path / "bench.json"
    lens = {"input_lens": [1e308, 5, 6], "output_lens": [3, 4, 5]}
    result.write_text(json.dumps({**lens, "request_rate": 1e308}))
    prof = profile_file(result)
    assert prof.requests == 2 and prof.malformed == 1 and prof.request_rate is None
    close = tmp_path / "close.jsonl"
    stamps = (i * 1e-12 for i in range(5))
    close.write_text(
        "".join(json.dumps({"prompt_tokens": 9, "output_tokens": 9, "timestamp": t}) + "\n" for t in stamps)
    )
    assert profile_file(close).request_rate is None
    out = tmp_path / "w.json"
    assert main(["profile", str(log), "-o", str(out)]) == 0
    assert load_workload_file(out).request_rate == pytest.approx(1.0)


def test_requests_longer_than_any_context_are_one_clear_error(tmp_path: Path) -> None:
    """Requests of 2^24 + 2^24 tokens gave "max_model_len=33554432: Input should be less than or equal to
    16777216", a field the user never set; a long p99 tail now caps the file's max_model_len at the
    bound instead."""
    log = tmp_path / "log.jsonl"
    log.write_text(
        "".join(json.dumps({"prompt_tokens": 2**24, "output_tokens": 2**24}) + "\n" for _ in range(3))
    )
    with pytest.raises(
        InputError, match="average 16,777,216 \\+ 16,777,216 tokens, more than the 16,777,216-token"
    ):
        to_serving(profile_file(log))
    tail = tmp_path / "tail.jsonl"
    rows = [
        {"prompt_tokens": 2**23 if i % 2 else 10, "output_tokens": 2**23 + 5 if i % 2 else 10}
        for i in range(10)
    ]
    tail.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert to_serving(profile_file(tail)).max_model_len == 2**24


def test_evenly_spaced_arrivals_stay_even(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A log stamped every 50 ms was said to be evenly spaced, and its workload file replayed it as
    Poisson (no burstiness written: the default 1)."""
    log = tmp_path / "even.jsonl"
    log.write_text(
        "".join(
            json.dumps({"prompt_tokens": 200, "output_tokens": 100, "timestamp": i * 0.05}) + "\n"
            for i in range(400)
        )
    )
    serving = to_serving(profile_file(log))
    assert serving.request_rate == pytest.approx(20.0, rel=0.01) and serving.burstiness == 1000.0


def test_requests_longer_than_the_profiled_context_are_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """max_model_len covers the p99 prompt and output; 1% of prompts at 30,000 tokens were cut
    without a word."""
    log = tmp_path / "tail.jsonl"
    lines = [{"prompt_tokens": 30000 if i % 100 == 0 else 500, "output_tokens": 100} for i in range(1000)]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["profile", str(log)]) == 0
    out = capsys.readouterr().out
    assert "the longest prompt (30,000)" in out and "do not fit it" in out


def test_benchmark_runs_of_different_loads_are_not_merged(tmp_path: Path) -> None:
    """Three SGLang runs (100 at 1/s, 200 at 8/s, 300 at 32/s) were profiled as 600 prompts at 32/s."""
    path = tmp_path / "runs.jsonl"
    runs = [
        {"request_rate": r, "max_concurrency": None, "input_lens": [100] * n, "output_lens": [10] * n}
        for r, n in ((1.0, 100), (8.0, 200), (32.0, 300))
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in runs))
    with pytest.raises(InputError, match="3 benchmark runs of 3 different loads"):
        profile_file(path)


def test_a_stamp_in_another_unit_is_one_outlying_stamp_not_the_logs_unit(tmp_path: Path) -> None:
    """The unit was read from the earliest stamp: one 0 among epoch-ms stamps read every stamp as
    seconds, a rate of 5.8e-10 requests/s. The middle stamp sets it. The odd line was then dropped as
    malformed, while a 0 among epoch seconds is an outlying stamp whose lengths are kept: the stamp is
    suspect, the token counts are not, whatever the unit, so it is an outlying stamp too."""
    f = tmp_path / "ms.jsonl"
    lines = [
        json.dumps({"prompt_tokens": 100, "output_tokens": 50, "timestamp": 1.7e12 + 100 * i})
        for i in range(1000)
    ]
    lines.insert(500, json.dumps({"prompt_tokens": 100, "output_tokens": 50, "timestamp": 0}))
    f.write_text("\n".join(lines) + "\n")
    prof = profile_file(f)
    assert prof.time_unit == "ms" and prof.request_rate == pytest.approx(10.0)
    assert prof.requests == 1001 and prof.malformed == 0 and prof.malformed_lines == ()
    assert prof.outlying_stamps == 1 and prof.outlying_stamp_lines == (501,)


def test_json_lines_end_at_newlines_only(tmp_path: Path) -> None:
    """U+0085 / U+2028 inside a JSON string is legal (json.dumps(ensure_ascii=False) writes them raw);
    str.splitlines split those lines and counted them malformed."""
    f = tmp_path / "nel.jsonl"
    rows = [
        {"prompt": "a\u0085b\u2028c" if i % 10 == 0 else "x", "prompt_tokens": 100, "output_tokens": 50}
        for i in range(100)
    ]
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    prof = profile_file(f)
    assert prof.requests == 100 and prof.malformed == 0


def test_a_bucket_edge_beyond_any_length_is_a_malformed_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "m.txt"
    text = ""
    for name in ("request_prompt_tokens", "request_generation_tokens"):
        text += f'vllm:{name}_bucket{{le="100.0"}} 10\nvllm:{name}_bucket{{le="1e300"}} 20\n'
        text += f'vllm:{name}_bucket{{le="+Inf"}} 20\nvllm:{name}_sum 1500\nvllm:{name}_count 20\n'
    f.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["profile", str(f)]) == 0
    assert "malformed: 2 skipped" in capsys.readouterr().out


def test_a_workload_file_rate_below_the_floor_or_a_name_with_escapes_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rate of 1e-310 was a NaN in the replay (exit 3); a name with an escape sequence cleared the
    terminal of every report that printed it."""
    for serving, why in (
        ({"isl": 500, "osl": 100, "request_rate": 1e-310, "num_prompts": 1000}, "request_rate"),
        ({"isl": 500, "osl": 100, "name": "evil\u001b[2J\nline2"}, "printable text on one line"),
    ):
        f = tmp_path / "w.json"
        f.write_text(json.dumps({"serving": serving}))
        rc = main(["evaluate", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--workload-file", str(f)])
        err = capsys.readouterr().err
        assert rc == 2 and why in err and len(err.strip().splitlines()) == 1
