"""`autoparallel plan | evaluate | pareto | sweep`: the planner on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from autoparallel import objectives
from autoparallel.cli import disagg_cmd, fleet_cmd
from autoparallel.errors import InputError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _add_common(p: argparse.ArgumentParser, *, model_optional: bool = False) -> None:
    p.add_argument(
        "model",
        nargs="?" if model_optional else None,
        help="zoo id (see `autoparallel models`), a config.json or a folder holding one",
    )
    p.add_argument(
        "--cluster", required=True, help="e.g. 2x8xH100, 8xA100-80G, 16xH200,ib=400, 2x8xH100+4x8xA100-80G"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _add_serving_workload(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workload",
        default=None,
        help="serving preset: chatbot, batch, rag, long-context, reasoning (default chatbot)",
    )
    p.add_argument("--workload-file", help="a workload file written by `autoparallel profile`")
    p.add_argument("--isl", type=_positive_int, help="input tokens per request")
    p.add_argument("--osl", type=_positive_int, help="output tokens per request")
    p.add_argument("--concurrency", type=_positive_int, help="requests in flight over the deployment")
    p.add_argument("--request-rate", type=_positive_float, help="arriving requests per second")
    p.add_argument("--ttft-ms", type=_positive_float, help="limit on time to first token (ms)")
    p.add_argument("--tpot-ms", type=_positive_float, help="limit on time per output token (ms)")


def _add_training_workload(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", action="store_true", help="plan a training job instead of serving")
    p.add_argument("--seq-len", type=_positive_int, help="training sequence length (tokens)")
    p.add_argument("--global-batch", type=_positive_int, help="sequences per optimizer step")
    p.add_argument("--tokens", type=_positive_float, help="training token budget (for time and cost)")
    p.add_argument("--precision", choices=("bf16", "fp8"), default="bf16")


def add_plan_parser(sub: Any) -> None:
    """`autoparallel plan MODEL --cluster C [...]`."""
    p = sub.add_parser("plan", help="best serving or training configuration, with deployment files")
    _add_common(p, model_optional=True)
    _add_serving_workload(p)
    _add_training_workload(p)
    p.set_defaults(func=cmd_plan)
    p.add_argument(
        "--objective",
        choices=objectives.choices(),
        default=None,
        help=objectives.help_text() + ". Default: throughput (a deployment with a --request-rate: goodput)",
    )
    fleet_cmd.add_fleet_arguments(p)
    disagg_cmd.add_disagg_arguments(p)
    p.add_argument("--top", type=_positive_int, default=1, help="show the K best configurations")
    allowed = p.add_argument_group("serving knobs the planner may choose (comma-separated vLLM values)")
    allowed.add_argument("--kv-cache-dtype", default=None, help="allowed KV-cache dtypes, e.g. auto,fp8")
    allowed.add_argument("--quantization", default=None, help="allowed weight quantizations, e.g. none,fp8")
    allowed.add_argument("--gpu-memory-utilization", default=None, help="allowed values, e.g. 0.9,0.92,0.95")
    allowed.add_argument("--max-model-len", type=_positive_int, default=None, help="context to serve")
    p.add_argument("--time-limit", type=_positive_float, default=None, help="solver time limit (s)")
    p.add_argument("--workers", type=_positive_int, default=None, help="CP-SAT worker threads")
    p.add_argument("--seed", type=int, default=0, help="CP-SAT random seed")


def add_evaluate_parser(sub: Any) -> None:
    """`autoparallel evaluate MODEL --cluster C --tp N ...`: the cost model's verdict on one config."""
    p = sub.add_parser("evaluate", help="memory, throughput and latency of a configuration you run today")
    p.set_defaults(func=cmd_evaluate)
    _add_common(p)
    _add_serving_workload(p)
    _add_training_workload(p)
    p.add_argument("--tp", type=_positive_int, default=1)
    p.add_argument("--pp", type=_positive_int, default=1)
    p.add_argument("--dp", type=_positive_int, default=None, help="data-parallel replicas")
    p.add_argument("--cp", type=_positive_int, default=1, help="training: context-parallel degree")
    p.add_argument("--ep", type=_positive_int, default=1, help="training: expert-parallel degree")
    p.add_argument("--vp", type=_positive_int, default=1, help="training: virtual pipeline stages")
    p.add_argument("--micro-batch", type=_positive_int, default=1)
    p.add_argument("--zero", choices=("0", "1", "2", "3", "dist"), default="dist")
    p.add_argument("--recompute", choices=("none", "selective", "full"), default="selective")
    p.add_argument("--enable-expert-parallel", action="store_true")
    p.add_argument("--max-num-seqs", type=_positive_int, default=256)
    p.add_argument("--max-model-len", type=_positive_int, default=None)
    p.add_argument("--max-num-batched-tokens", type=_positive_int, default=None)
    p.add_argument("--gpu-memory-utilization", type=_positive_float, default=None)
    p.add_argument("--quantization", default=None)
    p.add_argument("--kv-cache-dtype", default="auto")
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--engine", choices=("vllm", "sglang", "trtllm"), default="vllm")


def add_pareto_parser(sub: Any) -> None:
    """`autoparallel pareto MODEL --cluster C --objectives throughput,tpot`."""
    p = sub.add_parser("pareto", help="trade-off front between two serving objectives")
    p.set_defaults(func=cmd_pareto)
    _add_common(p)
    _add_serving_workload(p)
    p.add_argument("--objectives", default="throughput,tpot",
                   help="two serving objectives: " + ", ".join(objectives.SERVING) + " (headroom = memory)")
    p.add_argument("--points", type=_positive_int, default=8, help="most points on the front")


def add_sweep_parser(sub: Any) -> None:
    """`autoparallel sweep --models A,B --clusters X,Y --workloads W,V`."""
    p = sub.add_parser("sweep", help="batch what-if: best plan for every model x cluster x workload")
    p.set_defaults(func=cmd_sweep)
    p.add_argument("--models", required=True, help="comma-separated model ids")
    p.add_argument(
        "--clusters",
        required=True,
        help="comma-separated cluster specs (use ; between specs that carry options)",
    )
    p.add_argument("--workloads", default="chatbot", help="comma-separated serving presets")
    p.add_argument("--objective", choices=objectives.choices(), default="throughput",
                   help=objectives.help_text())
    p.add_argument("--json", action="store_true")


def _serving_workload(args: argparse.Namespace) -> Any:
    from autoparallel.workload import Serving

    custom_shape = args.workload is None and (args.isl is not None or args.osl is not None)
    # A request shape of the user's own starts from no service-level limits (not the chatbot preset's).
    base = Serving() if custom_shape else Serving.preset(args.workload or "chatbot")
    if getattr(args, "workload_file", None):
        from autoparallel.workload_profile import load_workload_file

        base = load_workload_file(args.workload_file)
    update: dict[str, Any] = {}
    for field in ("isl", "osl", "concurrency", "request_rate", "ttft_ms", "tpot_ms"):
        value = getattr(args, field, None)
        if value is not None:
            update[field] = value
    if getattr(args, "max_model_len", None) is not None:
        update["max_model_len"] = args.max_model_len
    if update:
        keep = args.workload or getattr(args, "workload_file", None)
        base = base.model_copy(update={"name": base.name if keep else "custom", **update})
        base = Serving.model_validate(base.model_dump())
    return base


def _training_workload(args: argparse.Namespace) -> Any:
    from autoparallel.workload import Training

    if args.seq_len is None or args.global_batch is None:
        raise InputError("--train needs --seq-len and --global-batch")
    return Training(
        seq_len=args.seq_len, global_batch=args.global_batch, tokens=args.tokens, precision=args.precision
    )


def _split(text: str, flag: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise InputError(f"{flag} needs at least one value, got {text!r}")
    return values


def _serving_options(args: argparse.Namespace) -> Any:
    """ServingOptions widened by the user's `--kv-cache-dtype / --quantization / --gpu-memory-utilization`."""
    if args.kv_cache_dtype is None and args.quantization is None and args.gpu_memory_utilization is None:
        return None
    from autoparallel.solvers.serving.space import ServingOptions

    update: dict[str, Any] = {}
    if args.kv_cache_dtype is not None:
        update["kv_cache_dtypes"] = tuple(_split(args.kv_cache_dtype, "--kv-cache-dtype"))
    if args.quantization is not None:
        quants = _split(args.quantization, "--quantization")
        update["quantizations"] = tuple(None if q.lower() == "none" else q for q in quants)
    if args.gpu_memory_utilization is not None:
        utils: list[float] = []
        for value in _split(args.gpu_memory_utilization, "--gpu-memory-utilization"):
            try:
                u = float(value)
            except ValueError:
                raise InputError(f"--gpu-memory-utilization: {value!r} is not a number") from None
            if not 0 < u <= 1:
                raise InputError(f"--gpu-memory-utilization must be in (0, 1], got {u}")
            utils.append(u)
        update["gpu_memory_utilizations"] = tuple(utils)
    return ServingOptions().model_copy(update=update)


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    if args.json:
        json.dump(payload, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text.rstrip() + "\n")


def cmd_plan(args: argparse.Namespace) -> int:
    """Solve for the best configuration and print it with its artifacts."""
    from autoparallel import api

    if fleet_cmd.wants_fleet(args):
        if args.disagg == "on":
            raise InputError(
                "--disagg on plans one MODEL on a cluster of one GPU pool, not --fleet or mixed pools"
            )
        return fleet_cmd.cmd_fleet(args, None if args.fleet else _serving_workload(args))
    if args.model is None:
        raise InputError("plan needs a MODEL (or --fleet FILE)")
    workload = _training_workload(args) if args.train else _serving_workload(args)
    from autoparallel.solvers.settings import SolverSettings

    settings = SolverSettings.create(time_limit_s=args.time_limit, workers=args.workers, seed=args.seed)
    options = None if args.train else _serving_options(args)
    early = disagg_cmd.required(args, workload)  # --disagg on: its infeasibility first, with numbers
    plans: list[Any] = api.solve_top(
        args.model,
        fleet_cmd.priced_cluster(args),
        workload=workload,
        objective=args.objective or "throughput",
        settings=settings,
        options=options,
        top=args.top,
    )
    whole = None if args.train else fleet_cmd.whole_cluster(args, workload, plans[0].served_id)
    comp = early or (None if args.train else disagg_cmd.comparison(args, workload, plans[0].served_id, whole))
    if args.json:
        payload: Any = plans[0].to_dict() if len(plans) == 1 else [p.to_dict() for p in plans]
        first = payload if isinstance(payload, dict) else payload[0]
        if whole is not None:
            first["deployment"] = fleet_cmd.deployment_dict(whole)
        if comp is not None:
            disagg_cmd.merge_json(first, comp)
        _emit(args, payload, "")
    else:
        text = "\n\n".join(p.explain() for p in plans).rstrip()
        if whole is not None:
            text += "\n\nWhole cluster (deployment planner, several engines):\n" + whole.explain()
        if comp is not None:
            text += "\n\n" + comp.explain()
        sys.stdout.write(text + "\n")
    if whole is not None and args.plan_file:
        fleet_cmd.write_plan_file(args.plan_file, whole)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate one user-given configuration; exit 1 if it does not fit."""
    from autoparallel import api

    ev: api.Plan
    if args.train:
        ev = _evaluate_training(args, _training_workload(args))
    else:
        ev = _evaluate_serving(args, _serving_workload(args))
    _emit(args, ev.to_dict(), ev.explain())
    return 0 if ev.fits else 1


def cmd_pareto(args: argparse.Namespace) -> int:
    """Print the trade-off front between two objectives."""
    from autoparallel import api
    from autoparallel.explain import front_table

    names = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    if len(names) != 2:
        raise InputError(f"--objectives needs two serving objectives, got {args.objectives!r}")
    a, b = (objectives.canonical(n, "serving") for n in names)
    pair = (a, b)
    workload = _serving_workload(args)
    front = api.pareto(args.model, args.cluster, objectives=pair, workload=workload, points=args.points)
    _emit(args, [p.to_dict() for p in front], front_table(front, pair))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Best plan for every model × cluster × workload."""
    from autoparallel import api

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sep = ";" if ";" in args.clusters else ","
    clusters = [c.strip() for c in args.clusters.split(sep) if c.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    rows = api.sweep(models=models, clusters=clusters, workloads=workloads, objective=args.objective)
    from autoparallel.explain import sweep_table

    _emit(args, [r.to_dict() for r in rows], sweep_table(rows))
    return 0


def _evaluate_serving(args: argparse.Namespace, workload: Any) -> Any:
    """`autoparallel evaluate` (serving): the user's engine flags as a ServingConfig, evaluated (vLLM:
    a plan compared with the optimum; SGLang / TensorRT-LLM: the engine's own evaluation)."""
    from autoparallel import api
    from autoparallel.hardware import Cluster

    cluster = Cluster.parse(args.cluster)
    model = api._model(args.model)
    config = _serving_config(args, model, cluster, workload)
    if args.engine != "vllm":
        return api.evaluate_engine(args.model, cluster, config, workload, args.engine)
    return api.evaluate(model, cluster, config, workload)


def _serving_config(args: argparse.Namespace, model: Any, cluster: Any, workload: Any) -> Any:
    from autoparallel.configs import ServingConfig

    fields: dict[str, Any] = {
        "tp": args.tp,
        "pp": args.pp,
        "replicas": args.dp or max(1, cluster.world_size // (args.tp * args.pp)),
        "enable_expert_parallel": args.enable_expert_parallel,
        "max_num_seqs": args.max_num_seqs,
        "max_model_len": args.max_model_len or workload.deploy_len(model.max_position_embeddings),
        "max_num_batched_tokens": args.max_num_batched_tokens,
        "kv_cache_dtype": args.kv_cache_dtype,
        "quantization": args.quantization,
        "enforce_eager": args.enforce_eager,
    }
    if args.gpu_memory_utilization is not None:
        fields["gpu_memory_utilization"] = args.gpu_memory_utilization
    try:
        config = ServingConfig(**fields)
    except ValueError as exc:
        errors = exc.errors() if hasattr(exc, "errors") else None
        where = f"{errors[0]['loc'][0]}: {errors[0]['msg']}" if errors else str(exc)
        raise InputError(f"invalid configuration: {where}") from None
    return config


def _evaluate_training(args: argparse.Namespace, workload: Any) -> Any:
    """`autoparallel evaluate --train`: the user's layout as a TrainingConfig, evaluated."""
    from autoparallel import api
    from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
    from autoparallel.hardware import Cluster

    cluster = Cluster.parse(args.cluster)
    dp = args.dp or max(1, cluster.world_size // (args.tp * args.pp * args.cp))
    if workload.global_batch % (args.micro_batch * dp):
        raise InputError(
            f"--global-batch {workload.global_batch} is not a multiple of micro-batch × dp = "
            f"{args.micro_batch} × {dp}"
        )
    config = TrainingConfig(
        tp=args.tp, pp=args.pp, dp=dp, cp=args.cp, ep=args.ep, vp=args.vp, micro_batch=args.micro_batch,
        global_batch=workload.global_batch, seq_len=workload.seq_len, zero=ZeroStage(args.zero),
        recompute=Recompute(args.recompute), precision=workload.precision,
    )
    if config.world_size > cluster.world_size:
        raise InputError(
            f"tp × pp × dp × cp = {config.world_size} GPUs, but the cluster has {cluster.world_size}"
        )
    return api.evaluate(args.model, cluster, config, workload)
