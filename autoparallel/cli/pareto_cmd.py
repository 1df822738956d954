"""`autoparallel pareto`: the exact trade-off front between two or more objectives, serving or training.

    autoparallel pareto meta-llama/Llama-3.1-8B --cluster 1x8xH100 \\
        --objectives throughput,ttft,cost --plot front.png --out front.csv \\
        --weights throughput=1,ttft=1 --normalize range
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from autoparallel.cli.plan_cmd import (
    _add_common,
    _add_serving_workload,
    _add_training_workload,
    _positive_int,
    _serving_workload,
    _training_workload,
    add_engine_argument,
    engines_of,
)
from autoparallel.errors import InputError

_NAMES = ("throughput", "ttft", "tpot", "cost", "headroom", "memory")
_TRAINING_NAMES = ("throughput", "mfu", "cost", "headroom", "memory")


def add_pareto_parser(sub: Any) -> None:
    """`autoparallel pareto MODEL --cluster C --objectives a,b[,c...]`."""
    p = sub.add_parser(
        "pareto", help="exact trade-off front between two or more objectives (serving or --train)"
    )
    p.set_defaults(func=cmd_pareto)
    _add_common(p)
    _add_serving_workload(p)
    _add_training_workload(p)
    p.add_argument(
        "--objectives",
        default="throughput,tpot",
        help="two or more of: throughput, ttft, tpot, cost, headroom (serving); "
        "throughput, mfu (= cost), headroom (--train)",
    )
    p.add_argument(
        "--points",
        type=_positive_int,
        default=None,
        help="most points on the front (default 200; the output says when it cut the front)",
    )
    p.add_argument("--plot", default=None, help="save a plot of the front: .png or .svg")
    p.add_argument("--out", default=None, help="save the front as a table: .parquet, .csv or .jsonl")
    p.add_argument(
        "--weights", default=None, help="mark the point minimising a weighted sum, e.g. throughput=1,ttft=2"
    )
    p.add_argument(
        "--normalize",
        choices=("range", "max", "none"),
        default="range",
        help="scale of each objective in --weights: range (front's best..worst, default), "
        "max (value / largest), none",
    )
    p.add_argument("--time-limit", type=float, default=None, help="solver time limit per query (s)")
    add_engine_argument(p)


def _weights(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in (t.strip() for t in text.split(",") if t.strip()):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value) if sep else 1.0
        except ValueError:
            raise InputError(f"--weights: {part!r} is not NAME=NUMBER") from None
    if not out:
        raise InputError(f"--weights needs NAME=NUMBER pairs, got {text!r}")
    return out


def cmd_pareto(args: argparse.Namespace) -> int:
    """Solve the front; print it (table or JSON); optionally save the table and the plot."""
    from autoparallel import api
    from autoparallel.explain import _table

    objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    names = _TRAINING_NAMES if args.train else _NAMES
    if len(objectives) < 2 or any(o not in names for o in objectives):
        raise InputError(
            f"--objectives needs two or more of {', '.join(names[: 4 if args.train else 5])}"
            f"{' (with --train)' if args.train else ''}, got {args.objectives!r}"
        )
    weights = _weights(args.weights) if args.weights else None
    if args.time_limit is not None and not args.time_limit > 0:
        raise InputError(f"--time-limit must be positive, got {args.time_limit}")
    settings = api.SolverSettings.create(time_limit_s=args.time_limit)
    options = None
    if args.engine not in (None, "vllm"):
        if args.train:
            raise InputError(f"--engine {args.engine} does not apply to a training job (--train)")
        from autoparallel.solvers.serving.space import ServingOptions

        options = ServingOptions(engines=engines_of(args.engine))
    front = api.pareto(
        args.model,
        args.cluster,
        objectives=objectives,
        workload=_training_workload(args) if args.train else _serving_workload(args),
        points=args.points,
        settings=settings,
        options=options,
    )
    chosen = front.pick(weights, args.normalize) if weights else None
    if args.out:
        front.write(args.out)
    if args.plot:
        front.plot(args.plot)
    if args.json:
        json.dump(
            {
                "objectives": list(front.objectives),
                "complete": front.complete,
                "cap": front.cap,
                "knee": front.knee(),
                "weighted_choice": chosen,
                "points": [p.to_dict() for p in front],
            },
            sys.stdout,
            indent=2,
            default=str,
        )
        sys.stdout.write("\n")
        return 0
    rows = front.rows()
    cols = [k for k in rows[0] if k.startswith("objective_")]
    body = [
        (
            r["point"],
            r["label"] + (" *knee" if r["knee"] else "") + (" <- weighted" if r["point"] == chosen else ""),
            r["gpus"],
            *[float(r[c]) for c in cols],
        )
        for r in rows
    ]
    status = (
        "complete (proved by CP-SAT)"
        if front.complete
        else f"CUT at --points {front.cap}: more non-dominated plans exist"
        if len(front) + front.merged >= front.cap
        else "not proven complete (a solve hit its time limit)"
    )
    merged = (
        f" ({front.merged} merged: equal in the float model up to solver rounding)" if front.merged else ""
    )
    head = f"Pareto front: {' vs '.join(front.objectives)}: {len(front)} points, {status}{merged}"
    sys.stdout.write(
        head + "\n" + _table(("#", "configuration", "GPUs", *[c[10:] for c in cols]), body) + "\n"
    )
    for flag, path in (("table", args.out), ("plot", args.plot)):
        if path:
            sys.stdout.write(f"{flag}: {path}\n")
    return 0
