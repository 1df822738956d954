"""Deployment fronts mixing aggregated and disaggregated points: CP-SAT front == brute-force front.

Instances: Llama-3.1-8B on 4 H100s (one node), a long prompt (prefill interference raises the
aggregated TPOT, so a disaggregated point reaches the front) and a short one (aggregated only); the
oracle walks every replica-count vector of the UNPRUNED candidates of both modes (mixed_oracle.py,
which imports the space only), the front comes from the pruned CP-SAT model.
"""

from __future__ import annotations

import functools

import pytest

from autoparallel.errors import InfeasibleError, InputError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.deployment.front import UNITS, MixedFront, pareto_mixed
from autoparallel.solvers.deployment.mixed import build_mixed_space
from autoparallel.solvers.deployment.mixed_oracle import brute_force_front
from autoparallel.solvers.deployment.space import FleetModel
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.workload import Serving

CLUSTER = Cluster.parse("1x4xH100")
CASES = {
    # id: (max_num_seqs, isl, osl, ttft_ms, tpot_ms, request_rate, mode, objectives, both modes on the front)
    "long-prompt": ((2, 8, 32), 8192, 128, 2000, None, None, "auto", ("throughput", "tpot"), True),
    "long-prompt-b64": ((4, 16, 64), 8192, 128, 2000, None, None, "auto", ("throughput", "tpot"), True),
    "gpus-3d": ((4, 16, 64), 8192, 128, 2000, None, None, "auto", ("tpot", "gpus", "throughput"), True),
    "short-prompt": ((2, 8, 32), 4096, 256, 1500, None, None, "auto", ("throughput", "tpot"), None),
    "tpot-limit-rate": ((2, 8, 32), 8192, 128, 2000, 12.0, 5.0, "auto", ("throughput", "cost"), None),
    "on": ((2, 8, 32), 8192, 128, 2000, None, None, "on", ("throughput", "tpot"), False),
    "off": ((2, 8, 32), 8192, 128, 2000, None, None, "off", ("throughput", "tpot"), False),
}


@functools.cache
def model() -> object:
    return load_model("meta-llama/Llama-3.1-8B")


def instance(case: str) -> tuple[FleetModel, ServingOptions, str, tuple[str, ...], bool | None]:
    mns, isl, osl, ttft, tpot, rate, mode, names, both = CASES[case]
    w = Serving(isl=isl, osl=osl, ttft_ms=ttft, tpot_ms=tpot, request_rate=rate)
    return FleetModel(model(), w), ServingOptions(max_num_seqs=mns, enforce_eager=(False,)), mode, names, both  # type: ignore[arg-type]


@functools.cache
def front_of(case: str) -> MixedFront:
    fm, opts, mode, names, _ = instance(case)
    return pareto_mixed(fm, CLUSTER, objectives=names, mode=mode, options=opts)


@pytest.mark.parametrize("case", list(CASES))
def test_front_equals_brute_force(case: str) -> None:
    fm, opts, mode, names, both = instance(case)
    front = front_of(case)
    oracle = brute_force_front(build_mixed_space(fm, CLUSTER, opts, mode=mode, prune=False), names)
    assert front.complete
    assert set(front.vectors) == oracle
    modes = {p.mode for p in front}
    if both is True:
        assert modes == {"aggregated", "disaggregated"}
    elif both is False:
        assert len(modes) == 1
    if mode == "on":
        assert modes == {"disaggregated"}
    if mode == "off":
        assert modes == {"aggregated"}


@pytest.mark.parametrize("case", ["long-prompt", "gpus-3d", "tpot-limit-rate"])
def test_points_agree_with_the_float_model(case: str) -> None:
    fm, *_ = instance(case)
    w = fm.workload
    for p in front_of(case):
        for name, solver in zip(front_of(case).objectives, p.vector, strict=True):
            assert solver == pytest.approx(p.value(name) * UNITS[name], rel=2e-3, abs=1.0), (name, p.label)
        if w.tpot_ms is not None:
            assert p.tpot_ms <= w.tpot_ms
        assert p.ttft_ms <= w.ttft_ms  # type: ignore[operator]
        if w.request_rate is not None:
            assert p.throughput_tokens_per_s >= w.request_rate * w.osl * (1 - 1e-9)
        if p.mode == "disaggregated":
            d = p.disaggregated
            assert d is not None and d.prefill and d.decode and p.ratio.endswith("D")
            assert p.tpot_ms == pytest.approx(max(e.decode_step_ms for e in d.decode))
        else:
            assert p.aggregated is not None and p.ratio == ""


def test_disaggregation_on_one_gpu_is_infeasible_with_numbers() -> None:
    fm = FleetModel(model(), Serving(isl=2048, osl=256, tpot_ms=50))  # type: ignore[arg-type]
    one = Cluster.parse("1xH100")
    opts = ServingOptions(max_num_seqs=(8, 32), enforce_eager=(False,))
    with pytest.raises(InfeasibleError, match="the smallest takes 1 GPUs, the cluster has 1"):
        pareto_mixed(fm, one, mode="on", options=opts)
    front = pareto_mixed(fm, one, mode="auto", options=opts)
    assert {p.mode for p in front} == {"aggregated"} and "cluster has 1" in front.note


def test_ttft_is_a_limit_not_an_objective() -> None:
    fm, opts, *_ = instance("long-prompt")
    with pytest.raises(InputError, match="ttft is a limit"):
        pareto_mixed(fm, CLUSTER, objectives=("throughput", "ttft"), options=opts)
