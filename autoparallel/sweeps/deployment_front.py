"""A front over deployments that may be aggregated or disaggregated, as a table and a plot.

The same knee, weighted choice, table and plot as `front.Front`; a point is a
`solvers.deployment.front.DeploymentPoint` (float-model figures), plotted as a circle (aggregated) or
a square (disaggregated), and its row says its mode, P:D ratio and engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autoparallel.solvers.deployment.front import DeploymentPoint
from autoparallel.sweeps.front import BaseFront

DEPLOYMENT_METRICS: dict[str, tuple[str, bool]] = {
    "throughput": ("throughput (tok/s)", True),
    "tpot": ("TPOT (ms)", False),
    "cost": ("$ / hour of the GPUs used", False),
    "gpus": ("GPUs used", False),
}
"""Deployment front objective -> (axis title, maximized)."""


def _side(engines: Any) -> str:
    return " + ".join(
        f"{e.replicas}x tp{e.tp}"
        + (f"pp{e.pp}" if e.pp > 1 else "")
        + (f"ep{e.ep}" if e.ep > 1 else "")
        + (f" b{e.max_num_seqs}" if e.role != "prefill" else "")
        for e in engines
    )


@dataclass
class DeploymentFront(BaseFront[DeploymentPoint]):
    """Deployments on a Pareto front; `mode` is the --disagg asked for, `note` why a mode is absent."""

    mode: str = "auto"
    note: str = ""
    candidates: int = 0
    """Candidate engines of the CP-SAT model (both modes)."""

    def metric(self, point: DeploymentPoint, name: str) -> float:
        return point.value(name)

    def titles(self) -> dict[str, tuple[str, bool]]:
        return DEPLOYMENT_METRICS

    def label(self, point: DeploymentPoint) -> str:
        return point.label

    def group(self, point: DeploymentPoint) -> str:
        return point.mode

    def columns(self, point: DeploymentPoint) -> dict[str, Any]:
        d = point.disaggregated
        return {
            "mode": point.mode,
            "pd_ratio": point.ratio,
            "prefill_engines": _side(d.prefill) if d is not None else "",
            "decode_engines": _side(d.decode) if d is not None else "",
            "gpus": point.gpus_used,
            "throughput_tok_s": point.throughput_tokens_per_s,
            "throughput_tok_s_per_gpu": point.tokens_per_s_per_gpu,
            "ttft_ms": point.ttft_ms,
            "tpot_ms": point.tpot_ms,
            "usd_per_hour": point.usd_per_hour,
            "usd_per_million_tokens": point.usd_per_million_tokens,
            "solver_status": point.status,
        }

    @property
    def disaggregated(self) -> list[int]:
        """Indices of the disaggregated points."""
        return [i for i, p in enumerate(self.plans) if p.mode == "disaggregated"]
