"""A finite benchmark sent at a rate holds no request out; idle GPUs a model cannot use say why.

`plan Qwen/Qwen3-8B --cluster 1x1xH100 --workload sharegpt --request-rate 4` deployed max_num_seqs 6
(4.03 req/s for a 4 req/s demand, ρ ≈ 1: a replay waited 2.4 s for its first token) where the
single-engine plan takes 512: the 1,000 prompts were taken for a concurrency cap, so every smaller
batch was a candidate and goodput tied. A pool where the model short of its rate has no engine was
said to be left idle by "the plan CP-SAT returned".
"""

from __future__ import annotations

import dataclasses

from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.deployment import FleetModel, build_deployment_space, solve_deployment
from autoparallel.solvers.deployment.encoder import build
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.workload import Serving


def test_prompts_sent_at_a_rate_get_the_batch_of_most_tokens_per_s() -> None:
    w = Serving.preset("sharegpt").model_copy(update={"request_rate": 4})
    fm = FleetModel(load_model("Qwen/Qwen3-8B"), w)
    d = solve_deployment([fm], Cluster.parse("1x1xH100"))
    (engine,) = d.engines
    # 512 before the KV-bound batch was offered (48.44 req/s); now the 802 its cache holds (48.46)
    assert engine.max_num_seqs >= 512 and engine.capacity_rps > 40
    assert fm.open_loop_prompts == 1000 and fm.held_cap is None


def test_an_open_loop_posts_no_cap_and_keeps_its_batches_within_its_prompts() -> None:
    options = ServingOptions(max_num_seqs=(8, 64, 256))
    fm = FleetModel(load_model("Qwen/Qwen3-8B"), Serving(isl=512, osl=128, request_rate=2, num_prompts=100))
    space = build_deployment_space([fm], Cluster.parse("1x2xH100"), options)
    assert space.engines and all(e.in_flight <= 100 for e in space.engines)
    assert len({e.shape for e in space.engines}) == len(space.engines)  # one candidate per shape
    names = [c.name for c in build(space, hard_demand=True).model.proto.constraints]
    assert not any(n.startswith("concurrency[") for n in names)
    # a closed loop (a concurrency) and a burst (prompts, no rate) keep their caps
    for update in ({"concurrency": 100}, {"request_rate": None}):
        capped = dataclasses.replace(fm, workload=fm.workload.model_copy(update=update))
        assert capped.open_loop_prompts is None and capped.held_cap == 100
        space = build_deployment_space([capped], Cluster.parse("1x2xH100"), options)
        names = [c.name for c in build(space, hard_demand=True).model.proto.constraints]
        assert any(n.startswith("concurrency[") for n in names)


def test_a_pool_the_model_short_of_its_rate_cannot_start_on_says_why() -> None:
    big = FleetModel(
        load_model("meta-llama/Llama-3.1-70B"), Serving(isl=1024, osl=256, tpot_ms=50, request_rate=100)
    )
    small = FleetModel(
        load_model("meta-llama/Llama-3.2-1B"), Serving(isl=1024, osl=256, tpot_ms=50, request_rate=1)
    )
    d = solve_deployment(
        [big, small], Cluster.parse("1x8xH100+1x2xL4"), options=ServingOptions(max_num_seqs=(64, 256))
    )
    (reason,) = [r for r in d.idle_reasons if r.startswith("pool 1")]
    assert "the plan CP-SAT returned" not in reason
    assert (
        "meta-llama/Llama-3.1-70B (short of its rate) has no engine on L4: no engine fits in memory" in reason
    )
    assert reason.endswith("the other models' rates are met")
