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
  prompt at once, a finite benchmark of `completed` prompts). Where vLLM's rate is "inf" but the run
  was not sent at once (a `--ramp-up-strategy` run, a self-timed trace), its per-request `start_times`
  are profiled as a log's stamps; without them a ramp is planned at its mean rate (`_bench`). Requests
  the benchmark recorded as failed are counted apart, not profiled. Which engine wrote a result is read
  from its keys.
- **a server's Prometheus metrics** (a scrape of vLLM's or SGLang's `/metrics`): the
  `vllm:` / `sglang:` `request_prompt_tokens` and `request_generation_tokens` histograms (current
  SGLang's `prompt_tokens_histogram` / `generation_tokens_histogram`, `PROMPT_HISTOGRAM`), summed
  over their label sets. Mean lengths are exact (`_sum` / `_count`); percentiles rise geometrically
  inside a bucket (`workload.histogram_quantiles`); the spread is the buckets' (`_histogram_cv`).
  Requests above the last finite bucket (vLLM's edges stop at the last 1-2-5 step within
  `--max-model-len`, so at 5,000 on an 8,192-token server) are spread above its edge at the mean the
  `_sum` leaves them (`_overflow`), and reported (`LengthStats.above_last_bucket`). One scrape holds
  no arrival times, so no rate is derived.

Lines that are not JSON or lack positive whole token counts (100.0 is whole; 100.9 is no tokenizer's
count, not cut to 100) are malformed: counted, reported and skipped, never fatal. A request whose stamp
lies far outside the log's (a `timestamp: 0` among epoch stamps, before 1973 on a minority of lines, or
a mistyped year, `stray_stamps`) or is read in another unit than the log's (`epoch_unit`: a 0 among
epoch milliseconds) is a request with a suspect stamp, not a malformed line: its lengths are profiled,
its stamp is left out of the rate and the burstiness, and it is counted and reported apart
(`WorkloadProfile.outlying_stamps`). A gzip-compressed file (`.jsonl.gz`, read by its magic bytes) is
decompressed first.

What is derived: mean and spread (std / mean) of prompt and output lengths and their percentiles (0 to
100 in steps of 1), the arrival rate (requests - 1 over the span from the first arrival to the last: n
stamps bound n - 1 gaps, so the rate is the gaps' count over their total time, one over the mean gap;
times the share of requests served, `_fit`) and burstiness: the spread of inter-arrival gaps (1 for a
Poisson stream; vLLM's `--burstiness` gamma shape is 1 / spread²). The rate is the log's mean; how it
varies over the log is measured too (`busiest_windows`): a request log's busiest 5 minutes and hour,
with when they began, and where one runs above what a steady stream reaches by chance and at least
`PEAK_RATIO` times the mean, its rate as `WorkloadProfile.peak_rate`, which `profile` prints as the
`plan --request-rate` to plan for the peak (the workload written keeps the mean). Gaps equal to within
the stamps' float precision are even (`_stamp_noise`); stamps too coarse to show the gaps' spread (whole
seconds at 5 requests/s, `COARSE_STAMPS`) give the rate only, planned as Poisson. A log whose requests
all carry one time was sent at once: it is a finite burst of its prompts, as a benchmark at rate inf is.

The context: the workload's max_model_len is the p99 prompt plus the p99 output, and the workload is
of the requests a server of that context serves, as it serves them (`_fit`): a prompt of
max_model_len tokens or more is refused (vLLM's `OpenAIServing._validate_prompt_and_tokenize`), so it
is left out of the lengths, the rate and the prompt count, counted (`WorkloadProfile.left_out`) and
reported by `profile`; a served request's output ends at the context, as the replay ends it. A mean
that counted requests the written context refuses planned tokens no server would run. A metrics
scrape holds no per-request pairs, so nothing is left out of one (its longest requests may exceed the
context, and `profile` says so).

The workload written keeps the measured length percentiles (`Serving.isl_quantiles` /
`osl_quantiles`), not only mean and spread: a burst's mean TPOT is set by its short requests, and a
log-normal of the same mean and spread can hold far fewer of them. Its last value carries the top
percent's mean (`workload.mean_carrying_quantiles`), so the shape's mean and spread are the sample's.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from autoparallel.bounds import BOUNDS, clean_text, first_error
from autoparallel.errors import InputError
from autoparallel.perf.serving_load import MAX_REPLAY_PASSES
from autoparallel.user_file import read_capped
from autoparallel.workload import PRESETS, Serving, mean_carrying_quantiles, not_the_preset

PROMPT_KEYS = ("prompt_tokens", "input_tokens", "isl", "input_len", "prompt_len", "num_prompt_tokens")
OUTPUT_KEYS = ("output_tokens", "completion_tokens", "osl", "output_len", "generated_tokens")
TIME_KEYS = ("timestamp", "arrival_time", "arrival", "time", "t", "ts", "created", "send_time", "start_time")
"""Keys a request log's line may stamp its arrival under (seconds, or an ISO 8601 time); the first
present wins. A log with none of them on any line has no arrival rate: it is planned as a stream at
whatever rate the deployment sustains, and `profile` says so."""


MAX_LOG_BYTES = 1 << 30
"""1 GiB: about ten million request lines, read (and held) whole; a bigger log is sampled or split by the
user, not read for minutes."""
PERCENTILES = np.linspace(0.0, 100.0, 101)
"""The length percentiles a profile keeps: 0, 1, …, 100."""


class Overflow(BaseModel):
    """The requests a metrics scrape counts only in its histogram's `le="+Inf"` bucket (`_overflow`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    edge: float
    """The last finite bucket's upper edge (tokens)."""
    requests: int
    """Requests above it."""
    share: float
    """Their share of all requests (0 to 1)."""
    mean: float
    """Their mean length: the histogram's `_sum` less the finite buckets' share, over their count (at
    least the edge)."""
    spread_to: float
    """The length they are spread up to, from the edge (geometrically, at that mean)."""


class LengthStats(BaseModel):
    """Distribution of one length (tokens)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mean: float
    cv: float
    quantiles: tuple[float, ...]
    """Lengths at percentiles 0, 1, …, 100."""
    above_last_bucket: Overflow | None = None
    """A metrics scrape: the requests above its histogram's last finite bucket (None: none, or not a
    scrape)."""

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


class RateWindow(BaseModel):
    """A request log's busiest window of one length (`busiest_windows`): where its rate ran highest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seconds: float
    """The window's length (`RATE_WINDOWS`)."""
    requests: int
    """Stamped arrivals in it (the requests left out by `_fit` too: they arrive)."""
    rate: float
    """Requests per second in it, of the requests served (times the served share, as
    `WorkloadProfile.request_rate`)."""
    start: float
    """When it began: seconds after the log's first (not outlying) stamp."""
    start_utc: str | None
    """When it began as a UTC date-time, where the stamps are epoch times (None: counted from another
    clock's zero)."""
    steady_limit: float
    """The rate (requests/s, as `rate`) that a steady stream at the log's mean rate and inter-arrival
    spread stays below in its busiest window of this length over a log this long (`busiest_windows`:
    passed by about 1 in 9,000 simulated steady logs)."""
    varies: bool
    """The window ran above `steady_limit` and at least `PEAK_RATIO` times the mean rate, and holds
    `MIN_WINDOW_REQUESTS` at the mean: the rate varies over the log."""


class WorkloadProfile(BaseModel):
    """What a log says about its traffic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    """`request-log`, `vllm-bench`, `sglang-bench` or `prometheus`."""
    requests: int
    """Requests read."""
    malformed: int
    """Lines (or entries) skipped because they were not usable, or because they were of the kind a file
    mixing benchmark runs with request lines holds fewer requests of (`_requests`)."""
    malformed_lines: tuple[int, ...]
    """Line numbers of the first skipped lines (at most 10)."""
    isl: LengthStats
    osl: LengthStats
    request_rate: float | None
    """Requests per second over the arrival span (None: all at once, or no arrival times)."""
    interarrival_cv: float | None
    """std / mean of inter-arrival gaps (1: Poisson; 0: evenly spaced)."""
    gamma_shape: float | None
    """vLLM `--burstiness` equivalent: 1 / cv² (None when there are no gaps, or they are even)."""
    max_concurrency: int | None = None
    """The benchmark's client cap, where the file records one."""
    failed: int = 0
    """Benchmark requests recorded as failed (output length 0, or an error): not profiled, not malformed."""
    load: str | None = None
    """Where a benchmark's arrival rate came from: `configured` (its `--request-rate` / `--burstiness`),
    `start-times` (its per-request send times, profiled as a log's stamps) or `ramp-mean` (the mean of
    its ramp-up, `ramp_up`). None for logs and scrapes."""
    ramp_up: str | None = None
    """A vLLM ramp-up benchmark's ramp, e.g. `linear 1 to 20 requests/s`."""
    stamped: int = 0
    """Requests whose line stamped its arrival (`TIME_KEYS`; request logs only)."""
    time_unit: str = "s"
    """The unit numeric stamps were read in (`epoch_unit`): s, ms, us or ns."""
    max_model_len: int | None = None
    """The context the workload is written for (`_fit`: the p99 prompt + the p99 output). None: a profile
    made elsewhere, which `to_serving` sizes from its percentiles."""
    left_out: int = 0
    """Of `requests`, those whose prompt alone reaches `max_model_len`, which a server of that context
    refuses (`_fit`): not in the lengths, the rate or the prompt count (module doc)."""
    left_out_longest: tuple[int, int] | None = None
    """The longest prompt and the longest output among the requests left out."""
    outputs_cut: int = 0
    """Requests served whose output ran past `max_model_len`: their output is counted as ending there."""
    stamp_resolution: float | None = None
    """Seconds between the values the stamps can take (1 for whole-second stamps) where that is too
    coarse to show the arrivals' spread (`COARSE_STAMPS`): the rate is derived, the burstiness not.
    None: fine enough, or no stamps."""
    outlying_stamps: int = 0
    """Of `requests`, those whose stamp lies far outside the log's (`stray_stamps`: a `timestamp: 0`
    among epoch stamps, an epoch stamp among ones counted from the log's start, a mistyped year) or is
    read in another unit than the log's (`epoch_unit`: a 0 among epoch milliseconds): their
    lengths are profiled, their stamps left out of the rate and the burstiness. Not malformed: the stamp
    is suspect, the token counts are not."""
    outlying_stamp_lines: tuple[int, ...] = ()
    """Line numbers of the first requests with an outlying stamp (at most 10)."""
    busiest: tuple[RateWindow, ...] = ()
    """A request log's busiest window of each length in `RATE_WINDOWS` that it spans `MIN_WINDOWS`
    times (`busiest_windows`); empty for a shorter log, one without a rate, and other sources."""
    peak_rate: float | None = None
    """Where the rate varies over the log (a window of `busiest` `varies`): the highest such window's
    rate, the figure to plan for the peak (`plan --request-rate`; the hour's rate under a 5-minute burst
    12x higher under-sized it); `request_rate` stays the mean. None: steady, or not measured."""

    @property
    def kept(self) -> int:
        """The requests the workload holds: `requests` less those `left_out`."""
        return self.requests - self.left_out

    @property
    def sent_at_once(self) -> bool:
        """A request log whose two or more stamped requests all carry one time (or times closer than
        `MAX_RATE` allows): every prompt sent at once, a finite burst."""
        return (
            self.source == "request-log" and self.stamped > 0 and self.kept >= 2 and self.request_rate is None
        )


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
    if isinstance(value, int) and abs(value) > MAX_STAMP:  # float() of a 400-digit integer overflows
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        stamp = iso_seconds(value)
        if stamp is not None:
            return stamp
        try:
            seconds = float(value)
        except ValueError:
            return None
        return seconds if math.isfinite(seconds) else None  # "inf", "NaN"
    return None


_ISO_STAMP = re.compile(
    r"(?P<y>\d{4})(?P<dash>-?)(?P<mo>\d{2})(?P=dash)(?P<d>\d{2})"
    r"(?:[Tt _](?P<h>\d{2})(?::?(?P<mi>\d{2})(?::?(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?)?"
    r"(?P<tz>[Zz]|(?P<sign>[+-])(?P<oh>\d{2})(?::?(?P<om>\d{2})(?::?(?P<os>\d{2}))?)?)?)?"
)
"""An ISO 8601 / RFC 3339 date-time (`iso_seconds`): a date, extended (2026-01-01) or basic
(20260101, then only with a time: a bare 8-digit string is a number), then optionally `T` (or t, a
space, _), hours, minutes, seconds with a fraction of any length (`.` or `,`), and an offset (`Z`, z,
±HH, ±HH:MM, ±HHMM, ±HH:MM:SS)."""


def iso_seconds(text: str) -> float | None:
    """The epoch seconds of an ISO 8601 / RFC 3339 stamp (`_ISO_STAMP`), or None where `text` is not one
    (or names no real time: month 13, hour 25). Parsed here, not by `datetime.fromisoformat`, so that
    every supported Python reads the same stamps the same way: 3.10's accepts only 3- or 6-digit
    fractions and no `Z`, so a log stamped `2026-01-01T00:00:00.123456789Z` (nanoseconds, as Go's
    RFC3339Nano and most log shippers write) was all malformed there, and Go's trimmed fractions
    (`.12Z`, `.1Z`) dropped a line in ten, where 3.11+ reads both (truncating past microseconds, as here).
    A fraction is cut to microseconds, not rounded (3.11's `fromisoformat`); a stamp without an offset
    is local time (`datetime.timestamp`). Week and ordinal dates (2026-W01-1, 2026-001) are not read."""
    m = _ISO_STAMP.fullmatch(text)
    if m is None or (not m["dash"] and m["h"] is None):
        return None
    g = m.groupdict()
    zone: timezone | None = None
    try:
        if g["tz"] in ("Z", "z"):
            zone = timezone.utc
        elif g["sign"]:
            offset = timedelta(hours=int(g["oh"]), minutes=int(g["om"] or 0), seconds=int(g["os"] or 0))
            zone = timezone(-offset if g["sign"] == "-" else offset)
        moment = datetime(
            int(g["y"]),
            int(g["mo"]),
            int(g["d"]),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
            int((g["f"] or "")[:6].ljust(6, "0")),
            tzinfo=zone,
        )
        return moment.timestamp()
    except (ValueError, OverflowError):  # month 13, an offset of a day or more, year 1 local
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


STRAY_SHARE = 0.01
"""The most stamps at either end of a log that `stray_stamps` may find far from the rest: 1 in 100
(at least 1, from `MIN_FENCED` stamps), the 1st and 99th percentiles bounding the log's core."""
STRAY_REACH = 100.0
"""How far past its core a stamp must lie to be outlying (`stray_stamps`), in core spans: kept, it
would stretch the span the arrival rate is measured over more than a hundredfold, and plan the log at
under 1 % of the rate its other 99 % of requests arrived at."""
MIN_FENCED = 20
"""Fewer stamps than this have no core to measure a stray against: the percentile rule of `stray_stamps`
finds none (the epoch floor's, `other_clock_stamps`, needs no core)."""
MIN_CORE_SPAN = 1.0
"""Seconds: a core narrower than this is read as this wide (`stray_stamps`). Whole-second stamps (vLLM's
`created`) put a burst sent within a second at one stamp; a log sent at once with a straggler a
second later is a log, not an outlying stamp."""
EPOCH_FLOOR = 1e8
"""Seconds: 1973-03-03, the floor between the two clocks a log's stamps are read on (`other_clock_stamps`).
An epoch clock has written nothing below it since; a clock counted from the log's start (or a machine's
boot) reaches it only after 3.2 years."""


def other_clock_stamps(times: np.ndarray) -> np.ndarray:
    """Indices of the arrival stamps (seconds, any order) on the other side of `EPOCH_FLOOR` from the
    log's median stamp, whatever their share up to a minority: a `timestamp: 0`, a negative or a small
    offset among epoch stamps cannot be from the same clock (two zeros among 150 requests at 1 per second,
    1.3 %, past the percentile rule's 1 %, read as 8.4e-8 requests/s), nor an epoch stamp among stamps
    counted from the log's start. Logs of any size: one zero among 19 requests read as 1.0e-8.

    Such a stamp is outlying only where all three hold: fewer than half the stamps lie on its side of
    the floor; the gap between the two sides is wider than the majority's own span (at least
    `MIN_CORE_SPAN`), so they are two clocks, not one clock's log crossing the floor; and, for epoch
    stamps among relative ones, the relative stamps are not mostly one value (a log whose stamps are
    mostly 0 is as likely missing stamps written as 0 as a burst at its start: the epoch stamps may be
    the real ones, and keeping the zeros alone would plan a burst; it is left as it is). What it must not
    drop, and does not:

    - a log counted from its start (0, 0.2, ...) or from a machine's boot: no stamp reaches the floor;
    - a log of epoch stamps alone, however bursty, idle or long-tailed, shuffled or sent at once: no
      stamp is below the floor (the percentile rule of `stray_stamps` judges its tails);
    - a clock counted from the log's start in milliseconds (read as seconds, `epoch_unit`) over more
      than 28 hours, which crosses the floor: the gap at the crossing is one arrival gap, not wider than
      the log;
    - half the stamps or more on the other side: no majority tells which clock the log is on."""
    n = len(times)
    none = np.zeros(0, dtype=int)
    if n < 2:
        return none
    epoch = times >= EPOCH_FLOOR
    if float(np.median(times)) >= EPOCH_FLOOR:
        odd = ~epoch
    else:
        odd = epoch
        relative = times[~epoch]
        if 2 * int(np.unique(relative, return_counts=True)[1].max()) >= len(relative):
            return none
    count = int(odd.sum())
    if count == 0 or 2 * count >= n:
        return none
    rest, other = times[~odd], times[odd]
    span = max(float(rest.max() - rest.min()), MIN_CORE_SPAN)
    gap = float(rest.min() - other.max()) if not epoch[odd].any() else float(other.min() - rest.max())
    return np.flatnonzero(odd) if gap > span else none


def stray_stamps(times: np.ndarray) -> np.ndarray:
    """Indices of the arrival stamps (seconds, any order) that lie far outside the bulk of the log's: a
    `timestamp: 0` (1970) among epoch stamps, an epoch stamp among ones counted from the log's start, a
    mistyped year. Each stretched the arrival span to decades: one 0 among 3,000 requests at 60 per
    second read as 1.7e-6 requests/s. Only the stamp is suspect: `_requests` profiles such a request's
    lengths and leaves its stamp out of the rate and the burstiness (`WorkloadProfile.outlying_stamps`).

    Two rules. First the epoch floor (`other_clock_stamps`): a minority of stamps on the other side of
    `EPOCH_FLOOR` (1973) from the log's median, whatever their share and in logs of any size. Then, on
    the stamps left, percentile fences (as Tukey's interquartile fences but from the 1st to the 99th
    percentile and a hundred spans wide), for strays on the log's own side of the floor (a mistyped
    year): the core is the stamps from the `STRAY_SHARE`-th lowest to as high a one (the 1st to 99th
    percentile), its span at least `MIN_CORE_SPAN`; a stamp more than `STRAY_REACH` core spans below or
    above the core is stray. What it must not drop, and does not:

    - a long idle gap inside the log (two bursts an hour apart, a night between two days of traffic):
      both sides hold more than 1 % of the requests, so the gap is inside the core;
    - bursty traffic, however small its median gap: the fences scale with the core's span, not a gap;
    - a tail of more than 1 % of the requests (a second session), however late, and a straggler
      within a hundred core spans (a 10-minute log's last request 16 hours on);
    - a log sent at once and a straggler within 100 s (`MIN_CORE_SPAN`);
    - shuffled lines (the stamps are sorted here) and logs under `MIN_FENCED` stamps (no core).

    Past 1 % at either end, strays on the log's side of the floor are part of the core and the log keeps
    its long span (a mistyped year on 2 % of the lines)."""
    floor = other_clock_stamps(times)
    n = len(times) - len(floor)
    if n < MIN_FENCED:
        return floor
    left = np.setdiff1d(np.arange(len(times)), floor)
    kept = times[left]
    ends = max(1, int(n * STRAY_SHARE))
    ordered = np.sort(kept)
    low, high = float(ordered[ends]), float(ordered[n - 1 - ends])
    reach = STRAY_REACH * max(high - low, MIN_CORE_SPAN)
    far = left[(kept < low - reach) | (kept > high + reach)]
    return np.union1d(floor, far)


def _tokens(value: Any) -> int | None:
    """A token count: a whole number (100.0 is one) from 1 to the length bound, else None (the line or
    entry is malformed). A fractional count (100.9) is no tokenizer's: it was cut to 100 without a word."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not 1 <= value <= BOUNDS["isl"].hi:  # isl's bound is osl's; NaN fails it (math.isfinite of a
        return None  # 400-digit integer overflows)
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def profile_file(path: str | Path) -> WorkloadProfile:
    """Profile a request log or a vLLM / SGLang benchmark result file.

    Raises:
        InputError: the file cannot be read or holds no usable request.
    """
    from autoparallel.models.config_file import decode_lenient

    p = Path(path)
    data = read_capped(p, "request log", MAX_LOG_BYTES)
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(data, p)
    text = decode_lenient(data)
    if not text.strip():
        raise InputError(f"request log {str(p)!r} is empty")
    stripped = text.lstrip()
    if (
        any(h in text for h in PROMPT_HISTOGRAM)
        and any(h in text for h in OUTPUT_HISTOGRAM)
        and not stripped.startswith("{")
    ):
        return _prometheus(text, p)
    if stripped.startswith("{") and "\n{" not in stripped.rstrip():
        try:
            whole = json.loads(stripped)
        except (ValueError, RecursionError):  # not JSON, a 5,000-digit integer, nesting too deep
            whole = None
        if isinstance(whole, dict) and _is_bench(whole):
            return _bench([whole], _bench_source([whole], one_object=True), p)
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except (ValueError, RecursionError):
            items = None
        if isinstance(items, list):  # a JSON array of requests: element k is read as line k
            return _requests(enumerate(items, start=1), p)
    return _requests(_json_lines(text), p)


GZIP_MAGIC = b"\x1f\x8b"
"""The first two bytes of a gzip file (RFC 1952): a `.jsonl.gz` log read as text was "2 malformed
lines"."""


def _gunzip(data: bytes, path: Path) -> bytes:
    """The decompressed bytes of a gzip file, at most `MAX_LOG_BYTES`.

    Raises:
        InputError: not a whole gzip stream, or more than `MAX_LOG_BYTES` once decompressed.
    """
    name = f"request log {clean_text(str(path), 200)!r}"
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            out = fh.read(MAX_LOG_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        why = clean_text(str(exc) or exc.__class__.__name__, 100)
        raise InputError(f"{name} is gzip-compressed but does not decompress ({why})") from None
    if len(out) > MAX_LOG_BYTES:
        raise InputError(
            f"{name} is gzip-compressed and decompresses to more than {MAX_LOG_BYTES >> 30} GiB, the most "
            "autoparallel reads of one"
        )
    return out


PROMPT_HISTOGRAM = ("request_prompt_tokens_bucket", "prompt_tokens_histogram_bucket")
OUTPUT_HISTOGRAM = ("request_generation_tokens_bucket", "generation_tokens_histogram_bucket")
"""The length histograms vLLM and SGLang export (`vllm:` / `sglang:` prefixes): vLLM's and old SGLang's
`request_prompt_tokens` / `request_generation_tokens`, and current SGLang's `prompt_tokens_histogram` /
`generation_tokens_histogram` (`TokenizerMetricsCollector` in sglang/srt/metrics/collector.py, exported
with `--collect-tokens-histogram`)."""
_SAMPLE = re.compile(
    r"^(?:vllm|sglang):(request_(?:prompt|generation)_tokens|(?:prompt|generation)_tokens_histogram)"
    r"_(bucket|sum|count)(\{[^}]*\})?\s+(\S+)"
)
_HISTOGRAMS = {
    "prompt": ("request_prompt_tokens", "prompt_tokens_histogram"),
    "output": ("request_generation_tokens", "generation_tokens_histogram"),
}
"""Each length's histogram names, in the order read: a scrape holding both is read from the first with
requests in it (summing both would count every request twice)."""
_LE = re.compile(r'le="([^"]+)"')


def _prometheus(text: str, path: Path) -> WorkloadProfile:
    """A Prometheus scrape: the two length histograms (module doc)."""
    buckets: dict[str, dict[float, float]] = {n: {} for names in _HISTOGRAMS.values() for n in names}
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
    used: list[str] = []
    for what, names in _HISTOGRAMS.items():
        name = next((n for n in names if counts[n] > 0), names[0])
        used.append(name)
        edges = sorted(buckets[name].items())
        if not edges or counts[name] <= 0 or sums[name] <= 0:
            raise InputError(f"{path}: the metrics hold no {what}-length histogram with requests in it")
        cumulative = [(max(e, 1.0), c) for e, c in edges]
        if not all(b[1] >= a[1] for a, b in pairwise([*cumulative, (math.inf, counts[name])])):
            raise InputError(f"{path}: the {what}-length histogram's buckets are not cumulative")
        mean = sums[name] / counts[name]
        above = _overflow(cumulative, counts[name], sums[name])
        top = above.spread_to if above is not None else cumulative[-1][0]
        points = _cumulative_quantiles([*cumulative, (top, counts[name])])
        if mean > points[-1] * (1 + 1e-9):
            raise InputError(
                f"{path}: the {what}-length histogram's mean ({mean:,.0f} tokens, _sum / _count) is above "
                f"the top edge of its buckets that hold requests ({points[-1]:,.0f}), and none is above "
                "them: the counts and the sum are not of one scrape"
            )
        stats.append(
            LengthStats(
                mean=mean,
                cv=_histogram_cv([*cumulative, (top, counts[name])]),
                quantiles=tuple(round(x, 1) for x in points),
                above_last_bucket=above,
            )
        )
    return WorkloadProfile(
        source="prometheus",
        requests=round(counts[used[0]]),
        malformed=len(bad),
        malformed_lines=tuple(bad[:10]),
        isl=stats[0],
        osl=stats[1],
        request_rate=None,
        interarrival_cv=None,
        gamma_shape=None,
    )


def _geometric_mean_length(lo: float, hi: float) -> float:
    """The mean length of a bucket from `lo` to `hi` whose lengths rise geometrically, as
    `workload.histogram_quantiles` spreads them: (hi - lo) / ln(hi / lo)."""
    return lo if hi <= lo * (1 + 1e-12) else (hi - lo) / math.log(hi / lo)


def _overflow(cumulative: list[tuple[float, float]], count: float, total: float) -> Overflow | None:
    """The requests a histogram holds above its last finite edge (`count` less that edge's count), or
    None. vLLM's length histograms end at `build_1_2_5_buckets(max_model_len)` (vllm/v1/metrics/
    buckets.py `histogram_buckets`, read by loggers.py `PrometheusStatLogger`), so on a server of
    --max-model-len 8192 every prompt over 5,000 tokens is in `+Inf` only. Their mean is the `_sum`
    (`total`) less the finite buckets' share (each bucket's count at its geometric mean length,
    `_geometric_mean_length`, the first edge's count at that edge, as `histogram_quantiles` places
    them), over their count, and at least the edge; they are spread geometrically from the edge to the
    length that gives that mean (at most `BOUNDS["isl"].hi`), not piled at the edge: a pile there put
    the p99 (4,954) and the "max" (5,000) under the mean (5,255), and the plan's max_model_len (5,555)
    under half the requests."""
    edge, upto = cumulative[-1]
    over = count - upto
    if over <= 0:
        return None
    finite = cumulative[0][0] * cumulative[0][1] + sum(
        (b - a) * _geometric_mean_length(lo, hi) for (lo, a), (hi, b) in pairwise(cumulative)
    )
    mean = max(edge, (total - finite) / over)
    ratio, lo, hi = mean / edge, 1.0, 2.0  # the end / edge whose geometric spread has that mean
    most = BOUNDS["isl"].hi / edge
    while _geometric_mean_length(1.0, hi) < ratio and hi < most:
        lo, hi = hi, hi * 2.0
    hi = min(hi, most)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _geometric_mean_length(1.0, mid) < ratio else (lo, mid)
    end = edge if ratio <= 1 + 1e-12 else edge * hi
    return Overflow(
        edge=edge,
        requests=round(over),
        share=round(over / count, 6),
        mean=round(mean, 1),
        spread_to=round(end, 1),
    )


def _merged_edges(cumulative: list[tuple[float, float]]) -> list[tuple[int, int]]:
    """A cumulative histogram as `workload.histogram_quantiles` takes it: rounded edges (an edge that
    repeats adds nothing), empty leading buckets dropped (the last empty edge bounds the first bucket)."""
    while len(cumulative) > 1 and cumulative[1][1] <= 0:
        cumulative = cumulative[1:]
    merged: list[tuple[int, int]] = []
    for edge, count in cumulative:
        point = (max(1, round(edge)), round(count))
        if merged and merged[-1][0] == point[0]:
            merged[-1] = point
        else:
            merged.append(point)
    return merged


def _cumulative_quantiles(cumulative: list[tuple[float, float]]) -> list[float]:
    """Lengths at percentiles 0…100 of a cumulative histogram (`workload.histogram_quantiles` over
    `_merged_edges`)."""
    from autoparallel.workload import histogram_quantiles

    merged = _merged_edges(cumulative)
    if len(merged) == 1:
        return [float(merged[0][0])] * len(PERCENTILES)
    return list(histogram_quantiles(tuple(merged), len(PERCENTILES)))


def _histogram_cv(cumulative: list[tuple[float, float]]) -> float:
    """The length spread (std / mean) of a cumulative histogram, from its buckets' counts: each at the
    bucket's mean length as the quantiles spread it (`_merged_edges`, `workload.histogram_quantiles`:
    the first edge's count at that edge, a bucket's lengths rising geometrically from its lower edge to
    its upper, mean (hi - lo) / ln(hi / lo), `_geometric_mean_length`), the requests above the last
    finite edge at the mean `_overflow` spreads them to; the same placement as `_overflow`'s, so with
    requests above the edge the histogram's mean is the scrape's exact one. The std of the 101
    percentile points it replaced weighed the top edge (p100) as a percent of the requests: a vLLM
    scrape's 30 outputs of 50,000 between 2,000 and 5,000 tokens made p100 5,000 and the spread 2.49,
    where the requests' own was 0.95 (now 0.98). Spreading each bucket's count over the bucket
    instead (log-uniform) adds the spread a 1-2-5 bucket (up to 2.5x wide) holds geometrically where
    real lengths bunch: 50,000 lognormal lengths of mean 20 to 500 under vLLM's edges to 5,000 read
    their spread within 10 % so at spreads 0.75 to 1.5 (that way up to 17 % high), and at spread 0.5,
    which a 2.5x bucket barely resolves, 8 % to 19 % high (that way 22 % to 30 %)."""
    merged = _merged_edges(cumulative)
    first, below = merged[0]
    total, mean, square = float(below), float(first * below), float(first * first * below)
    for (lo, a), (hi, b) in pairwise(merged):
        if b > a:
            length = _geometric_mean_length(lo, hi)
            total += b - a
            mean += (b - a) * length
            square += (b - a) * length * length
    if total <= 0:
        return 0.0
    mean, square = mean / total, square / total
    return math.sqrt(max(square - mean * mean, 0.0)) / mean


VLLM_BENCH_KEYS = frozenset(
    {"endpoint_type", "tokenizer_id", "ramp_up_strategy", "start_times", "queue_times"}
)
"""Keys only `vllm bench serve` writes in a result (vllm/benchmarks/serve.py `main_async`, `benchmark`)."""
SGLANG_BENCH_KEYS = frozenset(
    {"dataset_name", "sharegpt_output_len", "random_input_len", "random_range_ratio", "server_info"}
)
"""Keys only `sglang.bench_serving` writes in a result (python/sglang/bench_serving.py `benchmark`)."""
LOAD_KEYS = (
    "request_rate",
    "max_concurrency",
    "burstiness",
    "ramp_up_strategy",
    "ramp_up_start_rps",
    "ramp_up_end_rps",
)
"""The fields that set a benchmark's load: runs that differ in one are different loads."""
RAMP_KEYS = LOAD_KEYS[3:]
"""A vLLM ramp-up's fields: its strategy, start and end rates."""
RAMPS = ("linear", "exponential")
"""vLLM's `--ramp-up-strategy` values (serve.py `_get_current_request_rate`)."""


def _is_bench(obj: dict[str, Any]) -> bool:
    """A benchmark result (with or without its per-request lists), not a request log's line."""
    return "input_lens" in obj or (
        "request_rate" in obj and any(k in obj for k in ("completed", "duration", "request_throughput"))
    )


def _bench_source(runs: list[dict[str, Any]], *, one_object: bool) -> str:
    """`vllm-bench` or `sglang-bench`, by the keys only one of them writes; a result with neither's is
    read by its shape (vLLM writes one JSON object, or one per line with --append-result; SGLang a line
    per run)."""
    keys = {k for run in runs for k in run}
    if keys & VLLM_BENCH_KEYS:
        return "vllm-bench"
    if keys & SGLANG_BENCH_KEYS:
        return "sglang-bench"
    return "vllm-bench" if one_object else "sglang-bench"


def _gap_stats(gaps: list[np.ndarray], noise: float = 0.0) -> tuple[float | None, float | None]:
    """(rate, spread) of inter-arrival gaps (each array one stream's, in seconds): the number of gaps over
    their total time (for one stream, requests - 1 over the arrival span) and std / mean of the gaps, 0
    where they differ by no more than `noise` (`_stamp_noise`). (None, None) when there are no gaps, no
    time between them, or a rate past `MAX_RATE` (all at once)."""
    pooled = np.concatenate(gaps) if gaps else np.zeros(0)
    total = float(pooled.sum())
    if not len(pooled) or not total > 0 or len(pooled) / total > MAX_RATE:
        return None, None
    if float(pooled.max() - pooled.min()) <= noise:
        return len(pooled) / total, 0.0
    return len(pooled) / total, round(float(pooled.std() / pooled.mean()), 6)  # even gaps: 0, not noise


def _number_list(value: Any, n: int) -> np.ndarray | None:
    """`value` as n finite floats, or None."""
    if not isinstance(value, list) or len(value) != n:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    if any(isinstance(v, int) and abs(v) > MAX_STAMP for v in value):  # float() of it overflows
        return None
    out = np.asarray(value, dtype=float)
    return out if bool(np.isfinite(out).all()) else None


def _arrival_gaps(run: dict[str, Any], n: int, cap: int | None) -> np.ndarray | None:
    """The gaps between a run's arrivals, from its per-request `start_times` (vLLM `--save-detailed`), or
    None where it has none, or where they are not arrival times; an empty array when the run sent every
    request at once.

    vLLM stamps `start_time` as the request function starts (serve.py `limited_request_func`), inside the
    `--max-concurrency` semaphore: under a cap that is when a client slot freed, so an arrival is
    `start_times - queue_times` (the client queue time it records), and without `queue_times` a capped
    run's arrivals are unknown. A run sent at once (request rate inf) starts every request in one burst
    before any answer comes back: when its last arrival precedes its first token (`ttfts`), it is at once,
    not a stream of thousands of requests per second. `cap`: the run's `max_concurrency` (`_cap`)."""
    starts = _number_list(run.get("start_times"), n)
    if starts is None or n < 2:
        return None
    queue = _number_list(run.get("queue_times"), n)
    if queue is not None:
        arrivals = starts - queue
    elif cap is not None:
        return None
    else:
        arrivals = starts
    ttfts = _number_list(run.get("ttfts"), n)
    if ttfts is not None and (ttfts > 0).any():
        first_token = float((starts + ttfts)[ttfts > 0].min())
        if float(arrivals.max()) <= first_token:
            return np.zeros(0)
    return np.diff(np.sort(arrivals))


def _ramp(run: dict[str, Any], path: Path) -> tuple[str, float, float] | None:
    """A vLLM ramp-up run's (strategy, start, end requests/s), or None for a run without one.

    Raises:
        InputError: ramp-up fields vLLM would not have written.
    """
    strategy = run.get("ramp_up_strategy")
    if strategy is None:
        return None
    raw = (run.get("ramp_up_start_rps"), run.get("ramp_up_end_rps"))
    start, end = (_seconds(v) if isinstance(v, (int, float)) else None for v in raw)
    if (
        strategy not in RAMPS
        or start is None
        or end is None
        or not BOUNDS["request_rate"].lo <= start <= end <= MAX_RATE
    ):
        # The floor: a workload's rate floor (a plan holds no slower rate); a start of 1e-300 also
        # overflowed `ramp_gaps`'s 1 / rate² and its end / start (numpy warnings before the error).
        fields = zip(RAMP_KEYS, (strategy, *raw), strict=True)
        shown = ", ".join(f"{k} {clean_text(repr(v), 40)}" for k, v in fields)
        raise InputError(
            f"{path}: unreadable ramp-up ({shown}): vLLM ramps 'linear' or 'exponential' from a rate of "
            f"at least {BOUNDS['request_rate'].lo:g} up to at most {MAX_RATE:g} requests/s"
        )
    return str(strategy), start, end


def ramp_gaps(strategy: str, start: float, end: float, n: int, shape: float) -> tuple[float, float]:
    """(mean rate, inter-arrival spread) of vLLM's ramp-up over n requests with gamma shape `shape` (inf:
    constant gaps): request i is sent after a gap of mean 1 / r_i, r_i rising from `start` to `end`
    linearly or geometrically in i / (n - 1) (serve.py `_get_current_request_rate`, `get_request`, which
    rescales no ramp's delays). The mean rate is n over the expected span, sum(1 / r_i); the spread is
    that of the pooled gaps, gamma noise (variance 1 / (shape r_i²)) on top of the ramp's own."""
    progress = np.arange(n) / max(n - 1, 1)
    rates = start + (end - start) * progress if strategy == "linear" else start * (end / start) ** progress
    inv = 1.0 / rates
    mean, second = float(inv.mean()), float((inv * inv).mean())
    noise = 0.0 if math.isinf(shape) else 1.0 / shape
    var = (1.0 + noise) * second - mean * mean
    return 1.0 / mean, round(math.sqrt(max(var, 0.0)) / mean, 6)


def _as_number(value: Any) -> float | None:
    """A result's load field as a float: a JSON number (an integer too large for a float is ±inf) or a
    string that spells one ("inf", "4.0"); None for anything else (true, a list, "fast")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) <= 1e300 else (math.inf if value > 0 else -math.inf)
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _bad_load(path: Path, field: str, value: Any, what: str) -> InputError:
    return InputError(f"{path}: {field} {clean_text(repr(value), 60)} is not {what}")


def _positive(value: Any, path: Path, field: str, what: str) -> float:
    """A load field that must be a number above 0 (inf allowed).

    Raises:
        InputError: 0 or below, NaN, true, a string that is no number (naming `field` and `what`).
    """
    number = _as_number(value)
    if number is None or not number > 0:
        raise _bad_load(path, field, value, what)
    return number


def _rate(value: Any, path: Path) -> float | None:
    """A result's `request_rate` in requests/s, or None for every prompt at once: absent or null, inf
    (vLLM writes "inf", SGLang `Infinity`: serve.py and bench_serving.py's default), a rate past
    `MAX_RATE`, or SGLang's "trace" (which `_bench` reads apart). Raises `_positive`'s InputError."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "trace"):
        return None
    what = "a request rate (above 0 requests/s, or inf for every prompt at once)"
    rate = _positive(value, path, "request_rate", what)
    return rate if rate <= MAX_RATE else None


def _cap(value: Any, path: Path) -> int | None:
    """A result's `max_concurrency`: the client's cap on requests in flight (a whole number from 1; 4.0
    is 4), or None where it has none (absent or null, vLLM's and SGLang's default).

    Raises:
        InputError: 0, a negative or fractional number, true, a string.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, float) and math.isfinite(value) and value >= 1 and value.is_integer():
        return int(value)
    raise _bad_load(
        path, "max_concurrency", value, "a client cap (a whole number of requests from 1, or null for none)"
    )


def _shape(value: Any, path: Path) -> float | None:
    """vLLM's `--burstiness`: a gamma shape above 0, inf for constant gaps (written `Infinity` or
    "inf"); None where the result has none (absent or null: Poisson, vLLM's default 1). Raises
    `_positive`'s InputError."""
    if value is None:
        return None
    what = "a gamma shape (above 0, inf for evenly spaced arrivals, or null for Poisson)"
    return _positive(value, path, "burstiness", what)


def _bench(runs: list[dict[str, Any]], source: str, path: Path) -> WorkloadProfile:
    """A benchmark result: per-request lengths; the load as the benchmark set it. Several runs of one
    load (an SGLang result file gets a line per run, vLLM's `--append-result` one too) profile as one
    benchmark of all their prompts; runs of different loads are refused (merged, they were replayed as
    one run that never happened).

    The arrival rate: the configured `request_rate` where it is a number (the generator's own
    parameters, not a sample of them). Where it is not (vLLM writes "inf" for a ramp-up and for a
    self-timed trace as for a burst), the arrivals the run recorded (`_arrival_gaps`) are profiled as a
    log's stamps are; without them a ramp-up is planned at its mean rate (`ramp_gaps`: a plan holds one
    rate, and the ramp's mean is the load it carried over its run), and SGLang's replay of a trace's own
    times (request_rate "trace") is refused, its rate being nowhere in the file.

    Raises:
        InputError: no per-request lengths, every request failed, runs of different loads, or a
            trace-timed run without its times.
    """
    caps = [_cap(run.get("max_concurrency"), path) for run in runs]  # each run's fields, refused as read
    for run in runs:
        _rate(run.get("request_rate"), path)
        _shape(run.get("burstiness"), path)
    loads = {tuple(str(run.get(k)) for k in LOAD_KEYS) for run in runs}
    if len(loads) > 1:
        seen = "; ".join(
            f"rate {r}, max_concurrency {c}, burstiness {b}"
            + (f", ramp-up {s} {a} to {e}" if s != "None" else "")
            for r, c, b, s, a, e in sorted(loads)[:4]
        )
        raise InputError(
            f"{path}: {len(runs)} benchmark runs of {len(loads)} different loads ({seen}): profile one "
            "run at a time (one line of the file each)"
        )
    isl: list[int] = []
    osl: list[int] = []
    bad = failed = 0
    gaps: list[np.ndarray] | None = []
    for run, cap in zip(runs, caps, strict=True):
        ins, outs = run.get("input_lens") or [], run.get("output_lens") or []
        if not isinstance(ins, list) or not isinstance(outs, list):
            ins, outs = [], []
        errors = run.get("errors")
        errors = errors if isinstance(errors, list) and len(errors) == len(ins) else [""] * len(ins)
        bad += abs(len(ins) - len(outs))  # a request with one length only is not usable
        for a, b, error in zip(ins, outs, errors, strict=False):
            ia, ob = _tokens(a), _tokens(b)
            if ia is not None and (
                (b == 0 and not isinstance(b, bool)) or (isinstance(error, str) and error)
            ):
                failed += 1  # vLLM's calculate_metrics records a failed request's output length as 0
                continue
            if ia is None or ob is None:
                bad += 1
                continue
            isl.append(ia)
            osl.append(ob)
        run_gaps = _arrival_gaps(run, len(ins), cap) if len(ins) == len(outs) else None
        if gaps is not None and run_gaps is not None:
            gaps.append(run_gaps)
        else:
            gaps = None
    engine_flag = {"vllm-bench": "--save-detailed", "sglang-bench": "--output-details"}[source]
    if not isl and bad:
        # The lengths are there but none usable (-5, 1e12, null): "saved without them" sent the user to
        # rerun a benchmark whose result already holds them.
        also = f"; {failed} failed" if failed else ""
        raise InputError(
            f"{path}: no usable request ({bad} with malformed lengths{also}): input_lens and output_lens "
            f"must give each request a token count from 1 to {BOUNDS['isl'].hi:,}"
        )
    if not isl and failed:
        raise InputError(
            f"{path}: every one of the benchmark's {failed} requests failed: no lengths to profile"
        )
    if not isl:
        raise InputError(
            f"{path}: no per-request lengths: the result was saved without them (rerun the benchmark "
            f"with {engine_flag})"
        )
    last = runs[-1]
    raw_rate = last.get("request_rate")
    rate = _rate(raw_rate, path)  # None: all at once
    shape = _shape(last.get("burstiness"), path)  # vLLM's --burstiness: a gamma shape, > 0
    ramp = _ramp(last, path)
    cv: float | None = None
    load = "configured"
    if rate is not None:
        cv = 0.0 if shape == math.inf else None  # get_request's burstiness == inf: gaps of exactly 1/rate
    elif (measured := _gap_stats(gaps or []))[0] is not None:  # at once: no gaps, no rate
        rate, cv = measured
        load = "start-times"
        shape = 1.0 / (cv * cv) if cv else None
    elif ramp is not None:
        rate, cv = ramp_gaps(*ramp, _count(last), 1.0 if shape is None else shape)
        load = "ramp-mean"
        shape = 1.0 / (cv * cv) if cv else None
    elif isinstance(raw_rate, str) and raw_rate.strip().lower() == "trace":
        raise InputError(
            f"{path}: the benchmark replayed its trace's own arrival times (request_rate 'trace'), which "
            "its result does not hold: profile the trace itself as a request log"
        )
    prompts, outputs = np.asarray(isl), np.asarray(osl)
    fits, served, context = _fit(prompts, outputs)
    if rate is not None and not fits.all():
        # The prompts left out are not sent: the rest arrive at their share of the rate, so the replay's
        # last prompt goes when the benchmark's did (N / rate).
        rate *= float(fits.mean())
    return WorkloadProfile(
        source=source,
        requests=len(isl),
        malformed=bad,
        malformed_lines=(),
        isl=_stats(prompts[fits]),
        osl=_stats(served[fits]),
        **_left_out(prompts, outputs, served, fits, context),
        request_rate=rate,
        interarrival_cv=cv if rate is not None else None,
        gamma_shape=shape if rate is not None and shape is not None and math.isfinite(shape) else None,
        max_concurrency=caps[-1],
        failed=failed,
        load=load,
        ramp_up=f"{ramp[0]} {ramp[1]:g} to {ramp[2]:g} requests/s" if ramp else None,
    )


def _count(run: dict[str, Any]) -> int:
    """The requests a run sent: its per-request list's length, else `num_prompts`, else `completed` +
    `failed` (at least 1)."""
    lens = run.get("input_lens")
    if isinstance(lens, list) and lens:
        return len(lens)
    prompts = run.get("num_prompts")
    if isinstance(prompts, int) and not isinstance(prompts, bool) and prompts > 0:
        return prompts
    done = [
        v for k in ("completed", "failed") if isinstance(v := run.get(k), int) and not isinstance(v, bool)
    ]
    return max(1, sum(v for v in done if v > 0))


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
    run_lines: list[int] = []
    for number, obj in records:
        if not isinstance(obj, dict):
            bad_lines.append(number)
            continue
        if _is_bench(obj):  # a benchmark run: SGLang's line per run, vLLM's --append-result
            runs.append(obj)
            run_lines.append(number)
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
    # A file that mixes benchmark runs with request lines: a run's requests have no arrival times and
    # its load is the benchmark's, a log line's are its own, so one profile cannot hold both. The kind
    # that holds most of the file's requests is profiled; the other's lines are counted as skipped.
    in_runs = sum(len(r["input_lens"]) for r in runs if isinstance(r.get("input_lens"), list))
    if runs and (not isl or in_runs > len(isl)):
        prof = _bench(runs, _bench_source(runs, one_object=False), path)
        skipped = sorted(bad_lines + numbers)
        return prof.model_copy(
            update={"malformed": prof.malformed + len(skipped), "malformed_lines": tuple(skipped[:10])}
        )
    bad_lines = sorted(bad_lines + run_lines)
    if not isl:
        raise InputError(f"{path}: no usable request ({len(bad_lines)} malformed lines)")
    rate = cv = resolution = peak = None
    windows: tuple[RateWindow, ...] = ()
    unit = "s"
    outlying: list[int] = []
    if timed:
        # The log's unit from its middle stamp. A stamp read in another (a 0 or an ISO date among
        # epoch milliseconds, microseconds or nanoseconds) is not a cue to read every stamp in its
        # unit; it is an outlying stamp, as a 0 among epoch seconds is (`stray_stamps`).
        unit = epoch_unit(float(np.median(times)))
        odd = {i for i, t in enumerate(times) if epoch_unit(t) != unit}
        if len(odd) == len(times):
            odd = set()
        times = [t / EPOCH_UNITS[unit] for t in times]
        # A 0 among epoch stamps, an epoch stamp among ones counted from the log's start, a mistyped
        # year, a stamp in another unit: the stamp is suspect, the request's lengths are not. Its
        # lengths are profiled; its stamp is left out of the rate and the burstiness, and reported
        # apart from malformed lines.
        same = [i for i in range(len(times)) if i not in odd]
        far = odd | {same[j] for j in stray_stamps(np.asarray([times[i] for i in same])).tolist()}
        outlying = [numbers[i] for i in sorted(far)]
        times = [t for i, t in enumerate(times) if i not in far]
    prompts, outputs = np.asarray(isl), np.asarray(osl)
    fits, served, context = _fit(prompts, outputs)
    stamps = np.sort(np.asarray(times))
    if len(stamps) >= 2 and not math.isnan(stamps[0]):
        noise = _stamp_noise(stamps)
        rate, cv = _gap_stats([np.diff(stamps)], noise)
        if rate is not None and cv:  # uneven gaps: are the stamps fine enough to show how uneven?
            step = stamp_resolution(stamps, noise)
            if step >= COARSE_STAMPS / rate:
                resolution, cv = step, None
        if rate is not None:
            rate *= float(fits.mean())  # the requests left out arrive too, but are not served (`_bench`)
            windows = busiest_windows(stamps, cv, float(fits.mean()))
            peak = max((w.rate for w in windows if w.varies), default=None)
    return WorkloadProfile(
        source="request-log",
        requests=len(isl),
        malformed=len(bad_lines),
        malformed_lines=tuple(bad_lines[:10]),
        isl=_stats(prompts[fits]),
        osl=_stats(served[fits]),
        request_rate=rate,
        interarrival_cv=cv,
        gamma_shape=1.0 / (cv * cv) if cv else None,
        stamped=len(timed),
        time_unit=unit,
        **_left_out(prompts, outputs, served, fits, context),
        stamp_resolution=resolution,
        outlying_stamps=len(outlying),
        outlying_stamp_lines=tuple(outlying[:10]),
        busiest=windows,
        peak_rate=peak,
    )


def _context(isl_p99: float, osl_p99: float) -> int:
    """A workload's max_model_len: the p99 prompt plus the p99 output, at most `BOUNDS["max_model_len"].hi`
    (`to_serving` raises it to the mean request where that is longer)."""
    return int(min(math.ceil(isl_p99 + osl_p99), BOUNDS["max_model_len"].hi))


def _fit(isl: np.ndarray, osl: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(which requests the workload holds, their outputs as served, its max_model_len) for per-request
    lengths. The context is `_context` of the p99s, each an observed length (numpy's `nearest`
    percentile: a sample of up to 50 requests keeps its longest, which the interpolated p99 fell just
    short of). A server of that context serves the requests whose prompt is shorter than it and refuses
    the others, which leave no room for one output token (vLLM `OpenAIServing.
    _validate_prompt_and_tokenize`, vllm/entrypoints/openai/serving_engine.py: a prompt of
    `max_model_len` tokens or more is refused whatever the request's max_tokens); a served request's
    output ends at the context (max_tokens defaults to `max_model_len` - prompt), as the replay cuts
    it (`serving_load.simulate_benchmark`).

    Raises:
        InputError: no request fits the context autoparallel plans for.
    """
    most = BOUNDS["max_model_len"].hi
    context = _context(
        float(np.percentile(isl, 99, method="nearest")), float(np.percentile(osl, 99, method="nearest"))
    )
    fits = isl < context
    served = np.minimum(osl, np.maximum(context - isl, 1))
    if not fits.any():  # the p99s are observed lengths: only the bound leaves every request out
        isl_mean, osl_mean = max(1, round(float(isl.mean()))), max(1, round(float(osl.mean())))
        raise InputError(
            f"the profiled requests average {isl_mean:,} + {osl_mean:,} tokens, more than the {most:,}-token "
            "context autoparallel plans for"
        )
    return fits, served, context


def _left_out(
    isl: np.ndarray, osl: np.ndarray, served: np.ndarray, fits: np.ndarray, context: int
) -> dict[str, Any]:
    """The profile's `max_model_len`, `left_out`, `left_out_longest` and `outputs_cut` fields."""
    out = ~fits
    longest = (int(isl[out].max()), int(osl[out].max())) if out.any() else None
    return {
        "max_model_len": context,
        "left_out": int(out.sum()),
        "left_out_longest": longest,
        "outputs_cut": int((served[fits] < osl[fits]).sum()),
    }


COARSE_STAMPS = 0.25
"""Stamps whose resolution is at least this share of the mean gap cannot show the gaps' spread: the rate
is derived, the burstiness not (planned as Poisson). A stamp cut to a resolution q is late by up to q,
uniformly where arrivals fall at random within it, so a gap's error is the difference of two such,
variance q² / 6: it adds (q / mean gap)² / 6 to the measured spread², 1 / 96 at a quarter of the mean
gap (a Poisson stream's spread 1.00 read as 1.005, a gamma shape 4's 0.50 as 0.51, both measured on
200,000 simulated gaps cut so). Coarser, several requests share a stamp and the errors are neither small
nor independent: vLLM's `created` (`ChatCompletionResponse.created = int(time.time())`, whole seconds)
on a Poisson stream of 5 requests/s measured a spread of 2.0, read as a gamma shape of 0.25. Gaps all
equal are evenly spaced arrivals whatever the resolution (random ones would share and skip stamps)."""


def _stamp_noise(stamps: np.ndarray) -> float:
    """The float precision of stamps of this size, in seconds (4 units in the last place of the largest):
    gaps closer than it are equal. A log stamped every 0.1 s at epoch 1.7e9 (each stamp within half a
    unit, 1.2e-7 s, of its decimal) measured a spread of 1e-6, printed as a gamma shape of 10^12."""
    return 4.0 * float(np.spacing(np.abs(stamps).max()))


def stamp_resolution(stamps: np.ndarray, noise: float) -> float:
    """The coarsest decimal step (1,000 s down to 1 µs) that every stamp is a whole number of, in seconds:
    1 for whole-second stamps, 0.001 for epoch milliseconds; 0 where the stamps carry more digits than
    their float precision (`noise`) tells apart."""
    for exponent in range(3, -7, -1):
        step = 10.0**exponent
        if noise > 0.01 * step:  # finer steps cannot be told from float noise
            break
        units = stamps / step
        if bool((np.abs(units - np.rint(units)) <= noise / step + 1e-9).all()):
            return step
    return 0.0


COUNT_BIN_S = 60.0
"""Bins (seconds) of `_count_spread`: many stamp resolutions (whole seconds) wide, short beside a day."""


def _count_spread(stamps: np.ndarray, first: float, span: float) -> float:
    """The inter-arrival spread c of a renewal stream read from its counts in `COUNT_BIN_S` bins, where
    the stamps are too coarse to show the gaps (`busiest_windows`): its counts' variance is c² times
    their mean, taken from successive bins' differences, E[(N_i+1 - N_i)²] = 2 Var N (the Allan
    variance), so that a rate drifting over hours adds little to it. 1 with fewer than 3 bins."""
    bins = int(span // COUNT_BIN_S)
    if bins < 3:
        return 1.0
    counts = np.bincount(((stamps - first) // COUNT_BIN_S).astype(np.int64), minlength=bins)[:bins]
    mean = float(counts.mean())
    if mean <= 0:
        return 1.0
    return math.sqrt(float(np.mean(np.diff(counts).astype(float) ** 2)) / (2.0 * mean))


RATE_WINDOWS = (300.0, 3600.0)
"""The window lengths a request log's busiest rate is measured over (`busiest_windows`), in seconds: 5
minutes, the window dashboards and autoscalers rate traffic over, and an hour, traffic engineering's busy
hour, over which the hour's own rate, not Poisson noise, sets the count (a steady stream at 2 requests/s
varies by 1.2 % over an hour, by 4 % over 5 minutes)."""
MIN_WINDOWS = 4
"""A window length is measured where the log spans at least this many of it: its busiest window is then
one of several, not most of the log."""
MIN_WINDOW_REQUESTS = 100
"""A window is flagged (`RateWindow.varies`) only where it holds this many requests at the mean rate:
fewer, and chance sets its busiest count (a steady stream's busiest of 33 five-minute windows of 60
requests runs 1.6x the mean, a bursty one's, gamma shape 0.25, up to 2.8x), which the limit's normal
approximation of `busiest_windows` does not bound (1 of 90 such bursty logs of 10,000 requests passed
it). Still measured and printed; and flagged where its count is twice that limit or more (4,000
requests in one 5-minute window of a 4 h log, 44x its mean, were not), which no such chance reached."""
PEAK_RATIO = 1.1
"""A busiest window is flagged (`RateWindow.varies`) at 1.1 times the mean rate or more, beside rising
above a steady stream's (`busiest_windows`): a long log's real but slight swing (a 5 % hourly rise, over a
chance level of a few percent in 200,000 requests) is printed but not called a varying rate."""


def busiest_windows(stamps: np.ndarray, spread: float | None, share: float) -> tuple[RateWindow, ...]:
    """The busiest window of each `RATE_WINDOWS` length that the sorted arrival `stamps` (seconds) span
    `MIN_WINDOWS` times: the most arrivals in [t, t + length) over the windows that start at an arrival
    and end within the log (`np.searchsorted`, O(n log n)), as a rate of the served `share` (as the mean
    rate is).

    Whether it is above a steady stream's: the busiest of many windows of a steady stream runs above the
    mean by chance, the more the more windows a log holds. A stream at the mean rate r (requests - 1 over
    the span) holds mu = r * length arrivals a window, with a standard deviation of sd = sqrt(mu) * c (c
    the log's inter-arrival spread, at least 1: a renewal stream's count variance is c² mu, so the log's
    own burstiness is not read as a varying rate). Its busiest window of a log of m = span / length
    windows stays below mu + z sd + c² (z² + 2) / 6 (the last term the tail's skew, Cornish-Fisher),
    z = sqrt(2 ln 2m) + 2: the normal maximum of 2m windows (a sliding window's overlaps counted) and 2
    standard deviations more. Simulated, of 18,000 Poisson logs of 4 to 30 windows of 100 to 1,000
    requests, 2 had a busiest window past it (the 99.9th percentile 89-95 % of the way from mu to it);
    of 900 logs of 10,000 requests at 0.05 to 30 requests/s, gamma shapes 1, 0.25 and 0.1, none with
    `MIN_WINDOW_REQUESTS` (one bursty log with 60 a window did: hence that floor).

    `spread` None (stamps too coarse to show the gaps' spread, `COARSE_STAMPS`): c is read from the counts
    instead (`_count_spread`), as a spread of 1 read a steady bursty log stamped in whole seconds (gamma
    shape 0.1 at 5 requests/s) as a rate varying 1.25x."""
    n = len(stamps)
    if n < 2:
        return ()
    first, last = float(stamps[0]), float(stamps[-1])
    span = last - first
    if not span > 0:
        return ()
    mean = (n - 1) / span
    noise = max(1.0, spread if spread is not None else _count_spread(stamps, first, span))
    out = []
    for length in RATE_WINDOWS:
        if span < MIN_WINDOWS * length:
            continue
        starts = int(np.searchsorted(stamps, last - length, side="right"))  # windows ending in the log
        counts = np.searchsorted(stamps, stamps[:starts] + length, side="left") - np.arange(starts)
        i = int(counts.argmax())
        count = int(counts[i])
        expected = mean * length
        z = math.sqrt(2.0 * math.log(2.0 * span / length)) + 2.0
        limit = expected + z * noise * math.sqrt(expected) + noise * noise * (z * z + 2.0) / 6.0
        begin = float(stamps[i])
        out.append(
            RateWindow(
                seconds=length,
                requests=count,
                rate=count / length * share,
                start=begin - first,
                start_utc=datetime.fromtimestamp(begin, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                if first >= EPOCH_FLOOR
                else None,
                steady_limit=limit / length * share,
                varies=count > limit
                and count >= PEAK_RATIO * expected
                and (expected >= MIN_WINDOW_REQUESTS or count >= 2.0 * limit),
            )
        )
    return tuple(out)


REPLAY_UNITS_PER_PROMPT = 3.0
"""Budget units (`serving_replay.PassBudget`: a scheduler pass counts 1 + running / 300, 1 more with a
prompt) a benchmark replay spends per prompt, rounded up from what `plan --workload-file` spent on
profiled ShareGPT-like results (1,050 + 205 tokens a prompt, `PassBudget.spent` at the end): sent at once
to Llama-3.1-8B on one H100, 1.6 a prompt (20,000 prompts) and 1.9 (50,000); at 20 requests/s, 2.7;
to Llama-3.1-70B on eight H100s, 1.1. A KV-bound deployment spends more (the replay then refuses it up
front, `serving_replay._check_replay_work`), so the bound below is what no deployment replays, not
what every one does."""
MAX_REPLAYED_PROMPTS = int(MAX_REPLAY_PASSES / REPLAY_UNITS_PER_PROMPT)
"""The most prompts a profiled benchmark keeps as its workload's `num_prompts` (25,000): a longer one's
replay runs past `serving_load.MAX_REPLAY_PASSES`, and plan and evaluate refuse the workload file
(1,000,000 prompts, within `BOUNDS["num_prompts"]`, were refused). Past it the workload is the
benchmark's steady state, which a run that long measures."""


MEASURED = " (profiled)"
"""What a measured workload named like a preset (`profile --name chatbot`) carries after its name
(`measured_name`)."""


def measured_name(serving: Serving) -> Serving:
    """`serving`, a measured workload, under a name that never reads as a preset's: "chatbot
    (profiled)" where `profile --name chatbot` measured a workload that is not the chatbot preset (its
    plan printed "workload chatbot: 1059 in / 258 out" with none of chatbot's limits, and a remedy
    credited a limit to "the chatbot preset"). The user's word stays, and says the workload is theirs."""
    if not_the_preset(serving) is None:
        return serving
    return serving.model_copy(update={"name": serving.name + MEASURED})


def to_serving(prof: WorkloadProfile, name: str = "profiled") -> Serving:
    """The workload a profile describes: mean lengths with their measured percentiles (the last carrying
    the top percent's mean, `workload.mean_carrying_quantiles`), the arrival rate and its burstiness
    (the gamma shape, within `BOUNDS["burstiness"]`; evenly spaced arrivals its upper bound; Poisson
    where the stamps are too coarse to show it), and the profile's max_model_len (`_fit`: the p99
    prompt + the p99 output, at least the means), whose prompts that reach it the profile left out and
    whose outputs past it it cut (a metrics scrape's cannot be: `profile` says so). A benchmark result,
    and a request log whose requests all carry one time, is a finite benchmark of its prompts (sent at
    once or at its rate, under its cap), up to `MAX_REPLAYED_PROMPTS` of them (past it, its steady
    state at the same load: `profile` says so); another request log or a metrics scrape is a stream.
    A `name` that is a preset's gets `MEASURED` after it (`measured_name`)."""
    isl, osl = max(1, round(prof.isl.mean)), max(1, round(prof.osl.mean))
    most = BOUNDS["max_model_len"].hi
    if isl + osl > most:
        raise InputError(
            f"the profiled requests average {isl:,} + {osl:,} tokens, more than the {most:,}-token "
            "context autoparallel plans for"
        )
    finite = prof.source in ("vllm-bench", "sglang-bench") or prof.sent_at_once
    bound = BOUNDS["burstiness"]
    shape = prof.gamma_shape if prof.request_rate and prof.gamma_shape else 1.0
    if prof.request_rate and prof.interarrival_cv == 0:
        shape = bound.hi  # evenly spaced arrivals: the evenest gaps a gamma process of the bound gives
    prompts = prof.kept if finite else None
    if prompts is not None and prompts > MAX_REPLAYED_PROMPTS:
        prompts = None
    context = prof.max_model_len
    if context is None:
        context = _context(prof.isl.p99, prof.osl.p99)

    serving = Serving(
        name=name,
        isl=isl,
        osl=osl,
        isl_quantiles=mean_carrying_quantiles(prof.isl.quantiles, prof.isl.mean, BOUNDS["isl"].hi),
        osl_quantiles=mean_carrying_quantiles(prof.osl.quantiles, prof.osl.mean, BOUNDS["osl"].hi),
        request_rate=float(f"{prof.request_rate:.6g}") if prof.request_rate else None,
        burstiness=round(min(max(shape, bound.lo), bound.hi), 4),
        concurrency=prof.max_concurrency,
        num_prompts=prompts,
        max_model_len=min(max(isl + osl, context), most),
    )
    return measured_name(serving)


def write_workload_file(path: str | Path, prof: WorkloadProfile, serving: Serving) -> None:
    """A workload file: {"serving": Serving fields (`isl` and `osl` always), "profile": what the log
    said}.

    Raises:
        InputError: the file cannot be written.
    """
    body = serving.model_dump(exclude_defaults=True)
    # The mean lengths always (a log of mean 1,024 / 256, the defaults, wrote neither): a file lacking
    # one is refused (`load_workload_file`).
    doc = {"serving": {"isl": serving.isl, "osl": serving.osl, **body}, "profile": prof.model_dump()}
    try:
        Path(path).write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as exc:
        raise InputError.cannot_write("workload file", path, exc) from None


WORKLOAD_FILE_KEYS = ("serving", "profile", "notes")
"""The top-level keys a workload file may hold: the workload (`serving`), and the `profile` that measured
it and the `notes` beside it, as `profile -o` and `profile --json` write them. Another (a `training`
object, a misspelt `profile`) is refused as an unknown key inside `serving` is, not dropped unread."""


def load_workload_file(path: str | Path) -> Serving:
    """The `Serving` a workload file (written by `autoparallel profile`) holds. One named like a preset
    (`not_the_preset`) whose fields are not the preset's does not pass as it: a measured one (the file
    carries the `profile` that measured it, as `profile --name chatbot` wrote before `measured_name`) is
    named as `profile` names it now; another is refused, as a sweep refuses a workload that sets only a
    name (`{"serving": {"name": "rag"}}` planned 1024 / 256 tokens without rag's TTFT limit as "workload
    rag", where the rag preset is 8192 / 256 within 5 s).

    Raises:
        InputError: unreadable, not JSON, not a workload, holding a top-level key other than
            `WORKLOAD_FILE_KEYS`, or named like a preset it is not.
    """
    from autoparallel.models.config_file import read_config

    p = Path(path)
    try:
        doc = read_config(p, unique_keys=True)  # strict: bounded size, known encoding, finite numbers
    except InputError as exc:
        raise InputError(f"workload file: {exc}") from None
    body = doc.get("serving")
    if not isinstance(body, dict):
        raise InputError(f"workload file {p} has no 'serving' object")
    extra = [key for key in doc if key not in WORKLOAD_FILE_KEYS]
    if extra:
        shown = extra[0] if extra[0].isidentifier() else repr(extra[0])
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise InputError(
            f"workload file {p}: {clean_text(shown, 60)}: Extra inputs are not permitted{more}; a workload "
            "file holds `serving`, and the `profile` and `notes` that `autoparallel profile` writes"
        )
    name = body.get("name")
    if not (isinstance(name, str) and name.lower() in PRESETS):  # a preset's name: judged below
        _require_lengths(p, body, doc.get("profile"))  # before the defaults are validated in their place
    try:
        serving = Serving.model_validate(body)
    except ValidationError as exc:
        raise InputError(f"workload file {p}: {first_error(exc, 'serving')}") from None
    except ValueError as exc:
        raise InputError(f"workload file {p}: {str(exc).splitlines()[0]}") from None
    twin = not_the_preset(serving)
    profiled = isinstance(doc.get("profile"), dict)
    if twin is not None and not profiled:
        preset, differ = twin
        raise InputError(
            f"workload file {p} is named {serving.name!r}, the {preset} preset's, but is not that preset: "
            f"{differ}; give the preset by name ({preset}, your fields over it) or give the file's "
            "workload another name"
        )
    if twin is None and serving.name.lower() in PRESETS:
        return serving  # a preset's fields, as `model_dump(exclude_defaults=True)` writes them
    _require_lengths(p, body, doc.get("profile"))
    return measured_name(serving) if twin is not None else serving


def _require_lengths(path: Path, body: dict[str, Any], profile: Any) -> None:
    """Refuse a workload file whose `serving` lacks `isl` or `osl`: the mean lengths the plan sizes for,
    which `write_workload_file` always writes. Taken from `Serving`'s defaults (1,024 / 256), a file whose
    `isl` was lost planned 1,024-token prompts though its `isl_quantiles` and profile said 882.

    Raises:
        InputError: naming the file, the field and, where the file's profile holds it, its mean.
    """
    for field, what in (("isl", "prompt"), ("osl", "output")):
        if field in body:
            continue
        stats = profile.get(field) if isinstance(profile, dict) else None
        mean = stats.get("mean") if isinstance(stats, dict) else None
        hint = (
            f" (its profile's {field}.mean is {mean:,.1f})"
            if isinstance(mean, (int, float)) and not isinstance(mean, bool) and math.isfinite(mean)
            else ""
        )
        raise InputError(
            f"workload file {path} has no serving.{field}, the mean {what} length in tokens{hint}: add it "
            f"(`autoparallel profile` writes it; a default of {Serving.model_fields[field].default:,} would "
            "plan another workload)"
        )
