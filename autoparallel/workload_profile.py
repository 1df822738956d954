"""Serving workloads from real traffic: request logs and benchmark result files -> `Serving`.

Inputs (the format is recognised per file):

- **request logs**, JSON Lines, one request per line: prompt tokens (`PROMPT_KEYS`), output tokens
  (`OUTPUT_KEYS`) and an arrival time (`TIME_KEYS`: seconds, epoch milli- to nanoseconds, or an
  ISO-8601 date-time). A `usage` object with
  `prompt_tokens` / `completion_tokens` (OpenAI's response shape) is read too. A JSON array of the
  same objects is read as if each element were a line (malformed ones are reported by position).
- **vLLM benchmark results** (`vllm bench serve --save-result [--save-detailed]`: one JSON object
  with `input_lens`, `output_lens`, `request_rate`, `max_concurrency`) and **SGLang's**
  (`sglang.bench_serving --output-file`: JSON Lines, one object per run with the same lists under
  `--output-details`): per-request lengths; the load is the benchmark's (`request_rate` inf = every
  prompt at once, a finite benchmark of `completed` prompts).
- **a server's Prometheus metrics** (a scrape of vLLM's or SGLang's `/metrics`): the
  `vllm:` / `sglang:` `request_prompt_tokens` and `request_generation_tokens` histograms, summed
  over their label sets. Mean lengths are exact (`_sum` / `_count`); percentiles rise geometrically
  inside a bucket (`workload.histogram_quantiles`), and requests above the last finite bucket are
  counted at its edge. One scrape holds no arrival times, so no rate is derived.

Lines that are not JSON, or lack positive token counts, are counted and reported, never fatal.

What is derived: mean and spread (std / mean) of prompt and output lengths and their percentiles
(0 to 100 in steps of 1), the arrival rate (requests over the span of arrival times) and
burstiness: the spread of inter-arrival gaps (1 for a Poisson stream; vLLM's `--burstiness` gamma
shape is 1 / spread²). The workload written keeps the measured length percentiles
(`Serving.isl_quantiles` / `osl_quantiles`), not only mean and spread: a burst's mean TPOT is set by
its short requests, and a log-normal of the same mean and spread can hold far fewer of them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from autoparallel.bounds import BOUNDS, first_error
from autoparallel.errors import InputError
from autoparallel.user_file import read_capped
from autoparallel.workload import Serving

PROMPT_KEYS = ("prompt_tokens", "input_tokens", "isl", "input_len", "prompt_len", "num_prompt_tokens")
OUTPUT_KEYS = ("output_tokens", "completion_tokens", "osl", "output_len", "generated_tokens")
TIME_KEYS = ("timestamp", "arrival_time", "arrival", "time", "t", "ts", "created", "send_time", "start_time")
"""Keys a request log's line may stamp its arrival under (seconds, or an ISO 8601 time); the first
present wins. A log with none of them on any line is read as sent all at once, and says so."""


MAX_LOG_BYTES = 1 << 30
"""1 GiB: about ten million request lines, read (and held) whole; a bigger log is sampled or split by the
user, not read for minutes."""
PERCENTILES = np.linspace(0.0, 100.0, 101)
"""The length percentiles a profile keeps: 0, 1, …, 100."""


class LengthStats(BaseModel):
    """Distribution of one length (tokens)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mean: float
    cv: float
    quantiles: tuple[float, ...]
    """Lengths at percentiles 0, 1, …, 100."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def p50(self) -> float:
        return self.quantiles[50]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def p90(self) -> float:
        return self.quantiles[90]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def p99(self) -> float:
        return self.quantiles[99]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def max(self) -> int:
        return round(self.quantiles[-1])


class WorkloadProfile(BaseModel):
    """What a log says about its traffic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    """`request-log`, `vllm-bench`, `sglang-bench` or `prometheus`."""
    requests: int
    """Requests read."""
    malformed: int
    """Lines (or entries) skipped because they were not usable."""
    malformed_lines: tuple[int, ...]
    """Line numbers of the first skipped lines (at most 10)."""
    isl: LengthStats
    osl: LengthStats
    request_rate: float | None
    """Requests per second over the arrival span (None: all at once, or no arrival times)."""
    interarrival_cv: float | None
    """std / mean of inter-arrival gaps (1: Poisson)."""
    gamma_shape: float | None
    """vLLM `--burstiness` equivalent: 1 / cv² (None when there are no gaps)."""
    max_concurrency: int | None = None
    """The benchmark's client cap, where the file records one."""
    stamped: int = 0
    """Requests whose line stamped its arrival (`TIME_KEYS`; request logs only)."""
    time_unit: str = "s"
    """The unit numeric stamps were read in (`epoch_unit`): s, ms, us or ns."""


def _stats(values: np.ndarray) -> LengthStats:
    mean = float(values.mean())
    return LengthStats(
        mean=mean,
        cv=float(values.std() / mean) if mean else 0.0,
        quantiles=tuple(round(float(x), 1) for x in np.percentile(values, PERCENTILES)),
    )


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if k in obj and obj[k] is not None:
            return obj[k]
    usage = obj.get("usage")
    if isinstance(usage, dict):
        for k in keys:
            if k in usage:
                return usage[k]
    return None


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds if math.isfinite(seconds) else None  # "inf", "NaN"
    return None


MAX_STAMP = 1e20
"""Largest |timestamp| read, in the log's own unit: epoch nanoseconds reach it in the year 5138 (as
epoch seconds reach 1e11, `epoch_unit`); a line stamped beyond it is malformed (two stamps of ±1e308
overflowed the log's span to infinity and wrote a workload file with a NaN rate)."""
MAX_RATE = BOUNDS["request_rate"].hi
"""An arrival rate above the workload's bound is every request at once (stamps nanoseconds apart)."""
EPOCH_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
"""Stamps per second, by the unit a log's numeric stamps are read in."""


def epoch_unit(stamp: float) -> str:
    """The unit of a log's numeric stamps, from a typical one (the median): an epoch time counted in seconds
    stays below 1e11 until the year 5138, so larger stamps are epoch milliseconds (from 1e11, 1973
    on), microseconds (from 1e14) or nanoseconds (from 1e17), as JavaScript's `Date.now()`, Java's
    `currentTimeMillis` or Go's `UnixNano` write them. Seconds otherwise: a stamp relative to the
    log's start in milliseconds cannot be told from one in seconds."""
    for unit, start in (("ns", 1e17), ("us", 1e14), ("ms", 1e11)):
        if stamp >= start:
            return unit
    return "s"


def _tokens(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or not 1 <= value <= BOUNDS["isl"].hi:  # isl's bound is osl's
        return None
    return int(value)


def profile_file(path: str | Path) -> WorkloadProfile:
    """Profile a request log or a vLLM / SGLang benchmark result file.

    Raises:
        InputError: the file cannot be read or holds no usable request.
    """
    from autoparallel.models.config_file import decode_lenient

    p = Path(path)
    text = decode_lenient(read_capped(p, "request log", MAX_LOG_BYTES))
    if not text.strip():
        raise InputError(f"request log {str(p)!r} is empty")
    stripped = text.lstrip()
    if PROMPT_HISTOGRAM in text and OUTPUT_HISTOGRAM in text and not stripped.startswith("{"):
        return _prometheus(text, p)
    if stripped.startswith("{") and "\n{" not in stripped.rstrip():
        try:
            whole = json.loads(stripped)
        except (ValueError, RecursionError):  # not JSON, a 5,000-digit integer, nesting too deep
            whole = None
        if isinstance(whole, dict) and "input_lens" in whole:
            return _bench([whole], "vllm-bench", p)
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except (ValueError, RecursionError):
            items = None
        if isinstance(items, list):  # a JSON array of requests: element k is read as line k
            return _requests(enumerate(items, start=1), p)
    return _requests(_json_lines(text), p)


PROMPT_HISTOGRAM = "request_prompt_tokens_bucket"
OUTPUT_HISTOGRAM = "request_generation_tokens_bucket"
"""The length histograms vLLM and SGLang export (`vllm:` / `sglang:` prefixes)."""
_SAMPLE = re.compile(
    r"^(?:vllm|sglang):(request_(?:prompt|generation)_tokens)_(bucket|sum|count)(\{[^}]*\})?\s+(\S+)"
)
_LE = re.compile(r'le="([^"]+)"')


def _prometheus(text: str, path: Path) -> WorkloadProfile:
    """A Prometheus scrape: the two length histograms (module doc)."""
    buckets: dict[str, dict[float, float]] = {"request_prompt_tokens": {}, "request_generation_tokens": {}}
    sums = dict.fromkeys(buckets, 0.0)
    counts = dict.fromkeys(buckets, 0.0)
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        m = _SAMPLE.match(line)
        if m is None:
            continue
        name, kind, labels, raw = m.groups()
        try:
            value = float(raw)
        except ValueError:
            bad.append(number)
            continue
        if not math.isfinite(value) or value < 0:
            bad.append(number)
            continue
        if kind == "sum":
            sums[name] += value
        elif kind == "count":
            counts[name] += value
        else:
            le = _LE.search(labels or "")
            if le is not None and le.group(1) == "+Inf":
                continue  # the total, which `_count` holds too
            try:
                edge = float(le.group(1)) if le else math.nan
            except ValueError:
                edge = math.nan
            if not math.isfinite(edge) or not 0 < edge <= BOUNDS["isl"].hi:  # no request is longer
                bad.append(number)
                continue
            buckets[name][edge] = buckets[name].get(edge, 0.0) + value
    stats = []
    for name, what in (("request_prompt_tokens", "prompt"), ("request_generation_tokens", "output")):
        edges = sorted(buckets[name].items())
        if not edges or counts[name] <= 0 or sums[name] <= 0:
            raise InputError(f"{path}: the metrics hold no {what}-length histogram with requests in it")
        cumulative = [(max(e, 1.0), c) for e, c in edges]
        top = cumulative[-1][0]
        cumulative.append((top, counts[name]))  # above the last finite bucket: counted at its edge
        if not all(b[1] >= a[1] for a, b in pairwise(cumulative)):
            raise InputError(f"{path}: the {what}-length histogram's buckets are not cumulative")
        points = _cumulative_quantiles(cumulative)
        mean = sums[name] / counts[name]
        stats.append(
            LengthStats(
                mean=mean,
                cv=float(np.std(points) / mean),
                quantiles=tuple(round(x, 1) for x in points),
            )
        )
    return WorkloadProfile(
        source="prometheus",
        requests=round(counts["request_prompt_tokens"]),
        malformed=len(bad),
        malformed_lines=tuple(bad[:10]),
        isl=stats[0],
        osl=stats[1],
        request_rate=None,
        interarrival_cv=None,
        gamma_shape=None,
    )


def _cumulative_quantiles(cumulative: list[tuple[float, float]]) -> list[float]:
    """Lengths at percentiles 0…100 of a cumulative histogram (`workload.histogram_quantiles` over
    rounded edges; an edge that repeats adds nothing)."""
    from autoparallel.workload import histogram_quantiles

    while len(cumulative) > 1 and cumulative[1][1] <= 0:  # empty leading buckets: the next edge bounds
        cumulative = cumulative[1:]
    merged: list[tuple[int, int]] = []
    for edge, count in cumulative:
        point = (max(1, round(edge)), round(count))
        if merged and merged[-1][0] == point[0]:
            merged[-1] = point
        else:
            merged.append(point)
    if len(merged) == 1:
        return [float(merged[0][0])] * len(PERCENTILES)
    return list(histogram_quantiles(tuple(merged), len(PERCENTILES)))


def _bench(runs: list[dict[str, Any]], source: str, path: Path) -> WorkloadProfile:
    """A benchmark result: per-request lengths; the load as the benchmark set it. Several runs of one
    load (an SGLang result file gets a line per run) profile as one benchmark of all their prompts;
    runs of different loads are refused (merged, they were replayed as one run that never happened).

    Raises:
        InputError: no per-request lengths, or runs of different rates, caps or burstiness.
    """
    loads = {
        tuple(str(run.get(k)) for k in ("request_rate", "max_concurrency", "burstiness")) for run in runs
    }
    if len(loads) > 1:
        seen = "; ".join(f"rate {r}, max_concurrency {c}, burstiness {b}" for r, c, b in sorted(loads)[:4])
        raise InputError(
            f"{path}: {len(runs)} benchmark runs of {len(loads)} different loads ({seen}): profile one "
            "run at a time (one line of the file each)"
        )
    isl: list[int] = []
    osl: list[int] = []
    bad = 0
    for run in runs:
        ins, outs = run.get("input_lens") or [], run.get("output_lens") or []
        if not isinstance(ins, list) or not isinstance(outs, list):
            ins, outs = [], []
        bad += abs(len(ins) - len(outs))  # a request with one length only is not usable
        for a, b in zip(ins, outs, strict=False):
            ia, ob = _tokens(a), _tokens(b)
            if ia is None or ob is None:
                bad += 1
                continue
            isl.append(ia)
            osl.append(ob)
    if not isl:
        raise InputError(
            f"{path}: no per-request lengths (run the benchmark with --save-detailed / --output-details)"
        )
    last = runs[-1]
    rate = _seconds(last.get("request_rate"))
    rate = rate if rate is not None and 0 < rate <= MAX_RATE else None  # inf: all at once
    burstiness = _seconds(last.get("burstiness"))  # vLLM's --burstiness: a gamma shape, > 0
    conc = last.get("max_concurrency")
    return WorkloadProfile(
        source=source,
        requests=len(isl),
        malformed=bad,
        malformed_lines=(),
        isl=_stats(np.asarray(isl)),
        osl=_stats(np.asarray(osl)),
        request_rate=rate,
        interarrival_cv=None,
        gamma_shape=burstiness if rate is not None and burstiness is not None and burstiness > 0 else None,
        max_concurrency=conc if isinstance(conc, int) and not isinstance(conc, bool) and conc > 0 else None,
    )


def _json_lines(text: str) -> Iterator[tuple[int, Any]]:
    """(line number, its JSON value) for each non-blank line; None for one that is not JSON (malformed,
    as is any value that is not a request object)."""
    # JSON Lines end at "\n" only: str.splitlines also splits at U+0085, U+2028 and U+2029, which a
    # JSON string may hold raw (json.dumps(ensure_ascii=False) writes them).
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except (ValueError, RecursionError):  # not JSON, a 5,000-digit integer, nesting too deep
            yield number, None


def _requests(records: Iterable[tuple[int, Any]], path: Path) -> WorkloadProfile:
    """The profile of a request log's (line number, decoded line) records."""
    isl: list[int] = []
    osl: list[int] = []
    times: list[float] = []  # NaN: the line has no stamp
    numbers: list[int] = []
    bad_lines: list[int] = []
    runs: list[dict[str, Any]] = []
    for number, obj in records:
        if not isinstance(obj, dict):
            bad_lines.append(number)
            continue
        if "input_lens" in obj:  # an SGLang bench_serving run
            runs.append(obj)
            continue
        ia, ob = _tokens(_first(obj, PROMPT_KEYS)), _tokens(_first(obj, OUTPUT_KEYS))
        stamp = _first(obj, TIME_KEYS)
        t = _seconds(stamp)
        if ia is None or ob is None or (stamp is not None and (t is None or not abs(t) <= MAX_STAMP)):
            bad_lines.append(number)
            continue
        isl.append(ia)
        osl.append(ob)
        times.append(math.nan if t is None else t)
        numbers.append(number)
    timed = [i for i, t in enumerate(times) if not math.isnan(t)]
    if timed and len(timed) < len(times):
        # A log that stamps its requests: a line without a stamp cannot be placed in time.
        keep = set(timed)
        bad_lines = sorted(bad_lines + [n for i, n in enumerate(numbers) if i not in keep])
        isl, osl, times = [isl[i] for i in timed], [osl[i] for i in timed], [times[i] for i in timed]
        numbers = [numbers[i] for i in timed]
    if runs and not isl:
        prof = _bench(runs, "sglang-bench", path)
        return prof.model_copy(
            update={"malformed": prof.malformed + len(bad_lines), "malformed_lines": tuple(bad_lines[:10])}
        )
    if not isl:
        raise InputError(f"{path}: no usable request ({len(bad_lines)} malformed lines)")
    rate = cv = None
    unit = "s"
    if timed:
        # The log's unit from its middle stamp; a stamp read in another (a 0 or an ISO date among
        # epoch milliseconds) is malformed, not a cue to read every stamp in its unit.
        unit = epoch_unit(float(np.median(times)))
        odd = {i for i, t in enumerate(times) if epoch_unit(t) != unit}
        if odd and len(odd) < len(times):
            bad_lines = sorted(bad_lines + [numbers[i] for i in sorted(odd)])
            kept = [i for i in range(len(times)) if i not in odd]
            isl, osl, times = [isl[i] for i in kept], [osl[i] for i in kept], [times[i] for i in kept]
        times = [t / EPOCH_UNITS[unit] for t in times]
    if len(times) >= 2 and not math.isnan(times[0]):
        arrivals = np.sort(np.asarray(times))
        span = float(arrivals[-1] - arrivals[0])
        if span > 0 and (len(arrivals) - 1) / span <= MAX_RATE:
            rate = (len(arrivals) - 1) / span
            gaps = np.diff(arrivals)
            cv = round(float(gaps.std() / gaps.mean()), 6)  # evenly spaced: 0, not rounding noise
    return WorkloadProfile(
        source="request-log",
        requests=len(isl),
        malformed=len(bad_lines),
        malformed_lines=tuple(bad_lines[:10]),
        isl=_stats(np.asarray(isl)),
        osl=_stats(np.asarray(osl)),
        request_rate=rate,
        interarrival_cv=cv,
        gamma_shape=1.0 / (cv * cv) if cv else None,
        stamped=len(timed),
        time_unit=unit,
    )


def to_serving(prof: WorkloadProfile, name: str = "profiled") -> Serving:
    """The workload a profile describes: mean lengths with their measured percentiles, the arrival
    rate and its burstiness (the gamma shape, within `BOUNDS["burstiness"]`; evenly spaced arrivals
    its upper bound), and a max_model_len of the p99 prompt + the p99 output (at least the means),
    which the longest requests may exceed (`profile` says so). A benchmark result is
    a finite benchmark of its prompts (sent at once or at its rate, under its cap); a request log or a
    metrics scrape is a stream."""
    isl, osl = max(1, round(prof.isl.mean)), max(1, round(prof.osl.mean))
    most = BOUNDS["max_model_len"].hi
    if isl + osl > most:
        raise InputError(
            f"the profiled requests average {isl:,} + {osl:,} tokens, more than the {most:,}-token "
            "context autoparallel plans for"
        )
    finite = prof.source in ("vllm-bench", "sglang-bench")
    bound = BOUNDS["burstiness"]
    shape = prof.gamma_shape if prof.request_rate and prof.gamma_shape else 1.0
    if prof.request_rate and prof.interarrival_cv == 0:
        shape = bound.hi  # evenly spaced arrivals: the evenest gaps a gamma process of the bound gives

    return Serving(
        name=name,
        isl=isl,
        osl=osl,
        isl_quantiles=prof.isl.quantiles,
        osl_quantiles=prof.osl.quantiles,
        request_rate=float(f"{prof.request_rate:.6g}") if prof.request_rate else None,
        burstiness=round(min(max(shape, bound.lo), bound.hi), 4),
        concurrency=prof.max_concurrency,
        num_prompts=prof.requests if finite else None,
        max_model_len=min(max(isl + osl, math.ceil(prof.isl.p99 + prof.osl.p99)), most),
    )


def write_workload_file(path: str | Path, prof: WorkloadProfile, serving: Serving) -> None:
    """A workload file: {"serving": Serving fields, "profile": what the log said}.

    Raises:
        InputError: the file cannot be written.
    """
    doc = {"serving": serving.model_dump(exclude_defaults=True), "profile": prof.model_dump()}
    try:
        Path(path).write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as exc:
        raise InputError.cannot_write("workload file", path, exc) from None


def load_workload_file(path: str | Path) -> Serving:
    """The `Serving` a workload file (written by `autoparallel profile`) holds.

    Raises:
        InputError: unreadable, not JSON, or not a workload.
    """
    from autoparallel.models.config_file import read_config

    p = Path(path)
    try:
        doc = read_config(p)  # strict: bounded size, known encoding, finite numbers
    except InputError as exc:
        raise InputError(f"workload file: {exc}") from None
    body = doc.get("serving")
    if not isinstance(body, dict):
        raise InputError(f"workload file {p} has no 'serving' object")
    try:
        return Serving.model_validate(body)
    except ValidationError as exc:
        raise InputError(f"workload file {p}: {first_error(exc, 'serving')}") from None
    except ValueError as exc:
        raise InputError(f"workload file {p}: {str(exc).splitlines()[0]}") from None
