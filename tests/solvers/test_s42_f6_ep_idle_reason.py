"""An expert-parallel plan that leaves GPUs idle says why (`decoder.gpus_binding`, `ep_idle_reason`):
the single-engine planner runs ONE EP engine (its data ranks are part of the shape) and the
whole-cluster deployment planner may place more; no wider EP engine is valid (the rule that excluded
it, with numbers), or the space holds wider ones and the solver found none better. Before, the line
was a bare "gpus: 16 of 24 GPUs used" (DeepSeek-V3 on 3x8xH100, 8 of 64 and 32 of 64 under ttft)."""

from __future__ import annotations

import autoparallel as ap
from autoparallel.hardware import Cluster
from autoparallel.solvers.serving.decoder import wider_ep_rule
from autoparallel.solvers.serving.space import ServingOptions, build_space

ONE_STAGE = ServingOptions(pp_values=(1,))  # no pipeline: a model too big for a node is EP-only
LIMITS = ap.Serving(isl=2048, osl=512, ttft_ms=5000, tpot_ms=100)


def _gpus_line(plan: ap.ServingPlan) -> str:
    (line,) = [b for b in plan.binding if b.startswith("gpus:")]
    return line


def test_next_ep_width_that_divides_the_experts_exceeds_the_cluster() -> None:
    """Qwen3-30B-A3B (128 experts) on 12 T4s: one engine of tp=4 x 2 data ranks (ep=8); 12 ranks do
    not divide 128 and the next count that does, 16, needs 16 GPUs."""
    plan = ap.solve("Qwen/Qwen3-30B-A3B", "3x4xT4", options=ONE_STAGE)
    c = plan.config
    assert (c.tp, c.pp, c.replicas, c.enable_expert_parallel) == (4, 1, 2, True)
    line = _gpus_line(plan)
    assert line.startswith(
        "gpus: 8 of 12 GPUs used: the single-engine planner runs one expert-parallel engine "
    )
    assert "(tp=4 x 2 data ranks, ep=8)" in line
    assert "whole-cluster deployment planner" in line and "solve_fleet" in line
    assert "may place more on the other 4" in line
    assert line.endswith(
        "no wider EP engine exists: EP ranks must divide the 128 experts, and the next count that does, "
        "16, needs 16 GPUs of the 12"
    )


def test_no_ep_width_above_the_experts() -> None:
    """Mixtral-8x7B has 8 experts: its 8-rank engine on 12 T4s is the widest there is."""
    plan = ap.solve("mistralai/Mixtral-8x7B-v0.1", "3x4xT4", options=ONE_STAGE)
    assert plan.config.enable_expert_parallel and plan.config.gpus == 8
    line = _gpus_line(plan)
    assert line.startswith("gpus: 8 of 12 GPUs used: ")
    assert "may place more on the other 4" in line
    assert line.endswith(
        "no wider EP engine exists: EP ranks must divide the 8 experts, and no count above 8 does"
    )


def test_wider_ep_engine_exists_and_plans_no_better() -> None:
    """Qwen3-30B-A3B on 16 T4s under ttft: the 8-GPU engine wins; the 16-GPU one (ep=16) is in the
    space, and its full-width twin of the plan is slower to the first token."""
    plan = ap.solve("Qwen/Qwen3-30B-A3B", "4x4xT4", workload=LIMITS, objective="ttft", options=ONE_STAGE)
    c = plan.config
    assert (c.tp, c.replicas, c.enable_expert_parallel) == (4, 2, True)
    line = _gpus_line(plan)
    assert line.startswith("gpus: 8 of 16 GPUs used: ")
    assert "may place more on the other 8" in line
    assert line.endswith("the solver found no better plan on the space's wider EP engines (16 GPUs)")
    wide = ap.evaluate("Qwen/Qwen3-30B-A3B", "4x4xT4", c.model_copy(update={"replicas": 4}), workload=LIMITS)
    assert wide.perf.ttft_ms > plan.perf.ttft_ms


def test_full_ep_engine_keeps_the_bare_line() -> None:
    """An EP engine on every GPU idles none: no reason is added."""
    plan = ap.solve("Qwen/Qwen3-30B-A3B", "1x8xH100", objective="ttft")
    assert plan.config.enable_expert_parallel and plan.config.gpus == 8
    assert _gpus_line(plan) == "gpus: 8 of 8 GPUs used"


def test_host_rule_is_named_with_the_counts_it_excludes() -> None:
    """Qwen1.5-MoE-A2.7B (60 experts) on 2 nodes of 8 T4s: above 8 ranks, 10, 12 and 15 divide 60 but
    do not lie on whole 8-GPU hosts, and no divisor of 60 above 8 does (`shape_domain`'s rule)."""
    model = ap.load_model("Qwen/Qwen1.5-MoE-A2.7B")
    options = ServingOptions(tp_values=(8,), pp_values=(1,), max_num_seqs=(8,))
    space = build_space(model, Cluster.parse("2x8xT4"), ap.Serving(), options)
    ep8 = next(s for s in space.shapes if s.ep and s.tp == 8 and s.ep_replicas == 1)
    wider = [s for s in space.shapes if s.ep and s.ep_ranks > 8]
    assert all(s.violations for s in wider)
    assert wider_ep_rule(space, ep8, wider) == (
        "no wider EP engine exists: EP ranks must divide the 60 experts and lie on whole 8-GPU hosts or "
        "inside one (10, 12, 15 do not), and no count above 8 does"
    )
