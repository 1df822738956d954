"""`plan MODEL --cluster ... --disagg auto|on|off`: the aggregated vs disaggregated comparison section
(adapter of `autoparallel.disagg`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from autoparallel.errors import InfeasibleError, SolverTimeoutError

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
        help="prefill/decode disaggregation: compare with aggregated serving (auto, the default: when "
        "the cluster holds two engines), require it (on) or skip it (off)",
    )


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
        InfeasibleError: --disagg on and no disaggregated deployment exists (with numbers).
    """
    from autoparallel import disagg
    from autoparallel.cli import fleet_cmd

    if args.disagg == "off":
        return None
    if settings is None:
        print(f"note: no disaggregation comparison: {fleet_cmd.SPENT}", file=sys.stderr)
        return None
    try:
        return disagg.compare_disagg(
            model_id or args.model,
            workload,
            fleet_cmd.cluster_of(args),
            mode=args.disagg or "auto",
            objective=fleet_cmd.fleet_objective(args.objective, workload.request_rate is not None),
            settings=settings,
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
    """deployment.mode / prefill[] / decode[] into the plan's deployment section; comparison beside it."""
    d = comp.to_dict()
    payload.setdefault("deployment", {}).update(d["deployment"])
    payload["comparison"] = d["comparison"]
