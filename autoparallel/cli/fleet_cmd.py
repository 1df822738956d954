"""`autoparallel plan --fleet FILE` and the deployment section of `plan MODEL`: the CLI adapter of
`autoparallel.fleet` (flags --fleet, --price, --gpus-file, --plan-file)."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoparallel.cli._output import Input, model_inputs, quantization_value, refuse_overwrite, strict_json
from autoparallel.errors import AutoParallelError, InfeasibleError, InputError, SolverTimeoutError
from autoparallel.objectives import deployment_objective
from autoparallel.workload import rps_text

if TYPE_CHECKING:
    from autoparallel.fleet import FleetPlan
    from autoparallel.hardware import GPU, Cluster
    from autoparallel.solvers.settings import SolverSettings
    from autoparallel.workload import Serving

SPENT = "the sections above spent the time limit (raise --time-limit)"
"""Why a later section of `plan MODEL` was skipped: the command's one limit ran out before it."""
FLEET_OBJECTIVES = ("goodput", "gpus", "cost_per_mtok")
"""Objectives only the deployment planner has (the others map: cost -> $/hour at the rate, planned
there whenever a rate is given, `wants_fleet`)."""


def add_fleet_arguments(p: argparse.ArgumentParser) -> None:
    """--fleet, --price, --gpus-file, --plan-file."""
    g = p.add_argument_group("deployment (several engines, GPU pools, several models)")
    g.add_argument(
        "--fleet",
        default=None,
        help="YAML/JSON file listing models with their rates and SLOs. Under goodput (the default with "
        "rates) the models share the GPUs: one short of its rate is printed UNMET, exit 0; under the other "
        "objectives every rate is a demand (exit 1). `plan MODEL` always exits 1 when its rate is unmet",
    )
    g.add_argument("--price", default=None, help="US$ per GPU-hour, e.g. H100=2.49,A100-80G=1.2")
    g.add_argument("--gpus-file", default=None, help="YAML/JSON file of custom GPU types (GPU.from_file)")
    g.add_argument(
        "--plan-file",
        default=None,
        help="write the deployment as a YAML plan file (plan MODEL: the whole-cluster one, or the "
        "disaggregated one --disagg picks; an error when none was planned)",
    )


def wants_fleet(args: argparse.Namespace, workload: Serving | None = None) -> bool:
    """--fleet, or a cluster of several pools, or a deployment-only objective, or cost at a rate
    (`_cost_at_a_rate`, decided on `workload`: the workload resolved from the flags over the workload
    file or preset; None only with --fleet or --train, which need none)."""
    if args.fleet:
        if args.model is not None:
            raise InputError("give either MODEL or --fleet FILE, not both")
        if args.train:
            raise InputError("--fleet plans serving; --train plans one training job")
        return True
    if args.train:
        return False
    if _cluster(args).is_mixed or _objective(args) in FLEET_OBJECTIVES:
        return True
    assert workload is not None, "plan MODEL decides cost at a rate on its resolved workload"
    return _cost_at_a_rate(args, workload)


def _objective(args: argparse.Namespace) -> str | None:
    """--objective by its canonical name (an alias resolved); None when not given."""
    from autoparallel.objectives import ALIASES

    return ALIASES.get(args.objective, args.objective) if args.objective is not None else None


def _cost_at_a_rate(args: argparse.Namespace, workload: Serving) -> bool:
    """`--objective cost` with a request rate asks for the $/hour that sustains the rate: the deployment
    planner's cost, which sizes the replicas to the rate, where the single-engine planner's replica
    count is the most the GPUs hold and its cost $ per million tokens at capacity (DeepSeek-V3 on
    64x8xH100 at 20 req/s: 512 GPUs there, 48 here). Not for a finite benchmark (`num_prompts`, with
    its `burstiness`) or with `--top`, which ask for one engine's replay or ranking: the single-engine
    plan answers them, the whole-cluster section beside it at $/hour. Decided on `workload`, the
    workload as resolved (the flags over the workload file or preset): a workload file carrying
    `num_prompts` went to the deployment planner (no replay, no note) where the same as flags got the
    replay. A file's burstiness without `num_prompts` asks for no replay (both planners take the mean
    rate, and say so: `unused_burstiness`)."""
    from autoparallel.api import cost_at_a_rate

    # one engine's benchmark replay or ranking (`num_prompts`, --top): its plan, the deployment beside it
    return args.objective == "cost" and cost_at_a_rate(workload, "cost", getattr(args, "top", None) or 1)


def deployment_reason(args: argparse.Namespace) -> str:
    """Why `plan` sends this request to the deployment planner (`wants_fleet`), for a refusal of what
    it lacks: the --fleet file, the mixed-pool cluster, or the objective only it plans."""
    if args.fleet:
        return "a --fleet file is planned by the deployment planner"
    if args.cluster is not None and _cluster(args).is_mixed:
        return f"a cluster of several GPU pools ({args.cluster}) is planned by the deployment planner"
    return f"--objective {args.objective} is planned by the deployment planner"


def unreplayed_prompts(workload: Serving, how: str) -> str | None:
    """The note that a workload file's finite benchmark (`num_prompts`, with its arrivals' burstiness)
    is not replayed where the deployment planner plans it: it plans the benchmark's steady state (an
    open loop at the rate, or the prompts sent at once: `DeploymentSpace.open_loop_prompts`,
    `burst_prompts`); `plan_cmd.unreplayed_note` names the preset or --num-prompts in the file's place
    when they gave the prompts. `how`: why the deployment planner plans it (`deployment_reason`).
    None: no finite benchmark."""
    if workload.num_prompts is None:
        return None
    shaped = f" (burstiness {workload.burstiness:g})" if workload.burstiness != 1.0 else ""
    return (
        f"the workload file's {workload.num_prompts} prompts{shaped} are planned as the deployment's steady "
        f"state, not replayed: {how}, which has no replay (plan one GPU pool at a single-engine objective "
        "to replay them)"
    )


def _gpus(args: argparse.Namespace) -> tuple[GPU, ...]:
    from autoparallel.hardware import GPU

    return GPU.from_file(args.gpus_file) if args.gpus_file is not None else ()


def _cluster(args: argparse.Namespace) -> Cluster:
    from autoparallel.hardware import Cluster, parse_prices

    if args.cluster is None:
        raise InputError("--cluster is required (a --fleet file's `cluster:` may give it instead)")
    gpus = _gpus(args)
    prices = parse_prices(args.price) if args.price is not None else None
    return Cluster.parse(args.cluster, gpus=gpus, prices=prices)


def cluster_of(args: argparse.Namespace) -> Cluster:
    """The cluster with --price and --gpus-file applied."""
    return _cluster(args)


def priced_cluster(args: argparse.Namespace) -> Cluster | str:
    """The cluster with --price and --gpus-file applied (the plain string when neither is given)."""
    if args.price is None and args.gpus_file is None and args.cluster is not None:
        return str(args.cluster)
    return _cluster(args)


def cmd_fleet(args: argparse.Namespace, workload: Serving | None) -> int:
    """Plan a fleet file, or one model on a mixed cluster; print text or JSON; exit 0.

    The exit rule for a rate (the --fleet help says it): one MODEL's rate is a demand, as `plan MODEL`
    on one pool holds it; a fleet file's models share the GPUs, and under goodput each is served what
    it can.

    Raises:
        InfeasibleError: one MODEL (no --fleet) whose rate the deployment does not carry, with the
            numbers (`rate_unmet`); no plan file is written.
    """
    from autoparallel.fleet import fleet_of_one, load_fleet, solve_fleet
    from autoparallel.models import load_model
    from autoparallel.objectives import DEPLOYMENT

    if args.objective is not None and deployment_objective(args.objective, False) is None:
        names = ", ".join(
            n.replace("_", "-") + (" (of one model)" if n == "tpot" else "") for n in DEPLOYMENT
        )
        raise InputError(
            f"--objective {args.objective} is for one engine on one GPU pool or a training job; a deployment "
            "(--fleet, a mixed-pool cluster) "
            f"optimizes {names}"
        )
    quant_notes: list[str] = []
    if args.fleet:
        spec = load_fleet(args.fleet)
        refuse_overwrite("--plan-file", args.plan_file, fleet_entry_inputs(spec))  # before solving
        for entry in spec.models:  # a hub fetch now, within --time-limit: the solvers get what it leaves
            load_model(entry.model)
        quant_notes = fleet_quantization_check(args, spec)
        has_rate = any(e.serving().request_rate is not None for e in spec.models)  # a workload file's too
        fleet: Any = spec
    else:
        if args.model is None:
            raise InputError("plan needs a MODEL (or --fleet FILE)")
        assert workload is not None
        has_rate = workload.request_rate is not None
        fleet = fleet_of_one(args.model, workload)
    # A fleet file may give the cluster and prices: --cluster wins, and --price per GPU name over its
    # `prices:` (solve_fleet merges them; a cluster priced here would be re-priced by the file's).
    plan = solve_fleet(
        fleet,
        args.cluster,
        objective=deployment_objective(args.objective, has_rate),
        prices=args.price,
        gpus=args.gpus_file if args.gpus_file is not None else (),
        settings=_settings(args),
        options=serving_options(args),
    )
    if not args.fleet:
        assert workload is not None
        m = plan.deployment.models[0]
        error = rate_unmet(m.model, plan.cluster, workload, m.unmet_rps, [aggregated_carries(plan)])
        if error is not None:
            raise error
    given = list(getattr(args, "workload_notes", None) or [])  # `plan_cmd.note_burstiness`, said already
    notes = [*quant_notes, *fleet_notes(spec), *unmet_notes(plan)] if args.fleet else []
    if args.json:
        payload = plan.to_dict()
        if notes or given:
            payload["notes"] = [*given, *notes]
        sys.stdout.write(strict_json(payload) + "\n")  # strict: an unbounded figure is null, with why
    else:
        sys.stdout.write(plan.explain().rstrip() + "\n")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.plan_file:
        write_plan_file(args.plan_file, plan.to_yaml())
    return 0


def slo_text(workload: Serving) -> str:
    """The workload's SLOs as `TTFT ≤ 2000 ms, TPOT ≤ 50 ms` (or that there are none)."""
    limits = [
        f"{name} ≤ {value:g} ms"
        for name, value in (("TTFT", workload.ttft_ms), ("TPOT", workload.tpot_ms))
        if value is not None
    ]
    return ", ".join(limits) or "no TTFT / TPOT limit"


def aggregated_carries(plan: FleetPlan) -> str:
    """What the aggregated deployment of one model carries, for `rate_unmet`: its engines, requests/s
    and GPUs."""
    from autoparallel.disagg import engines_layout

    d = plan.deployment
    engines = engines_layout(d.engines, gpus=True)
    m = d.models[0]
    return f"the best aggregated deployment ({engines}) carries {rps_text(m.capacity_rps)}/s on {m.gpus} GPUs"


def rate_unmet(
    model: str, cluster: Cluster, workload: Serving, unmet_rps: float, carried: list[str]
) -> InfeasibleError | None:
    """The error of `plan MODEL` when the deployment it would recommend falls `unmet_rps` short of the
    workload's request rate (the --fleet help's rule): the rate asked, what each deployment planned carries
    (`carried`, one phrase each, with its GPUs) and the shortfall; None when the rate is carried or
    there is none. It reads as the single-engine plan's (`request_rate: 500 requests/s arrive; the
    best plan ... completes 26.59/s`)."""
    rate = workload.request_rate
    if rate is None or unmet_rps <= 0:
        return None
    return InfeasibleError(
        f"no deployment of {model} on {cluster.spec} ({cluster.world_size} GPUs) carries {rate:g} req/s at "
        f"{slo_text(workload)}: request_rate",
        reasons=(
            f"request_rate: {rate:g} requests/s arrive; {'; '.join(carried)}; the one recommended leaves "
            f"{rps_text(unmet_rps, up=True)} req/s UNMET",
        ),
    )


def unmet_notes(plan: FleetPlan) -> list[str]:
    """One note per fleet model short of its rate (the --fleet help: under goodput a fleet is served what
    it can)."""
    return [
        f"{m.model}: UNMET {rps_text(m.unmet_rps, up=True)} of {m.request_rate:g} req/s (carried "
        f"{rps_text(m.capacity_rps)} on "
        f"{m.gpus} GPUs): goodput serves each model what the GPUs carry, up to its rate; --objective cost "
        "makes every rate a demand (exit 1 when one is not met)"
        for m in plan.deployment.models
        if m.request_rate is not None and m.unmet_rps > 0
    ]


def unused_burstiness(workload: Serving, how: str) -> str | None:
    """The note that a profiled workload's burstiness is not used: the steady state takes the mean
    rate, and only a finite benchmark's replay (--num-prompts) draws gamma-shaped arrivals
    (`Serving.burstiness`); `how`: what the user may do instead. None: Poisson, no rate, or a replay."""
    if workload.burstiness == 1.0 or workload.request_rate is None or workload.num_prompts is not None:
        return None
    return (
        f"the workload file's burstiness {workload.burstiness:g} (gamma shape of the arrival gaps; 1 = "
        f"Poisson) is not used by the steady state, which takes the mean rate {workload.request_rate:g} "
        f"req/s: {how}"
    )


NO_REPLAY = "a deployment has no replay (plan one pool with --num-prompts N to replay them)"
"""What to do about an unused burstiness where the command plans a deployment (`unused_burstiness`)."""


def fleet_notes(spec: Any) -> list[str]:
    """Notes on what a fleet file's entries give that the deployment planner does not use: a workload
    file's burstiness (`unused_burstiness`), or its finite benchmark, planned as a steady state and not
    replayed (`unreplayed_prompts`, as `plan MODEL --workload-file` says it). An entry whose workload
    is a preset (`workload: batch`, 1,000 prompts) has no workload file: the note names the preset, as
    `plan MODEL` does (`plan_cmd.unreplayed_note`, which reads the command line's flags, not an entry)."""
    out = []
    for entry in spec.models:
        workload = entry.serving()
        note = unused_burstiness(workload, f"plan {entry.model} alone: {NO_REPLAY}") or unreplayed_prompts(
            workload, "a fleet is planned by the deployment planner"
        )
        if note is not None and entry.workload_file is None and note.startswith(_FILE_WORKLOADS):
            note = f"the {entry.workload or workload.name} preset's " + note.removeprefix(_FILE_WORKLOADS)
        if note is not None:
            out.append(f"{entry.model}: {note}")
    return out


_FILE_WORKLOADS = "the workload file's "
"""How `unreplayed_prompts` and `unused_burstiness` begin: `fleet_notes` names a preset in its place."""


def engines_of(choice: str | None) -> tuple[str, ...]:
    """The engines an --engine value puts in the space."""
    if choice in (None, "vllm"):
        return ("vllm",)
    return ("vllm", "sglang", "trtllm") if choice == "auto" else (str(choice),)


def _split(text: str, flag: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise InputError(f"{flag} needs at least one value, got {text!r}")
    return values


def vllm_memory_knob(engines: tuple[str, ...], given: bool) -> None:
    """`--gpu-memory-utilization` is vLLM's knob: refused when no vLLM engine is planned (it would be
    silently ignored; `solvers.serving.space.foreign_memory_knob`, as the API refuses it), and said
    to apply to vLLM only when other engines are compared beside it."""
    if not given:
        return
    from autoparallel.perf.engine_support import ENGINE_NAMES
    from autoparallel.solvers.serving.space import foreign_memory_knob, own_memory_knobs

    if (problem := foreign_memory_knob(engines, "--gpu-memory-utilization")) is not None:
        raise InputError(problem)
    others = [e for e in engines if e != "vllm"]
    names = " and ".join(ENGINE_NAMES[e] for e in others)
    knobs = own_memory_knobs(others)
    if others:
        print(
            f"note: --gpu-memory-utilization sizes vLLM's pool only; {names} are planned at their own "
            f"memory rules ({knobs}, at their defaults)",
            file=sys.stderr,
        )


def serving_options(args: argparse.Namespace) -> Any:
    """ServingOptions widened by the user's `--kv-cache-dtype / --quantization / --gpu-memory-utilization`,
    with the engines of `--engine` (None: the planner's defaults). The one reading of these flags: the
    single-engine plan, the whole-cluster deployment and the fleet all plan in the same space."""
    engines = engines_of(getattr(args, "engine", None))
    if (
        getattr(args, "kv_cache_dtype", None) is None
        and getattr(args, "quantization", None) is None
        and getattr(args, "gpu_memory_utilization", None) is None
        and engines == ("vllm",)
    ):
        return None
    from autoparallel.solvers.serving.space import ServingOptions

    update: dict[str, Any] = {"engines": engines}
    if getattr(args, "kv_cache_dtype", None) is not None:
        update["kv_cache_dtypes"] = tuple(_split(args.kv_cache_dtype, "--kv-cache-dtype"))
    if getattr(args, "quantization", None) is not None:
        quants = _split(args.quantization, "--quantization")
        update["quantizations"] = tuple(quantization_value(q) for q in quants)
        if len(quants) > 1 and getattr(args, "model", None) and not getattr(args, "fleet", None):
            for quant in dict.fromkeys(update["quantizations"]):
                if (why := _quantization_refusal(args, args.model, quant, update)) is not None:
                    raise InputError(f"--quantization {args.quantization}: {why}")
    if getattr(args, "gpu_memory_utilization", None) is not None:
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


def _quantization_refusal(
    args: argparse.Namespace, model_id: str, quant: str | None, update: dict[str, Any]
) -> str | None:
    """Why the --quantization value `quant` of a list cannot apply to `model_id` on any pool of the
    cluster with any engine planned (None: it can). Alone, such a value is refused (exit 2: the serving
    space's "nothing allowed runs", `runtime_domain`); in a list the space dropped it silently and
    planned the others (`--quantization fp8,awq` on an unquantized checkpoint planned fp8, `awq`
    unsaid), so `serving_options` refuses the list for it as the value alone is, with its one-line
    reason (a fleet: `fleet_quantization_check`). A value one engine or pool cannot run but another
    can stays a choice of the planner. `update`: the options read so far (engines, KV-cache dtypes)."""
    engines = tuple(update["engines"])
    kv = tuple(update.get("kv_cache_dtypes") or ("auto",))
    cluster = getattr(args, "cluster", None)
    return _refusal(model_id, cluster, getattr(args, "gpus_file", None), quant, engines, kv)


@functools.lru_cache(maxsize=32)
def _refusal(
    model_id: str,
    cluster_text: str | None,
    gpus_file: str | None,
    quant: str | None,
    engines: tuple[str, ...],
    kv_cache_dtypes: tuple[str, ...],
) -> str | None:
    """`_quantization_refusal`'s answer, cached (`plan` reads its options for each section). None where
    the model or the cluster cannot be read: the command itself then says why."""
    from autoparallel.hardware import GPU, Cluster
    from autoparallel.models import load_model
    from autoparallel.solvers.serving.space import ServingOptions, runtime_domain, runtime_refusal

    if cluster_text is None:
        return None
    try:
        model = load_model(model_id)
        cluster = Cluster.parse(cluster_text, gpus=GPU.from_file(gpus_file) if gpus_file else ())
    except (AutoParallelError, OSError, ValueError, TypeError):
        return None
    options = ServingOptions(engines=engines, kv_cache_dtypes=kv_cache_dtypes, quantizations=(quant,))
    reasons: list[str] = []
    for pool in cluster.pools:
        try:
            if runtime_domain(model, options, pool.gpu, refusable=True):
                return None
            reasons.append(runtime_refusal(model, options, pool.gpu))
        except InputError as exc:  # the value contradicts the checkpoint's own format
            reasons.append(str(exc))
    name = "none" if quant is None else quant
    why = "; ".join(dict.fromkeys(reasons))
    return f"{name!r} cannot apply to {model_id} (--quantization {name} alone is refused): {why}"


def fleet_quantization_check(args: argparse.Namespace, spec: Any) -> list[str]:
    """A --quantization list on a fleet file (`_refusal` for each entry's model): a value
    that applies to none of its models is refused (exit 2), as the value alone is; one that applies
    to some gets a note for each model that cannot take it (planned without it, as a mixed fleet of
    quantized and unquantized checkpoints may ask).

    Raises:
        InputError: a value no model of the fleet can take."""
    text = getattr(args, "quantization", None)
    if text is None:
        return []
    quants = tuple(dict.fromkeys(quantization_value(q) for q in _split(text, "--quantization")))
    if len(quants) < 2:
        return []  # alone, the space refuses it with its reason
    engines = engines_of(getattr(args, "engine", None))
    kv = getattr(args, "kv_cache_dtype", None)
    kv_dtypes = tuple(_split(kv, "--kv-cache-dtype")) if kv is not None else ("auto",)
    cluster = args.cluster if args.cluster is not None else spec.cluster
    gpus_file = getattr(args, "gpus_file", None)
    notes: list[str] = []
    for quant in quants:
        refusals = [
            (e.model, _refusal(e.model, cluster, gpus_file, quant, engines, kv_dtypes)) for e in spec.models
        ]
        refused = [(m, why) for m, why in refusals if why is not None]
        if len(refused) == len(refusals):
            raise InputError(f"--quantization {text}: {refused[0][1]}")
        name = "none" if quant is None else quant
        notes += [f"--quantization {text}: {why} (planned there without {name})" for _, why in refused]
    return list(dict.fromkeys(notes))


def _settings(args: argparse.Namespace) -> Any:
    from autoparallel import api

    return api.SolverSettings.create(time_limit_s=time_limit(args), workers=args.workers, seed=args.seed)


def time_limit(args: argparse.Namespace) -> float | None:
    """`plan`'s --time-limit, or (not given) the solver's default for each serving engine the command
    plans: --engine auto builds, solves and explains three engines' tables in one limit (Llama-3.1-70B
    on 2x8xH100 at 8 req/s and TPOT 20 ms: the single-engine section's explanation for three engines
    spent the default 10 s before the disaggregated deployment that serves the rate was tried, exit
    1). None: the default (training, one engine). A given limit is what is left of it since `cmd_plan`
    began (`started_s`: a hub fetch of the model spent the rest)."""
    from autoparallel.bounds import BOUNDS
    from autoparallel.solvers.settings import SolverSettings

    if args.time_limit is not None:
        started = getattr(args, "started_s", None)
        spent = 0.0 if started is None else time.perf_counter() - started
        return max(args.time_limit - spent, BOUNDS["time_limit_s"].lo)
    if getattr(args, "train", False):
        return None
    engines = len(engines_of(getattr(args, "engine", None)))
    return None if engines == 1 else engines * SolverSettings.model_fields["time_limit_s"].default


def whole_cluster(
    args: argparse.Namespace, workload: Serving, model_id: str, settings: SolverSettings | None
) -> tuple[FleetPlan | None, AutoParallelError | None]:
    """The deployment of one model on the whole cluster (several replicas / EP engines) within
    `settings`' limit (what the command's limit leaves; None: nothing left), or None with why: no
    deployment exists (the single-engine plan above then says why), or none is found within the time
    limit (said on stderr: the plan above stands)."""
    from autoparallel.fleet import fleet_of_one, solve_fleet

    if settings is None:
        print(f"note: no whole-cluster deployment section: {SPENT}", file=sys.stderr)
        return None, SolverTimeoutError(SPENT)
    try:
        plan = solve_fleet(
            fleet_of_one(model_id or args.model, workload),
            _cluster(args),
            objective=deployment_objective(args.objective, workload.request_rate is not None),
            settings=settings,
            options=serving_options(args),
        )
    except InfeasibleError as exc:
        return None, exc
    except SolverTimeoutError as exc:
        print(f"note: no whole-cluster deployment section: {exc}", file=sys.stderr)
        return None, exc
    return plan, None


def versus_single(whole: FleetPlan, single: Any) -> str:
    """One line setting the whole-cluster deployment beside the single-engine plan printed above it
    (the deployment may split the GPUs into several engines the single-engine plan cannot hold)."""
    d, p = whole.deployment, single.perf
    mine, theirs = d.throughput_tokens_per_s, p.output_tokens_per_s
    change = f" ({100 * (mine / theirs - 1):+.1f}%)" if theirs > 0 else ""
    # at an arrival rate with a TTFT limit the deployment rates its engines by their wait for a free
    # slot (`deployment.space.rated_milli_tps`); the single-engine figure is the full load
    rated = " (the deployment's at the rate its TTFT limit holds to, the plan's at full load)"
    slot = single.workload.slot_rated
    # an open loop's slot wait: the plan's replicas share one server's queue (vLLM's data-parallel
    # front end, `perf.rate_slot_wait_s`), the deployment's engines each queue their share apart, so
    # near capacity its TTFT is the larger (Llama-3.1-8B on 1x8xH100 at 158 req/s: 1,891 vs 246 ms)
    replicas = single.config.replicas
    waits = single.perf.slot_wait_ms > 0 or any(e.queue_ms > 0 for e in d.engines)
    apart = (
        f"; TTFT: the deployment's engines each queue their share of the rate apart, the plan's {replicas} "
        "replicas share one server's queue"
        if waits
        and replicas > 1
        and sum(e.replicas for e in d.engines) > 1
        and single.workload.request_rate is not None
        and single.workload.concurrency is None
        else ""
    )
    return (
        f"vs the single-engine plan above: {mine:,.0f} vs {theirs:,.0f} output tokens/s at capacity"
        f"{change}, on {d.gpus_used} vs {single.config.gpus} GPUs{rated if slot else ''}{apart}"
    )


def plan_file_inputs(args: argparse.Namespace) -> list[Input]:
    """The files `plan` reads from its command line (the --fleet file, --workload-file, --gpus-file and
    a MODEL path's config), which --plan-file must not name (`refuse_overwrite`); a fleet file's own
    entries are `fleet_entry_inputs`."""
    return [
        ("the --fleet file", getattr(args, "fleet", None)),
        ("the --workload-file", getattr(args, "workload_file", None)),
        ("the --gpus-file", getattr(args, "gpus_file", None)),
        *model_inputs(getattr(args, "model", None)),
    ]


def fleet_entry_inputs(spec: Any) -> list[Input]:
    """The files a fleet file's entries read: their workload files (already resolved from the fleet
    file's folder by `load_fleet`) and their models' configs where a model is a local path."""
    out: list[Input] = []
    for e in spec.models:
        out.append((f"the workload_file of fleet entry {e.model!r}", e.workload_file))
        out += model_inputs(e.model, f"fleet entry {e.model!r}'s")
    return out


def write_plan_file(path: str, text: str) -> None:
    """Write the YAML plan file (`FleetPlan.to_yaml`, `Comparison.to_yaml`)."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError.cannot_write("plan file", path, exc) from None
