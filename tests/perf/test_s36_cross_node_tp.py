"""A tensor-parallel group over whole nodes is a layout the engines run (vLLM over Ray, SGLang
--nnodes, TensorRT-LLM one MPI world): `evaluate` prices it instead of refusing it (exit 1)."""

import autoparallel as ap


def test_tp16_over_two_nodes_fits_and_is_priced() -> None:
    r = ap.evaluate(
        "meta-llama/Llama-3.1-70B",
        "2x8xH100",
        ap.ServingConfig(tp=16, replicas=1),
        ap.Serving(isl=1024, osl=256),
    )
    assert r.fits, r.problems
    assert not any("node" in p for p in r.problems)


def test_tp12_over_nodes_of_8_is_still_named() -> None:
    from autoparallel.configs import ServingConfig
    from autoparallel.hardware import Cluster
    from autoparallel.perf.serving import deployment_problems
    from autoparallel.workload import Serving

    problems = deployment_problems(Cluster.parse("2x8xH100"), ServingConfig(tp=12), Serving(isl=128, osl=128))
    assert any("whole nodes" in p for p in problems)


def test_the_launch_note_says_the_tp_group_crosses_nodes() -> None:
    from autoparallel.configs import ServingConfig
    from autoparallel.frameworks.vllm import vllm_launch
    from autoparallel.hardware import Cluster

    cluster = Cluster.parse("2x8xH100")
    across = " ".join(vllm_launch("m", ServingConfig(tp=16), cluster=cluster).notes)
    inside = " ".join(vllm_launch("m", ServingConfig(tp=8, pp=2), cluster=cluster).notes)
    assert "tensor-parallel group of 16 spans 2 nodes" in across
    assert "tensor-parallel groups stay inside a node" in inside
