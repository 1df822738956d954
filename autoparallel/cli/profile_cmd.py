"""The `profile` subcommand: a request log, benchmark result or metrics scrape -> a workload file.

    autoparallel profile requests.jsonl [-o workload.json] [--json]

Prints the derived distributions, arrival rate and burstiness, the malformed-line count and the
requests whose stamp lies far outside the log's (left out of the rate, not of the lengths); writes
the workload file that `plan`, `evaluate` and `pareto` accept with `--workload-file`. The workload is
of the requests its max_model_len (the p99 prompt + the p99 output) serves: prompts that reach it
are left out, outputs that run past it end there, and the output says how many of each.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoparallel.workload_profile import WorkloadProfile


def add_profile_parser(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Register `profile LOG [-o FILE] [--json]`; the parser's `func` default is `cmd_profile`."""
    p = subparsers.add_parser(
        "profile",
        help="derive a serving workload from a request log, a vLLM / SGLang benchmark result or a "
        "vLLM / SGLang /metrics scrape",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "log",
        help="JSON Lines request log, a vLLM / SGLang benchmark result file, or a saved /metrics scrape",
    )
    p.add_argument("-o", "--output", help="write the workload file here (JSON)")
    p.add_argument("--name", default="profiled", help="workload name in the file (default profiled)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_profile)
    return p


def cmd_profile(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from autoparallel.bounds import BOUNDS, input_error
    from autoparallel.cli._output import refuse_overwrite
    from autoparallel.perf.serving_load import MAX_REPLAY_PASSES
    from autoparallel.workload_profile import (
        MAX_REPLAYED_PROMPTS,
        REPLAY_UNITS_PER_PROMPT,
        TIME_KEYS,
        profile_file,
        to_serving,
        write_workload_file,
    )

    refuse_overwrite("-o", args.output, [("the request log", args.log)])  # before it is read
    prof = profile_file(args.log)
    try:
        serving = to_serving(prof, args.name)
    except ValidationError as exc:  # a legal log beyond what a workload holds (10^6+ prompts, ...)
        raise input_error(exc, f"{args.log}: its workload") from None
    finite = prof.source in ("vllm-bench", "sglang-bench") or prof.sent_at_once
    if finite and prof.kept > MAX_REPLAYED_PROMPTS:
        what = "benchmark's" if prof.source != "request-log" else "burst of"
        print(
            f"note: the workload leaves out num_prompts: a replay of the {what} {prof.kept:,} "
            f"prompts runs past the replay's budget of {MAX_REPLAY_PASSES:,} scheduler-pass units (up to "
            f"{REPLAY_UNITS_PER_PROMPT:g} a prompt: at most {MAX_REPLAYED_PROMPTS:,} prompts are kept), "
            "which plan and evaluate refuse; it is planned in its steady state at the benchmark's rate, "
            "burstiness and concurrency cap",
            file=sys.stderr,
        )
    if args.output:
        write_workload_file(args.output, prof, serving)
    clamped = _clamped_burstiness(prof.gamma_shape, serving.burstiness)
    if args.json:
        doc: dict[str, Any] = {"profile": prof.model_dump(), "serving": serving.model_dump()}
        notes = [f"burstiness {prof.gamma_shape:g}: {clamped}"] if clamped else []
        notes += _busiest_lines(prof)[1:]  # the varying rate's line, where it varies
        if notes:
            doc["notes"] = notes
        print(json.dumps(doc, indent=2))
        return 0
    if prof.request_rate and prof.load == "ramp-mean":
        rate = (
            f"{prof.request_rate:.4g} requests/s, the mean of the benchmark's {prof.ramp_up} ramp-up "
            "averaged over its run (a plan holds one rate; the result has no per-request start times)"
        )
    elif prof.request_rate and prof.load == "start-times":
        ramp = f" of its {prof.ramp_up} ramp-up" if prof.ramp_up else ""
        rate = (
            f"{prof.request_rate:.4g} requests/s, measured from the benchmark's per-request start times{ramp}"
        )
    elif prof.request_rate:
        unit = "" if prof.time_unit == "s" else f" (stamps read as epoch {prof.time_unit})"
        rate = f"{prof.request_rate:.4g} requests/s{unit}"
    elif prof.source == "prometheus":
        rate = "not recorded (one metrics scrape has no arrival times)"
    elif prof.source != "request-log":
        rate = "all at once"
    elif prof.sent_at_once:
        rate = (
            f"all at once (every request stamped at the same time): a finite burst of {prof.kept:,} "
            "prompts, as `vllm bench serve --request-rate inf` sends them"
        )
    elif prof.stamped:
        rate = (
            "not recorded: one stamped request has no arrival gap, so the log is planned as a stream at "
            "whatever rate the deployment sustains"
        )
    else:
        rate = (
            f"not recorded: no line stamps its arrival under {', '.join(TIME_KEYS)}, so the log is "
            "planned as a stream at whatever rate the deployment sustains"
        )
    even = (
        "; the benchmark's burstiness inf: gaps of exactly 1/rate, planned at the burstiness bound "
        f"{BOUNDS['burstiness'].hi:g}"
        if prof.load == "configured"
        else ""
    )
    if prof.max_concurrency is not None:
        rate += f", at most {prof.max_concurrency:,} in flight (the benchmark's max_concurrency)"
    most, least = BOUNDS["burstiness"].hi, BOUNDS["burstiness"].lo
    if prof.stamp_resolution is not None and prof.request_rate:
        burst = (
            f"burstiness not derived: the stamps' resolution ({prof.stamp_resolution:g} s) is at least a "
            f"quarter of the mean gap ({1.0 / prof.request_rate:.3g} s), too coarse to show how the arrivals "
            "spread; planned as Poisson (burstiness 1)"
        )
    elif prof.interarrival_cv and prof.gamma_shape is not None and prof.gamma_shape > most:
        burst = (
            f"evenly spaced arrivals (inter-arrival spread {prof.interarrival_cv:.2g}, a gamma shape "
            f"above the burstiness bound {most:g}, planned at it)"
        )
    elif prof.interarrival_cv and prof.gamma_shape is not None and prof.gamma_shape < least:
        burst = (
            f"inter-arrival spread {prof.interarrival_cv:.2f} (1 = Poisson; gamma shape "
            f"{prof.gamma_shape:.3g}, below the burstiness bound {least:g}, planned at it)"
        )
    elif prof.interarrival_cv:
        burst = (
            f"inter-arrival spread {prof.interarrival_cv:.2f} (1 = Poisson; gamma shape "
            f"{prof.gamma_shape:.3g})"
        )
    elif prof.interarrival_cv == 0:
        burst = f"evenly spaced arrivals (inter-arrival spread 0{even})"
    elif prof.gamma_shape:
        burst = f"burstiness {prof.gamma_shape:g} (the benchmark's gamma shape; 1 = Poisson)"
        if clamped:
            burst = f"{burst}: {clamped}"
    elif prof.request_rate and prof.load == "configured":
        burst = "Poisson arrivals (the result records no burstiness: the benchmark's default, 1)"
    else:
        burst = "no arrival gaps"
    lines = [
        f"{prof.requests} requests from {args.log} ({prof.source})",
        f"prompt tokens: mean {prof.isl.mean:.0f}, spread {prof.isl.cv:.2f}, p50 {prof.isl.p50:.0f}, "
        f"p90 {prof.isl.p90:.0f}, p99 {prof.isl.p99:.0f}, max {prof.isl.max}",
        f"output tokens: mean {prof.osl.mean:.0f}, spread {prof.osl.cv:.2f}, p50 {prof.osl.p50:.0f}, "
        f"p90 {prof.osl.p90:.0f}, p99 {prof.osl.p99:.0f}, max {prof.osl.max}",
        f"arrival rate: {rate}; {burst}",
    ]
    lines += _busiest_lines(prof)
    for what, stats in (("prompt", prof.isl), ("output", prof.osl)):
        if (over := stats.above_last_bucket) is not None:
            lines.append(
                f"{what} tokens above the last bucket ({over.edge:,.0f}): {over.requests:,} "
                f"({over.share:.1%}), mean {over.mean:,.0f} (from the histogram's _sum), spread to "
                f"{over.spread_to:,.0f}: an estimate, the scrape has no lengths above the edge"
            )
    if prof.failed:
        lines.append(
            f"failed: {prof.failed} requests the benchmark recorded as failed (output length 0 or an "
            "error), not profiled"
        )
    if prof.malformed:
        where = ", ".join(map(str, prof.malformed_lines))
        more = ", ..." if prof.malformed > len(prof.malformed_lines) else ""
        lines.append(f"malformed: {prof.malformed} skipped" + (f" (lines {where}{more})" if where else ""))
    if prof.outlying_stamps:
        where = ", ".join(map(str, prof.outlying_stamp_lines))
        more = ", ..." if prof.outlying_stamps > len(prof.outlying_stamp_lines) else ""
        lines.append(
            f"outlying stamps: {prof.outlying_stamps:,}, left out of the rate and burstiness "
            f"(line{'s' * (prof.outlying_stamps != 1)} {where}{more}): stamped far outside the log's other "
            "arrivals (a 0 among epoch stamps, another clock's or unit's, a mistyped year); their prompt and "
            "output lengths are profiled"
        )
    if prof.left_out and prof.left_out_longest is not None:
        longest_prompt, longest_output = prof.left_out_longest
        lines.append(
            f"left out: {prof.left_out:,} request{'s' if prof.left_out != 1 else ''} "
            f"({prof.left_out / prof.requests:.1%}) whose prompt reaches the max_model_len of "
            f"{serving.max_model_len:,} tokens, which covers the p99 prompt and output: the longest prompt "
            f"({longest_prompt:,}) and output ({longest_output:,}) do not fit it, and vLLM refuses a prompt "
            f"that leaves no room for an output token; the lengths, rate and workload above are of the "
            f"{prof.kept:,} it serves"
        )
    if prof.outputs_cut:
        lines.append(
            f"outputs cut: {prof.outputs_cut:,} served request{'s' if prof.outputs_cut != 1 else ''} ran "
            f"past max_model_len {serving.max_model_len:,} (prompt + output), counted as ending there, "
            "where vLLM ends a request that sets no max_tokens (and refuses one whose max_tokens does "
            "not fit)"
        )
    elif (
        prof.source == "prometheus"
        and serving.max_model_len is not None
        and prof.isl.max + prof.osl.max > serving.max_model_len
    ):
        lines.append(
            f"max_model_len {serving.max_model_len:,} covers the p99 prompt and output; the longest prompt "
            f"({prof.isl.max:,}) and output ({prof.osl.max:,}) do not fit it, and a scrape's requests cannot "
            "be told apart to leave them out: plan with --max-model-len to serve them (a replay cuts them "
            "to it)"
        )
    if args.output:
        lines.append(f"workload written to {args.output} (use --workload-file {args.output})")
    print("\n".join(lines))
    return 0


def _span(seconds: float) -> str:
    """A time into the log: 14h05m, 5m30s, 40s."""
    whole = round(seconds)
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    if whole >= 60:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole}s"


def _window_name(seconds: float) -> str:
    return "hour" if seconds == 3600 else f"{seconds / 60:g} minutes"


def _busiest_lines(prof: WorkloadProfile) -> list[str]:
    """The busiest windows' line (`WorkloadProfile.busiest`) and, where the rate varies over the log
    (`peak_rate`), the line that says so and how to plan for the peak; none for a log too short to hold
    `MIN_WINDOWS` of the shortest window, or without a rate."""
    from autoparallel.workload_profile import PEAK_RATIO

    if not prof.busiest or not prof.request_rate:
        return []
    mean = prof.request_rate
    shown = []
    for w in prof.busiest:
        when = (
            f"{w.start_utc} ({_span(w.start)} into the log)"
            if w.start_utc
            else f"{_span(w.start)} into the log"
        )
        shown.append(
            f"{_window_name(w.seconds)} {w.rate:.4g} requests/s ({w.rate / mean:.2f}x the mean) from {when}"
        )
    lines = [f"busiest window{'s' * (len(shown) > 1)}: {'; '.join(shown)}"]
    peak = max((w for w in prof.busiest if w.varies), key=lambda w: w.rate, default=None)
    if peak is not None and prof.peak_rate:
        name = _window_name(peak.seconds)
        lines.append(
            f"rate varies over the log: its busiest {name} ran at {peak.rate:.4g} requests/s, "
            f"{peak.rate / mean:.2f}x the mean {mean:.4g}, above the {peak.steady_limit:.4g} a steady stream "
            f"of this spread reaches in its busiest {name} by chance and at least {PEAK_RATIO:g}x the mean; "
            f"the workload holds the mean rate, which plan sizes for: to plan for the peak, add "
            f"--request-rate {peak.rate:.4g} to plan --workload-file (the flag overrides the file's rate)"
        )
    return lines


def _clamped_burstiness(shape: float | None, written: float) -> str | None:
    """Where a profiled gamma shape lies outside `BOUNDS["burstiness"]` (the range a workload's
    burstiness and plan's --burstiness accept) and the workload holds the bound instead: "below the
    burstiness bound 0.01 (...): clamped to it, planned and written as 0.01". None where it lies within
    (written rounded, not clamped) or the workload holds another value (no rate: Poisson)."""
    from autoparallel.bounds import BOUNDS

    bound = BOUNDS["burstiness"]
    if shape is None or bound.lo <= shape <= bound.hi:
        return None
    side, edge = ("below", bound.lo) if shape < bound.lo else ("above", bound.hi)
    if written != edge:
        return None
    return (
        f"{side} the burstiness bound {edge:g} (a workload's burstiness, as plan's --burstiness, is a "
        f"gamma shape from {bound.lo:g} to {bound.hi:g}): clamped to it, planned and written as {written:g}"
    )
