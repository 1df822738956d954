"""`autoparallel pareto`: the exact trade-off front between two or more objectives, serving or training.

    autoparallel pareto meta-llama/Llama-3.1-8B --cluster 1x8xH100 \\
        --objectives throughput,ttft,cost --plot front.png --out front.csv \\
        --weights throughput=1,ttft=1 --normalize range
    autoparallel pareto meta-llama/Llama-3.1-70B --cluster 2x8xH100 --isl 2048 --osl 512 \\
        --ttft-ms 2000 --disagg auto --json      # deployments: aggregated or disaggregated per point
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from autoparallel.cli._output import add_progress_flags, bounded, strict_json, strict_object
from autoparallel.cli.fleet_cmd import engines_of, priced_cluster
from autoparallel.cli.plan_cmd import (
    TRAINING_ENGINES,
    _add_common,
    _add_serving_workload,
    _add_training_workload,
    _serving_workload,
    _training_workload,
    add_engine_argument,
    add_grad_reduce_flag,
    add_world_sizes_flag,
    check_mode,
    evaluate_command,
    training_options,
)
from autoparallel.errors import InputError

_NAMES = ("throughput", "ttft", "tpot", "cost", "headroom", "memory")
_TRAINING_NAMES = ("throughput", "mfu", "cost", "headroom", "memory")
_DEPLOYMENT_NAMES = ("throughput", "tpot", "cost", "gpus")
_UNBOUNDED_KEYS = ("ttft_ms", "prefill_wait")
"""A deployment point's figures that are infinite where its TTFT is unbounded (`disagg.UNBOUNDED_WHY`)."""


def add_pareto_parser(sub: Any) -> None:
    """`autoparallel pareto MODEL --cluster C --objectives a,b[,c...]`."""
    p = sub.add_parser(
        "pareto", help="exact trade-off front between two or more objectives (serving or --train)"
    )
    p.set_defaults(func=cmd_pareto)
    _add_common(p)
    _add_serving_workload(p, replay=False)
    _add_training_workload(p)
    add_grad_reduce_flag(p)
    add_world_sizes_flag(p)
    p.add_argument(
        "--objectives",
        default=None,
        help="two or more of: throughput, ttft, tpot, cost, headroom (serving; default throughput,tpot); "
        "throughput, mfu (= cost), headroom (--train; default throughput,headroom); "
        "throughput, tpot, cost ($/hour), gpus (--disagg; default throughput,tpot)",
    )
    p.add_argument(
        "--points",
        type=bounded("points"),
        default=None,
        help="most points on the front (default 200; the output says when it cut the front)",
    )
    g = p.add_argument_group("hardware")
    g.add_argument("--price", default=None, help="US$ per GPU-hour, e.g. H100=2.49 (as plan takes it)")
    g.add_argument("--gpus-file", default=None, help="YAML/JSON file of custom GPU types (as plan takes it)")
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
    p.add_argument(
        "--time-limit",
        type=bounded("time_limit_s", integer=False),
        default=None,
        help="limit per query, and on the tables before the first (s); a front is one or two queries a point",
    )
    add_progress_flags(p)
    p.add_argument(
        "--disagg",
        choices=("auto", "on", "off"),
        default=None,
        help="a front over deployments of the whole cluster whose points may be aggregated or "
        "prefill/decode disaggregated (auto), only disaggregated (on) or only aggregated (off); "
        "objectives: throughput, tpot, cost ($/hour), gpus (TTFT stays a limit: --ttft-ms)",
    )
    add_engine_argument(p)


def _weights(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in (t.strip() for t in text.split(",") if t.strip()):
        name, sep, value = (x.strip() for x in part.partition("="))
        if not sep:
            raise InputError(f"--weights: {part!r} is not NAME=NUMBER (e.g. {part}=1)")
        if name in out:
            raise InputError(f"--weights: {name!r} is given twice; give each objective one weight")
        try:
            out[name] = float(value)
        except ValueError:
            raise InputError(f"--weights: {part!r} is not NAME=NUMBER") from None
    if not out:
        raise InputError(f"--weights needs NAME=NUMBER pairs, got {text!r}")
    return out


def _checked_outputs(args: argparse.Namespace, objectives: tuple[str, ...]) -> dict[str, float] | None:
    """--out's and --plot's file names and --weights, checked before the front is solved (a front can
    take minutes); the weights by canonical objective name (None: no --weights)."""
    from pathlib import Path

    from autoparallel.cli._output import model_inputs, refuse_overwrite
    from autoparallel.sweeps.front import check_plot_path, check_weights
    from autoparallel.sweeps.results import table_target

    inputs = [
        ("the --workload-file", getattr(args, "workload_file", None)),
        ("the --gpus-file", getattr(args, "gpus_file", None)),
        *model_inputs(args.model),
    ]
    refuse_overwrite("--out", args.out, inputs)
    refuse_overwrite("--plot", args.plot, inputs)
    if args.out:
        table_target(args.out)
    if args.plot:
        check_plot_path(Path(args.plot))
    return check_weights(_weights(args.weights), objectives) if args.weights else None


def _point_dict(point: Any, train: bool) -> dict[str, Any]:
    """A front point's JSON; a training point's carries the `evaluate --train` line that gives back
    its figures (`plan_cmd.evaluate_command`; None where evaluate has no flag for a field)."""
    out: dict[str, Any] = point.to_dict()
    if train:
        out["evaluate"] = evaluate_command(point)
    return out


def cmd_pareto(args: argparse.Namespace) -> int:
    """Solve the front; print it (table or JSON); optionally save the table and the plot."""
    from autoparallel import api
    from autoparallel.explain import _table
    from autoparallel.sweeps.execute import progress_bar

    if args.disagg is not None and args.train:
        raise InputError("--disagg makes a front over serving deployments; it does not apply to --train")
    check_mode(args, "pareto")  # flags of the other mode are an error; --precision defaults to bf16
    given = args.objectives is not None
    if args.objectives is None:
        args.objectives = ",".join(api.DEFAULT_FRONT_OBJECTIVES["training" if args.train else "serving"])
    objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    if args.disagg in ("on", "auto") and args.engine not in (None, "vllm"):
        # `off` asks for aggregated deployments only, which the deployment planner plans on every engine.
        raise InputError(
            f"--disagg {args.disagg} plans vLLM prefill/decode engines (NIXL KV transfer); --engine "
            f"{args.engine} has none: use --disagg off (aggregated deployments) or --engine vllm"
        )
    if args.disagg is not None:
        return _deployment_front(args, objectives)
    names = _TRAINING_NAMES if args.train else _NAMES
    if len(objectives) < 2 or any(o not in names for o in objectives):
        raise InputError(
            f"--objectives needs two or more of {', '.join(names[: 4 if args.train else 5])}"
            f"{' (with --train)' if args.train else ''}, got {args.objectives!r}"
        )
    if args.train and args.world_sizes is not None and not {"cost", "mfu"} & set(objectives):
        raise InputError(
            f"--world-sizes weighs GPUs x step time, which only cost or mfu ranks; "
            f"{'--objectives ' if given else 'the default objectives '}{args.objectives} plan the whole "
            "cluster: add cost (e.g. --objectives throughput,cost)"
        )
    weights = _checked_outputs(args, objectives)
    settings = api.SolverSettings.create(time_limit_s=args.time_limit)
    options = training_options(args) if args.train else _engine_options(args.engine)
    with progress_bar(None, args.progress, unit=" points") as bar:
        front = api.pareto(
            args.model,
            priced_cluster(args),
            objectives=objectives,
            workload=_training_workload(args) if args.train else _serving_workload(args),
            points=args.points,
            settings=settings,
            options=options,
            on_point=lambda _: bar.update(1),
        )
    chosen = front.pick(weights, args.normalize) if weights else None
    if args.out:
        front.write(args.out)
    if args.plot:
        front.plot(args.plot)
    if args.json:  # strict JSON: a figure that is not finite is null, its point says why
        payload = {
            "objectives": list(front.objectives),
            "complete": front.complete,
            "cap": front.cap,
            "knee": front.knee(),
            "weighted_choice": chosen,
            "points": [strict_object(_point_dict(p, args.train)) for p in front],
        }
        sys.stdout.write(strict_json(payload) + "\n")
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
        head
        + "\n"
        + _table(("#", "configuration", "GPUs", *[front.title(c[10:]) for c in cols]), body)
        + "\n"
    )
    for flag, path in (("table", args.out), ("plot", args.plot)):
        if path:
            sys.stdout.write(f"{flag}: {path}\n")
    return 0


def _engine_options(engine: str | None) -> Any:
    """ServingOptions with the engines of a serving `--engine` other than vLLM (`engines_of`); None:
    the planner's defaults (vLLM)."""
    if engine in (None, "vllm", *TRAINING_ENGINES):
        return None
    from autoparallel.solvers.serving.space import ServingOptions

    return ServingOptions(engines=engines_of(engine))


def _deployment_front(args: argparse.Namespace, objectives: tuple[str, ...]) -> int:
    """`pareto MODEL --cluster C --disagg auto|on|off`: the mixed front (aggregated and disaggregated); a
    point whose TTFT is unbounded (no --ttft-ms) shows it as such, with a note, and as null in JSON."""
    from autoparallel import api
    from autoparallel.disagg import UNBOUNDED, UNBOUNDED_WHY
    from autoparallel.explain import _table
    from autoparallel.sweeps.execute import progress_bar

    if "ttft" in objectives:
        raise InputError(
            "--disagg: ttft is a limit of a deployment front (--ttft-ms), not an objective: a disaggregated "
            "TTFT depends on prefill queueing at the carried load; use two or more of "
            + ", ".join(_DEPLOYMENT_NAMES)
        )
    if len(objectives) < 2 or any(o not in _DEPLOYMENT_NAMES for o in objectives):
        raise InputError(
            f"--objectives with --disagg needs two or more of {', '.join(_DEPLOYMENT_NAMES)}, "
            f"got {args.objectives!r}"
        )
    weights = _checked_outputs(args, objectives)
    with progress_bar(None, args.progress, unit=" points") as bar:
        front = api.pareto_deployment(
            args.model,
            priced_cluster(args),
            objectives,
            workload=_serving_workload(args),
            disagg=args.disagg,
            points=args.points,
            settings=api.SolverSettings.create(time_limit_s=args.time_limit),
            options=_engine_options(args.engine),
            on_point=lambda _: bar.update(1),
        )
    chosen = front.pick(weights, args.normalize) if weights else None
    if args.out:
        front.write(args.out)
    if args.plot:
        front.plot(args.plot)
    if args.json:  # strict JSON: an unbounded TTFT is null, and its point says why
        payload = {
            "objectives": list(front.objectives),
            "disagg": front.mode,
            "complete": front.complete,
            "cap": front.cap,
            "knee": front.knee(),
            "weighted_choice": chosen,
            "note": front.note or None,
            "solves": front.solves,
            "wall_s": front.wall_s,
            "points": [
                strict_object(
                    {"point": i, **p.to_dict(), "objectives": {n: p.value(n) for n in front.objectives}},
                    dict.fromkeys(_UNBOUNDED_KEYS, UNBOUNDED_WHY),
                )
                for i, p in enumerate(front)
            ],
        }
        sys.stdout.write(strict_json(payload) + "\n")
        return 0
    rows = front.rows()
    unbounded = [r["point"] for r in rows if not math.isfinite(r["ttft_ms"])]
    cols = [k for k in rows[0] if k.startswith("objective_")]
    body = [
        (
            r["point"],
            {"aggregated": "agg", "disaggregated": "disagg"}[r["mode"]]
            + (f" {r['pd_ratio']}" if r["pd_ratio"] else ""),
            r["label"] + (" *knee" if r["knee"] else "") + (" <- weighted" if r["point"] == chosen else ""),
            r["gpus"],
            round(r["throughput_tok_s_per_gpu"]),
            round(r["ttft_ms"]) if math.isfinite(r["ttft_ms"]) else UNBOUNDED,
            *[float(r[c]) for c in cols],
        )
        for r in rows
    ]
    status = (
        "complete (proved by CP-SAT)"
        if front.complete
        else f"CUT at --points {front.cap}: more non-dominated deployments exist"
        if len(front) + front.merged >= front.cap
        else "not proven complete (a solve hit its time limit)"
    )
    mixed = len(front.disaggregated)
    head = (
        f"Deployment front: {' vs '.join(front.objectives)} (--disagg {front.mode}): {len(front)} points, "
        f"{mixed} disaggregated, {status}"
    )
    titles = [front.title(c[10:]) for c in cols]
    table = _table(("#", "mode", "engines", "GPUs", "tok/s/GPU", "TTFT ms", *titles), body)
    sys.stdout.write(head + "\n" + table + "\n")
    spans = []
    for mode in ("aggregated", "disaggregated"):
        mine = [p for p in front if p.mode == mode]
        if mine:
            ranges = ", ".join(
                f"{n} {min(p.value(n) for p in mine):.4g}-{max(p.value(n) for p in mine):.4g}"
                for n in front.objectives
            )
            spans.append(f"{mode} {len(mine)} ({ranges})")
    if len(spans) == 2:
        sys.stdout.write("modes: " + "; ".join(spans) + "\n")
    if front.note:
        sys.stdout.write(f"note: {front.note}\n")
    if unbounded:
        points = ", ".join(map(str, unbounded))
        sys.stdout.write(f"note: TTFT of point{'s' * (len(unbounded) > 1)} {points} {UNBOUNDED_WHY}\n")
    for flag, path in (("table", args.out), ("plot", args.plot)):
        if path:
            sys.stdout.write(f"{flag}: {path}\n")
    return 0
