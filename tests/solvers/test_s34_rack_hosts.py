"""A rack-scale node launches on hosts (GB200 NVL72: 18 of 4 GPUs): the planner offers only process
groups of whole hosts or within one. Llama-3.1-70B on 1x72xGB200 was planned as 8 x tp1 pp9, which
the vLLM launch then refused ("one data-parallel rank over 9 GPUs on nodes of 4", exit 2)."""

from __future__ import annotations

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.serving.space import ServingOptions, shape_domain


def test_gb200_shapes_fill_whole_hosts() -> None:
    model = load_model("meta-llama/Llama-3.1-70B")
    shapes = shape_domain(model, Cluster.parse("1x72xGB200"), ServingOptions(), 72)
    widths = {s.engine_width for s in shapes} | {s.tp for s in shapes}
    assert widths and all(w % 4 == 0 or 4 % w == 0 for w in widths)
    h100 = shape_domain(model, Cluster.parse("1x8xH100"), ServingOptions(), 8)
    assert {s.tp for s in h100} == {1, 2, 4, 8}
