"""The mixed aggregated/disaggregated space keeps decode engines to what vLLM's NIXL connector runs.

`perf.engine_support.nixl_role_problem`: a decode (kv_consumer) engine with pipeline stages is refused
(`NixlBaseConnectorWorker.__init__`, nixl/base_worker.py); roles are vLLM engines (NIXL KV transfer).
`roles.decode_engines` applies both rules; mixed.py `_decode` must too.
"""

from __future__ import annotations

import functools

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.perf.engine_support import nixl_role_problem
from autoparallel.solvers.deployment.mixed import MixedSpace, build_mixed_space
from autoparallel.solvers.deployment.space import FleetModel
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.workload import Serving

CLUSTER = Cluster.parse("2x4xH100")


@functools.cache
def unpruned(engines: tuple[str, ...]) -> MixedSpace:
    fm = FleetModel(load_model("meta-llama/Llama-3.1-8B"), Serving(isl=2048, osl=128, ttft_ms=4000))
    opts = ServingOptions(max_num_seqs=(4, 16), enforce_eager=(False,), engines=engines)
    return build_mixed_space(fm, CLUSTER, opts, mode="on", prune=False)


def test_mixed_decode_engines_have_no_pipeline_stages() -> None:
    space = unpruned(("vllm",))
    decode = [e for e in space.roles.space.engines if e.role == "decode"]
    assert decode, "the instance must hold decode engines"
    assert all(e.pp == 1 for e in decode), sorted({e.label for e in decode if e.pp > 1})
    model = space.fleet_model.model
    assert all(nixl_role_problem(model, e.pp, "decode") is None for e in decode)
    # the aggregated shapes with pipeline stages exist in the tables: the rule, not the search, drops them
    serving = space.aggregated.serving[0, 0]
    assert any(shape.pp > 1 for shape in serving.shapes)


def test_mixed_roles_are_vllm_engines() -> None:
    space = unpruned(("vllm", "sglang"))
    roles = space.roles.space.engines
    assert roles
    assert {e.engine for e in roles} == {"vllm"}, sorted({e.label for e in roles})
