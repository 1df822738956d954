"""A stamp far outside the log's bulk is an outlying stamp (`workload_profile.stray_stamps`): left out of
the rate and the burstiness, its request's lengths profiled, reported apart from malformed lines; and a
gamma shape below the burstiness bound is printed with its digits and said to be planned at the bound.

One `"timestamp": 0` among 3,000 Poisson requests at 60 per second (epoch-second stamps) printed
`arrival rate: 1.699e-06 requests/s` with no malformed line; so did a 0 among ISO stamps and one epoch
stamp among stamps counted from the log's start. Logs whose long gaps are real keep every line. Then
the stray's whole line was dropped as "malformed": a real request 4 hours before 300 others lost its
lengths too."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from autoparallel.cli import main
from autoparallel.workload_profile import profile_file, to_serving

EPOCH = 1_765_000_000.0


def _poisson(n: int, rate: float, seed: int = 7, start: float = EPOCH) -> list[float]:
    rng = random.Random(seed)
    t, out = start, []
    for _ in range(n):
        t += rng.expovariate(rate)
        out.append(t)
    return out


def _write(path: Path, stamps: list[Any], seed: int = 3) -> Path:
    rng = random.Random(seed)
    lines = [
        json.dumps(
            {"timestamp": s, "prompt_tokens": rng.randint(50, 3000), "completion_tokens": rng.randint(1, 600)}
        )
        for s in stamps
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rate(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (max(stamps) - min(stamps))


def test_a_zero_among_epoch_seconds_is_one_outlying_stamp_not_the_rate(tmp_path: Path) -> None:
    stamps: list[Any] = _poisson(3000, 60.0)
    real = list(stamps)
    stamps[1500] = 0  # line 1501
    prof = profile_file(_write(tmp_path / "zero.jsonl", stamps))
    assert prof.outlying_stamps == 1 and prof.outlying_stamp_lines == (1501,)
    assert prof.malformed == 0 and prof.malformed_lines == ()
    kept = real[:1500] + real[1501:]
    assert prof.request_rate == pytest.approx(_rate(kept), rel=1e-3)  # was 1.7e-6
    assert prof.request_rate == pytest.approx(60.0, rel=0.05)
    assert prof.requests == 3000  # its lengths are profiled


def test_the_cli_reports_the_stray_stamps_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stamps: list[Any] = _poisson(3000, 60.0)
    stamps[1500] = 0
    assert main(["profile", str(_write(tmp_path / "zero.jsonl", stamps))]) == 0
    out = capsys.readouterr().out
    assert "outlying stamps: 1, left out of the rate and burstiness (line 1501)" in out
    assert "malformed" not in out
    rate = float(out.split("arrival rate: ", 1)[1].split(" ", 1)[0])
    assert rate == pytest.approx(60.0, rel=0.05)  # printed 1.699e-06


def test_a_zero_among_iso_stamps_and_an_epoch_stamp_among_relative_ones(tmp_path: Path) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    offsets = _poisson(300, 2.0, seed=11, start=0.0)
    iso: list[Any] = [(start + dt.timedelta(seconds=s)).isoformat() for s in offsets]
    iso[10] = 0
    prof = profile_file(_write(tmp_path / "iso0.jsonl", iso))
    assert prof.outlying_stamp_lines == (11,) and prof.malformed == 0 and prof.requests == 300
    assert prof.request_rate == pytest.approx(_rate(offsets[:10] + offsets[11:]), rel=1e-3)  # was 1.7e-7

    relative: list[Any] = list(offsets)
    relative[150] = EPOCH  # another clock's stamp: epoch seconds among seconds from the log's start
    prof = profile_file(_write(tmp_path / "outlier.jsonl", relative))
    assert prof.outlying_stamp_lines == (151,) and prof.malformed == 0 and prof.requests == 300
    assert prof.request_rate == pytest.approx(_rate(offsets[:150] + offsets[151:]), rel=1e-3)


@pytest.mark.parametrize(("unit", "per_second"), [("ms", 1e3), ("us", 1e6), ("ns", 1e9)])
def test_a_zero_among_epoch_milli_micro_or_nanoseconds_is_an_outlying_stamp_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unit: str, per_second: float
) -> None:
    """A stamp read in another unit than the log's (`epoch_unit`: a 0 is seconds among epoch ms) was
    dropped as malformed (`malformed: 1 skipped (lines 1501)`, 2,999 requests), while the same 0 among
    epoch seconds is an outlying stamp whose lengths are kept: it is one too, in any unit."""
    real = _poisson(3000, 60.0)
    stamps: list[Any] = [round(s * per_second) for s in real]
    stamps[1500] = 0  # line 1501
    path = _write(tmp_path / f"zero_{unit}.jsonl", stamps)
    prof = profile_file(path)
    assert prof.time_unit == unit
    assert (prof.requests, prof.malformed, prof.malformed_lines) == (3000, 0, ())
    assert (prof.outlying_stamps, prof.outlying_stamp_lines, prof.stamped) == (1, (1501,), 3000)
    assert prof.request_rate == pytest.approx(_rate(real[:1500] + real[1501:]), rel=1e-3)
    assert main(["profile", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3000 requests from ")
    assert "outlying stamps: 1, left out of the rate and burstiness (line 1501)" in out
    assert "malformed" not in out


def test_an_iso_stamp_among_epoch_milliseconds_is_an_outlying_stamp(tmp_path: Path) -> None:
    """An ISO date-time reads as epoch seconds (`_seconds`), another unit than the log's ms."""
    real = _poisson(500, 10.0, seed=5)
    stamps: list[Any] = [round(s * 1e3) for s in real]
    stamps[7] = dt.datetime.fromtimestamp(real[7], tz=dt.timezone.utc).isoformat()  # line 8
    prof = profile_file(_write(tmp_path / "iso_ms.jsonl", stamps))
    assert (prof.requests, prof.malformed, prof.outlying_stamp_lines) == (500, 0, (8,))
    assert prof.request_rate == pytest.approx(_rate(real[:7] + real[8:]), rel=1e-3)


def test_strays_at_both_ends_are_left_out_of_the_rate(tmp_path: Path) -> None:
    stamps: list[Any] = _poisson(500, 10.0, seed=5)
    stamps[3] = 0  # 1970
    stamps[400] = EPOCH + 36 * 365 * 86400  # a mistyped year (2062)
    prof = profile_file(_write(tmp_path / "ends.jsonl", stamps))
    assert prof.outlying_stamp_lines == (4, 401) and prof.malformed == 0 and prof.requests == 500
    assert prof.request_rate == pytest.approx(10.0, rel=0.15)


@pytest.mark.parametrize(
    "case",
    [
        "two bursts an hour apart",
        "lopsided bursts a day apart",
        "straggler fifty spans late",
        "bursty",
        "shuffled bursty",
        "at once and a straggler",
        "few requests",
    ],
)
def test_logs_whose_long_gaps_are_real_keep_every_line(tmp_path: Path, case: str) -> None:
    """What the rule must not drop (`stray_stamps`' docstring): a long idle gap inside the log, bursts of
    any median gap, a tail of more than 1 % of the requests however late, a tail within a hundred core
    spans, a log sent at once with a straggler, shuffled lines, and logs too small to have a core.

    A guard, not a regression test: before `stray_stamps` every line was kept, so only the
    `outlying_stamps` attribute is new to it. It is kept because it fails on a rule that reaches too
    far and drops real arrivals from the rate: fences from the median gap (the bursty logs, the
    lopsided bursts) or a core without its 1 s floor (the log sent at once and a straggler)."""
    stamps: list[float]
    if case == "two bursts an hour apart":
        stamps = _poisson(400, 20.0) + _poisson(400, 20.0, seed=8, start=EPOCH + 3600)
    elif case == "lopsided bursts a day apart":  # 2 % of the requests a day after the rest
        stamps = _poisson(980, 20.0) + _poisson(20, 20.0, seed=8, start=EPOCH + 86400)
    elif case == "straggler fifty spans late":  # 300 requests over about a minute, one 50 minutes on
        stamps = _poisson(300, 5.0)
        stamps.append(stamps[-1] + 50 * (stamps[-1] - stamps[0]))
    elif case in ("bursty", "shuffled bursty"):  # 20 bursts of 200 requests 0.5 ms apart, 600 s between
        stamps = [EPOCH + b * 600.0 + k * 0.0005 for b in range(20) for k in range(200)]
        if case.startswith("shuffled"):
            random.Random(1).shuffle(stamps)
    elif case == "at once and a straggler":
        stamps = [EPOCH] * 300 + [EPOCH + 1.0]
    else:
        stamps = [EPOCH, EPOCH + 1.0, EPOCH + 1000.0]
    prof = profile_file(_write(tmp_path / "log.jsonl", list(stamps)))
    assert prof.malformed == 0 and prof.outlying_stamps == 0
    assert prof.requests == len(stamps)
    assert prof.request_rate == pytest.approx(_rate(stamps), rel=1e-6)


def _bursty(tmp_path: Path) -> Path:
    stamps: list[Any] = [EPOCH + b * 600.0 + k * 0.0005 for b in range(20) for k in range(200)]
    return _write(tmp_path / "bursty.jsonl", stamps)


def test_a_shape_below_the_bound_is_printed_with_its_digits_and_planned_at_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _bursty(tmp_path)
    prof = profile_file(path)
    assert prof.gamma_shape is not None and prof.gamma_shape < 0.01
    assert to_serving(prof).burstiness == 0.01
    assert main(["profile", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gamma shape 0.00)" not in out and "gamma shape 0.00," not in out
    assert f"gamma shape {prof.gamma_shape:.3g}, below the burstiness bound 0.01, planned at it" in out


def test_a_shape_within_the_bounds_is_printed_without_a_clamp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "poisson.jsonl", list(_poisson(2000, 5.0)))
    assert main(["profile", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(1 = Poisson; gamma shape " in out and "planned at it" not in out


# The epoch floor (`workload_profile.other_clock_stamps`): stamps before 1973 among epoch stamps are
# outlying whatever their share up to a minority, in logs of any size. Past the percentile rule's 1 %
# (or under its 20 stamps) they stretched the span to decades: two zeros among 150 requests at 1 per
# second profiled at 8.4e-08 requests/s, six among 500 at 2.8e-07, one among 19 at 1.0e-08.


@pytest.mark.parametrize(
    ("n", "rate", "strays"),
    [
        (150, 1.0, {10: 0, 20: 0}),  # 1.3 %: 8.4e-08 requests/s
        (500, 2.0, {i: 0 for i in (50, 100, 200, 300, 400, 450)}),  # 1.2 %: 2.8e-07
        (19, 1.0, {5: 0}),  # under the percentile rule's 20 stamps: 1.0e-08
        (200, 1.0, {3: -1, 40: 0, 90: 12.5, 150: 0, 199: 0}),  # a negative, an offset, 2.5 %
    ],
)
def test_stamps_before_the_epoch_floor_among_epoch_stamps_are_outlying_stamps(
    tmp_path: Path, n: int, rate: float, strays: dict[int, float]
) -> None:
    real = _poisson(n, rate)
    stamps: list[Any] = [strays.get(i, s) for i, s in enumerate(real)]
    prof = profile_file(_write(tmp_path / "zeros.jsonl", stamps))
    assert prof.outlying_stamp_lines == tuple(i + 1 for i in sorted(strays)) and prof.malformed == 0
    assert prof.requests == n and prof.outlying_stamps == len(strays)
    kept = [s for i, s in enumerate(real) if i not in strays]
    assert prof.request_rate == pytest.approx(_rate(kept), rel=1e-3)


def test_the_cli_names_the_zeros_of_a_small_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stamps: list[Any] = _poisson(19, 1.0)
    stamps[5] = 0
    assert main(["profile", str(_write(tmp_path / "small.jsonl", stamps))]) == 0
    out = capsys.readouterr().out
    assert "outlying stamps: 1, left out of the rate and burstiness (line 6)" in out
    assert float(out.split("arrival rate: ", 1)[1].split(" ", 1)[0]) > 0.5  # printed 1.0e-08


@pytest.mark.parametrize("n", [10, 100])
def test_epoch_stamps_among_relative_ones_are_outlying_past_one_percent(tmp_path: Path, n: int) -> None:
    offsets = _poisson(n, 2.0, seed=11, start=0.0)
    stray = {3, n // 2} if n >= 100 else {3}  # 2 % of 100; one of 10
    stamps: list[Any] = [EPOCH + i if i in stray else s for i, s in enumerate(offsets)]
    prof = profile_file(_write(tmp_path / "relative.jsonl", stamps))
    assert prof.outlying_stamp_lines == tuple(i + 1 for i in sorted(stray)) and prof.malformed == 0
    kept = [s for i, s in enumerate(offsets) if i not in stray]
    assert prof.request_rate == pytest.approx(_rate(kept), rel=1e-3)


@pytest.mark.parametrize(
    "case",
    [
        "relative from 0",
        "relative from 0, small",
        "boot clock",
        "milliseconds from the start crossing the floor",
        "epoch, shuffled with a late tail",
        "half zeros",
        "mostly zeros",
    ],
)
def test_the_epoch_floor_keeps_every_line_of_one_clock_or_no_majority(tmp_path: Path, case: str) -> None:
    """What the epoch floor must not drop (`other_clock_stamps`' docstring): stamps counted from the
    log's start or a machine's boot, a clock counted in milliseconds that crosses the floor (read as
    seconds), epoch stamps alone, and logs where no majority tells the clock (half zeros; mostly zeros,
    which may be stamps missing, with the epoch ones the real arrivals).

    A guard, not a regression test: before the epoch floor every line was kept, so only the
    `outlying_stamps` attribute is new to it. It is kept because it fails on a floor that plans a wrong
    rate: one without the gap between the two sides (the millisecond clock crossing 1e8) or that takes
    half the stamps for a minority (half zeros)."""
    stamps: list[float]
    if case == "relative from 0":
        stamps = [0.0, *_poisson(299, 5.0, start=0.0)]
    elif case == "relative from 0, small":
        stamps = [0.0, 0.4, 1.1, 3.0, 7.5]
    elif case == "boot clock":  # time.monotonic() on a machine up 35 days
        stamps = _poisson(300, 5.0, start=3.0e6)
    elif case == "milliseconds from the start crossing the floor":  # 3 days, 1e8 ms at 28 hours
        stamps = [round(s) for s in _poisson(3000, 1 / 86400.0, start=0.0)]
    elif case == "epoch, shuffled with a late tail":
        stamps = _poisson(300, 5.0) + _poisson(10, 5.0, seed=8, start=EPOCH + 86400)
        random.Random(2).shuffle(stamps)
    elif case == "half zeros":
        stamps = [0.0] * 50 + _poisson(50, 1.0)
    else:
        stamps = [0.0] * 60 + _poisson(40, 1.0)
    prof = profile_file(_write(tmp_path / "log.jsonl", list(stamps)))
    assert prof.malformed == 0 and prof.outlying_stamps == 0
    assert prof.requests == len(stamps)
    assert prof.request_rate == pytest.approx(_rate(stamps), rel=1e-6)


def _far_log(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """300 requests over about 2 minutes, and one real request 4 hours before them (line 1)."""
    rng = random.Random(9)
    rows = [{"timestamp": EPOCH - 4 * 3600, "prompt_tokens": 1777, "completion_tokens": 333}]
    rows += [
        {"timestamp": s, "prompt_tokens": rng.randint(100, 2000), "completion_tokens": rng.randint(10, 500)}
        for s in _poisson(300, 2.5, seed=4)
    ]
    path = tmp_path / "far.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def test_a_distant_request_keeps_its_lengths_and_only_its_stamp_leaves_the_rate(tmp_path: Path) -> None:
    """It printed "malformed: 1 skipped (lines 1)" and profiled 300 requests: the stamp is suspect, the
    token counts are not."""
    path, rows = _far_log(tmp_path)
    prof = profile_file(path)
    assert (prof.requests, prof.malformed, prof.malformed_lines) == (301, 0, ())
    assert (prof.outlying_stamps, prof.outlying_stamp_lines, prof.stamped) == (1, (1,), 301)
    assert prof.isl.mean == pytest.approx(sum(r["prompt_tokens"] for r in rows) / 301)
    assert prof.osl.mean == pytest.approx(sum(r["completion_tokens"] for r in rows) / 301)
    core = [r["timestamp"] for r in rows[1:]]
    assert prof.request_rate == pytest.approx(_rate(core), rel=1e-9)  # the 300 stamps' rate
    gaps = [b - a for a, b in itertools.pairwise(core)]
    mean = sum(gaps) / len(gaps)
    spread = (sum((g - mean) ** 2 for g in gaps) / len(gaps)) ** 0.5 / mean
    assert prof.interarrival_cv == pytest.approx(spread, rel=1e-6)


def test_outlying_stamps_are_reported_apart_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _far_log(tmp_path)
    out_file = tmp_path / "wl.json"
    assert main(["profile", str(path), "-o", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("301 requests from ")
    assert "outlying stamps: 1, left out of the rate and burstiness (line 1)" in out
    assert "malformed" not in out
    assert main(["profile", str(path), "--json"]) == 0
    profile = json.loads(capsys.readouterr().out)["profile"]
    assert (profile["requests"], profile["malformed"], profile["malformed_lines"]) == (301, 0, [])
    assert (profile["outlying_stamps"], profile["outlying_stamp_lines"]) == (1, [1])
    written = json.loads(out_file.read_text())["profile"]
    assert (written["outlying_stamps"], written["outlying_stamp_lines"]) == (1, [1])


def test_outlying_stamps_and_malformed_lines_are_counted_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Twelve zeros among 400 epoch stamps (3 %, the epoch floor's) and two lines that are not requests:
    each count is its own, the first ten outlying lines are named with an ellipsis."""
    stamps: list[Any] = _poisson(400, 2.0, seed=6)
    zeros = list(range(5, 400, 33))[:12]
    for i in zeros:
        stamps[i] = 0
    path = _write(tmp_path / "mixed.jsonl", stamps)
    path.write_text(path.read_text() + "not json\n" + json.dumps({"timestamp": EPOCH}) + "\n")
    prof = profile_file(path)
    assert (prof.requests, prof.malformed, prof.malformed_lines) == (400, 2, (401, 402))
    assert prof.outlying_stamps == 12
    assert prof.outlying_stamp_lines == tuple(i + 1 for i in zeros[:10])
    assert main(["profile", str(path)]) == 0
    out = capsys.readouterr().out
    assert "malformed: 2 skipped (lines 401, 402)" in out
    shown = ", ".join(str(i + 1) for i in zeros[:10])
    assert f"outlying stamps: 12, left out of the rate and burstiness (lines {shown}, ...)" in out
