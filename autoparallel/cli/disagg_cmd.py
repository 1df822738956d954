"""`plan MODEL --cluster ... --disagg auto|on|off`: the aggregated vs disaggregated comparison section
(adapter of `autoparallel.disagg`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from autoparallel.errors import InfeasibleError, SolverTimeoutError
from autoparallel.objectives import deployment_objective
from autoparallel.workload import rps_text

if TYPE_CHECKING:
    from autoparallel.disagg import Comparison
    from autoparallel.fleet import FleetPlan
    from autoparallel.solvers.settings import SolverSettings
    from autoparallel.workload import Serving


def add_disagg_arguments(p: argparse.ArgumentParser) -> None:
    """--disagg."""
    p.add_argument(
        "--disagg",
        choices=("auto", "on", "off"),
        default=None,
        help="prefill/decode disaggregation (vLLM engines: under --engine vllm or auto): compare with "
        "aggregated serving (auto, the default: when the cluster holds two engines), require it (on) or "
        "skip it (off)",
    )


def with_vllm(args: argparse.Namespace) -> bool:
    """vLLM is among the serving engines planned (--engine vllm, the default, or auto): the only engine
    prefill/decode disaggregation plans (NIXL KV transfer), so the comparison runs."""
    return getattr(args, "engine", None) in (None, "vllm", "auto")


def comparison(
    args: argparse.Namespace,
    workload: Serving,
    model_id: str,
    whole: FleetPlan | None,
    settings: SolverSettings | None,
) -> Comparison | None:
    """The comparison for a single-model serving plan within `settings`' limit (what the command's
    limit leaves; None: nothing left, said on stderr); None with --disagg off.

    Raises:
        InfeasibleError: --disagg on and no disaggregated deployment exists, or none carries the
            request rate (with numbers).
    """
    from autoparallel import disagg
    from autoparallel.cli import fleet_cmd

    if args.disagg == "off":
        return None
    if settings is None:
        print(f"note: no disaggregation comparison: {fleet_cmd.SPENT}", file=sys.stderr)
        return None
    model_id = model_id or served_id(args.model)
    try:
        comp = disagg.compare_disagg(
            model_id,
            workload,
            fleet_cmd.cluster_of(args),
            mode=args.disagg or "auto",
            objective=deployment_objective(args.objective, workload.request_rate is not None),
            settings=settings,
            options=fleet_cmd.serving_options(args),
            aggregated=whole,
        )
    except InfeasibleError:
        if args.disagg == "on":
            raise
        return None
    except SolverTimeoutError as exc:
        if args.disagg == "on":
            raise
        print(f"note: no disaggregation comparison: {exc}", file=sys.stderr)
        return None
    if args.disagg == "on" and comp.unmet_rps > 0:  # a rate is a demand, as the plan's own
        from autoparallel.solvers.deployment.disagg_plan import bound_words

        d = comp.disaggregated
        raise InfeasibleError(
            f"--disagg on: no disaggregated deployment of {model_id} carries "
            f"{workload.request_rate:g} req/s at the SLOs; the best ({d.ratio}, "
            f"{rps_text(d.capacity_rps)} req/s, bound by {bound_words(d, workload.in_flight)}) falls "
            f"{rps_text(comp.unmet_rps, up=True)} req/s short"
        )
    return comp


def served_id(model: str) -> str:
    """The id the engines serve `model` by: the single-engine plan's (`api.served_id`: the zoo id or
    alias the user named in its published spelling, a local folder as given), so that the prefill and
    decode lines start what the plan's own line starts.

    Raises:
        InputError: a model id or path that does not load.
    """
    from autoparallel import api
    from autoparallel.models import load_model

    return api.served_id(model, load_model(model))


def required(args: argparse.Namespace, workload: Any, settings: SolverSettings) -> Comparison | None:
    """With --disagg on (serving): the comparison, solved before the single-engine plan so that an
    impossible disaggregation is reported with its own numbers; None otherwise.

    Raises:
        InfeasibleError: no disaggregated deployment exists.
    """
    if args.train or args.disagg != "on":
        return None
    return comparison(args, workload, "", None, settings)


def merge_json(payload: dict[str, Any], comp: Comparison) -> None:
    """The recommended deployment (`Comparison.to_dict`: its mode, engines and figures only) as the
    plan's deployment section; the comparison beside it."""
    payload.update(comp.to_dict())
