"""`autoparallel sweep`: batch what-ifs from a scenario file or a grid of flags, on any executor.

    autoparallel sweep scenarios.yaml --out results.parquet
    autoparallel sweep --models meta-llama/Llama-3.1-8B --clusters "1x8xH100;1x8xA100-80G" \\
        --workloads chatbot,rag --isl 1024,4096 --osl 256 --out results.csv --executor dask://host:8786
    autoparallel sweep --models meta-llama/Llama-3.1-70B --clusters 2x8xH100 --isl 2048 --osl 512 \\
        --ttft-ms 2000 --tpot-ms 15,30,60 --disagg auto --out results.parquet   # where P/D wins

Each comma list is one axis of the grid; `--isl/--osl/...` override the presets in `--workloads` (or,
without it, describe custom request shapes). `--train` with `--seq-len/--global-batch` sweeps training.
Re-running with the same `--out` solves only the scenarios the file does not have yet.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from typing import Any

from autoparallel.cli._output import add_progress_flags, bounded, strict_json, strict_object
from autoparallel.errors import InputError
from autoparallel.sweeps.scenario import GRAD_REDUCE, check_sweep_size, serving_base

_SERVING_AXES = ("isl", "osl", "concurrency", "request_rate", "ttft_ms", "tpot_ms", "max_model_len")
_TRAINING_AXES = ("seq_len", "global_batch", "tokens")


def add_sweep_parser(sub: Any) -> None:
    """`autoparallel sweep [FILE] [--models ...] [--out ...] [--executor ...]`."""
    p = sub.add_parser("sweep", help="batch what-if: best plan for every scenario of a file or a grid")
    p.set_defaults(func=cmd_sweep)
    p.add_argument("scenarios", nargs="?", default=None, help="scenario file (.yaml, .yml or .csv)")
    grid = p.add_argument_group("a grid instead of a file (comma-separated lists)")
    grid.add_argument("--models", help="model ids")
    grid.add_argument("--clusters", help="cluster specs (use ; between specs that carry options)")
    grid.add_argument("--workloads", default=None, help="serving presets (default chatbot)")
    grid.add_argument(
        "--workload-file",
        default=None,
        help="workload files written by `autoparallel profile` (more values of the workload axis)",
    )
    for axis in _SERVING_AXES:
        grid.add_argument("--" + axis.replace("_", "-"), default=None, help=f"serving {axis} values")
    grid.add_argument("--train", action="store_true", help="sweep training jobs instead of serving")
    for axis in _TRAINING_AXES:
        grid.add_argument("--" + axis.replace("_", "-"), default=None, help=f"training {axis} values")
    grid.add_argument("--precision", default=None, help="training precisions (bf16,fp8)")
    grid.add_argument(
        "--grad-reduce-in-bf16",
        action="store_true",
        help="training, Megatron: also plan ZeRO 0-3 with bf16 gradient reduction, as plan --train "
        "--grad-reduce-in-bf16 (each training row's `grad_reduce_in_bf16`)",
    )
    grid.add_argument(
        "--objectives",
        "--objective",
        dest="objectives",
        default="throughput",
        help="objectives (serving: throughput, ttft, tpot, cost, headroom; "
        "training: throughput, mfu, cost, headroom)",
    )
    grid.add_argument(
        "--engines",
        default=None,
        help="engines (serving: vllm, sglang, trtllm, auto; training: megatron, deepspeed)",
    )
    grid.add_argument(
        "--disagg",
        default=None,
        help="compare aggregated with prefill/decode disaggregated serving per scenario (plan --disagg): "
        "auto, on, off, or a list such as auto,off; rows get mode, pd_ratio and both sides' tokens/s/GPU",
    )
    hw = p.add_argument_group("hardware (a scenario file's clusters and --clusters alike)")
    hw.add_argument("--price", default=None, help="US$ per GPU-hour, e.g. H100=2.49 (as plan takes it)")
    hw.add_argument("--gpus-file", default=None, help="YAML/JSON file of custom GPU types (as plan takes it)")
    run = p.add_argument_group("running")
    run.add_argument("--out", default=None, help="results file: .parquet, .csv or .jsonl (resumes)")
    run.add_argument("--executor", default="process", help="process (default), serial or dask://HOST:PORT")
    run.add_argument(
        "--workers",
        type=bounded("workers"),
        default=None,
        help="local processes (default: one per core; at most the cores and the scenarios to run)",
    )
    run.add_argument(
        "--time-limit",
        type=bounded("time_limit_s", integer=False),
        default=10.0,
        help="limit on each scenario's planning call, tables included (s)",
    )
    add_progress_flags(run)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")


def _list(text: str | None, flag: str, sep: str = ",") -> list[str]:
    if text is None:
        return []
    values = [v.strip() for v in text.split(sep) if v.strip()]
    if not values:
        raise InputError(f"{flag} needs at least one value, got {text!r}")
    return values


def _numbers(text: str | None, flag: str) -> list[float | int]:
    out: list[float | int] = []
    for v in _list(text, flag):
        try:
            number = float(v)
        except ValueError:
            raise InputError(f"{flag}: {v!r} is not a number") from None
        if not number > 0:
            raise InputError(f"{flag}: values must be positive, got {v}")
        out.append(int(number) if number.is_integer() else number)
    return out


def _workloads(args: argparse.Namespace) -> list[str | dict[str, Any]]:
    """The workload axis: presets × the product of the per-field value lists."""
    names = _TRAINING_AXES if args.train else _SERVING_AXES
    axes = {n: _numbers(getattr(args, n), "--" + n.replace("_", "-")) for n in names}
    if args.train:
        serving = [f"--{n.replace('_', '-')}" for n in (*_SERVING_AXES, "workloads") if getattr(args, n)]
        if serving:
            raise InputError(f"{', '.join(serving)}: serving only; not with --train")
        axes["precision"] = _list(args.precision, "--precision") or ["bf16"]  # type: ignore[assignment]
        if not axes["seq_len"] or not axes["global_batch"]:
            raise InputError("--train needs --seq-len and --global-batch")
    elif args.precision or args.grad_reduce_in_bf16 or any(getattr(args, n) for n in _TRAINING_AXES):
        raise InputError(
            "--seq-len, --global-batch, --tokens, --precision and --grad-reduce-in-bf16 need --train"
        )
    given = {n: v for n, v in axes.items() if v}
    if args.train and args.workload_file:
        raise InputError("--workload-file holds a serving workload; it does not apply with --train")
    bases: list[dict[str, Any]] = (
        [] if args.train else [{"preset": p} for p in _list(args.workloads, "--workloads")]
    )
    if args.grad_reduce_in_bf16:
        bases = [{GRAD_REDUCE: True}]
    bases += [{"workload_file": f} for f in _list(args.workload_file, "--workload-file")]
    if not bases:
        # As `plan` reads its flags: a request shape of the user's own (--isl / --osl) starts from no
        # limits; other flags adjust the chatbot preset, whose limits stay (a --request-rate alone
        # dropped them, where plan keeps them). A scenario file's rows follow the same rule.
        bases = [{}] if args.train else [serving_base(given)]
    check_sweep_size(len(bases) * math.prod(map(len, given.values())), "the workload axes")
    out: list[str | dict[str, Any]] = []
    for base in bases:
        for values in itertools.product(*given.values()):
            fields: dict[str, Any] = {**dict(zip(given, values, strict=True)), **base}
            out.append(fields if set(fields) != {"preset"} else str(fields["preset"]))
    return out


def _check_workers(workers: int | None, executor: str | None) -> None:
    """--workers sizes the local process pool: refused with an executor that has none (it was ignored).

    Raises:
        InputError: --workers with --executor serial or dask://.
    """
    spec = (executor or "process").strip()
    if workers is None or not (spec == "serial" or spec.startswith(("dask://", "tcp://"))):
        return
    why = "runs in this process" if spec == "serial" else "runs on the Dask cluster's own workers"
    raise InputError(
        f"--workers {workers} sizes the local process pool; --executor {spec} {why}: drop --workers"
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the sweep; print the table (or JSON) and where the results were written."""
    from autoparallel.cli._output import refuse_overwrite
    from autoparallel.sweeps import grid, load_scenarios
    from autoparallel.sweeps.execute import distinct_scenarios, run_scenarios
    from autoparallel.sweeps.scenario import Hardware

    _check_workers(args.workers, args.executor)
    refuse_overwrite(
        "--out", args.out, [("the scenario file", args.scenarios), ("the --gpus-file", args.gpus_file)]
    )  # before they are read
    hardware = Hardware.of(args.gpus_file if args.gpus_file is not None else (), args.price)
    if args.scenarios is not None:
        if args.models or args.clusters:
            raise InputError("give either a scenario file or --models/--clusters, not both")
        if args.disagg:
            raise InputError("--disagg is a grid flag; in a scenario file give a `disagg` column or grid key")
        if args.grad_reduce_in_bf16:
            raise InputError(
                "--grad-reduce-in-bf16 is a grid flag; in a scenario file give a `grad_reduce_in_bf16` "
                "column or workload key"
            )
        scenarios = load_scenarios(args.scenarios, hardware)
    else:
        if not args.models or not args.clusters:
            raise InputError("give a scenario file, or --models and --clusters")
        sep = ";" if ";" in args.clusters else ","
        engines: list[str | None] = [*_list(args.engines, "--engines")] or [None]
        scenarios = grid(
            _list(args.models, "--models"),
            [hardware.cluster(c) for c in _list(args.clusters, "--clusters", sep)],
            _workloads(args),
            _list(args.objectives, "--objectives"),
            engines,
            [*_list(args.disagg, "--disagg")] or [None],
        )
        if args.grad_reduce_in_bf16 and any(str(e).lower() == "deepspeed" for e in engines):
            print(  # `grid` skips them beside Megatron (DeepSpeed alone is refused)
                "note: --grad-reduce-in-bf16 is Megatron's flag; the DeepSpeed rows are left out (DeepSpeed "
                "reduces bf16 gradients already: sweep it without the flag for its rows)",
                file=sys.stderr,
            )
    hardware.check_used(scenarios)
    merged = len(scenarios) - len(distinct_scenarios(scenarios))
    if merged:  # run once each (`distinct_scenarios`): said, not silently fewer rows than given
        print(
            f"note: {merged} duplicate scenario{'s' if merged != 1 else ''} merged: "
            f"{'each' if merged != 1 else 'it'} names a scenario given before (the same inputs, however "
            "written), which runs once, under its first spelling",
            file=sys.stderr,
        )
    result = run_scenarios(
        scenarios,
        executor=args.executor,
        workers=args.workers,
        out=args.out,
        progress=args.progress,
        time_limit_s=args.time_limit,
    )
    if args.json:  # strict JSON: a figure that is not finite is null, and its row says why
        from autoparallel.disagg import UNBOUNDED_WHY

        unbounded = dict.fromkeys(("ttft_ms", "ttft_ms_at_rate"), UNBOUNDED_WHY)  # a disaggregated row's
        rows = []
        for r in result.to_dicts():
            rows.append(strict_object(r, unbounded if r.get("mode") == "disaggregated" else None))
        sys.stdout.write(strict_json(rows) + "\n")
        return 0
    text = result.table()
    if args.out and len(result) > 40:
        text = text.splitlines()[0]
    sys.stdout.write(text + "\n")
    if args.out:
        sys.stdout.write(f"results: {args.out}\n")
    return 0
