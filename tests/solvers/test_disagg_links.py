"""Disaggregated roles within their links' KV bandwidth, and a prefill queue that sees prompt spread."""

from __future__ import annotations

import pytest

from autoparallel.errors import InfeasibleError
from autoparallel.fleet import fleet_of_one
from autoparallel.hardware import Cluster
from autoparallel.perf import comm, disagg
from autoparallel.solvers.deployment.disagg_plan import solve_roles
from autoparallel.solvers.deployment.roles import build_role_space
from autoparallel.workload import Serving

# Qwen3-0.6B: 28 layers × 8 KV heads × 128 dims × (K, V) × 2 bytes = 114,688 bytes per token.
QWEN06_KV_PER_TOKEN = 28 * 8 * 128 * 2 * 2


@pytest.mark.parametrize(
    ("cluster", "workload", "nic_gb_per_s"),
    [
        # 13P:3D at 6,240 req/s: each decode GPU took 2,080 prompts/s × 58.7 MB = 122 GB/s of KV
        ("2x8xH100", Serving(isl=512, osl=32, ttft_ms=1000, tpot_ms=30), 50.0),
        # prefill GPUs at 257 % of a 50 Gbit/s NIC
        ("2x8xA100-80G,ib=50", Serving(isl=2048, osl=256, ttft_ms=3000, tpot_ms=40), 50 / 8),
    ],
)
def test_every_rank_moves_its_kv_within_its_nic(cluster: str, workload: Serving, nic_gb_per_s: float) -> None:
    """Each rank's share of the served rate × the KV bytes it sends (P) or receives (D) per request fits
    its GPU's NIC (the transfer is point to point, GPU to GPU, across nodes)."""
    c = Cluster.parse(cluster)
    d = solve_roles(build_role_space(fleet_of_one("Qwen/Qwen3-0.6B", workload), c), "throughput")
    link = nic_gb_per_s * 1e9 * comm.NETWORK_EFFICIENCY
    assert c.inter_node_gbps * comm.GB * comm.NETWORK_EFFICIENCY == pytest.approx(link)
    per_request = QWEN06_KV_PER_TOKEN * workload.isl
    # each rank moves the KV of its heads (1 / tp) of its stage's layers (1 / pp)
    for e in d.decode:
        assert e.load_rps / e.dp * per_request / (e.tp * e.pp) <= link * (1 + 1e-9)
    for e in d.prefill:  # 8 heads: a P rank sends its own share to any decode TP up to 8
        assert e.load_rps / e.dp * per_request / (e.tp * e.pp) <= link * (1 + 1e-9)
    assert d.served_rps > 0


def test_the_prefill_queue_waits_longer_for_spread_prompt_lengths() -> None:
    """Llama-3.1-70B on 2x8xH100, ISL 2048 / OSL 512, TTFT 2 s, TPOT 30 ms: isl_cv 1.5 left the
    disaggregated side byte-identical to fixed lengths. Now every prefill engine's service time spreads
    (c² near isl_cv²), its wait at a given load grows, and its rating at the TTFT budget falls."""
    fm = {
        cv: build_role_space(
            fleet_of_one(
                "meta-llama/Llama-3.1-70B", Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=30, isl_cv=cv)
            ),
            Cluster.parse("2x8xH100"),
        )
        for cv in (0.0, 0.5, 1.5)
    }
    prefill = {
        cv: {
            (e.tp, e.pp): (e, t)
            for e, t in zip(rs.space.engines, rs.times, strict=True)
            if e.role == "prefill"
        }
        for cv, rs in fm.items()
    }
    shapes = set(prefill[0.0]) & set(prefill[0.5]) & set(prefill[1.5])
    assert shapes
    for shape in shapes:
        (e0, t0), (e1, t1), (e2, t2) = (prefill[cv][shape] for cv in (0.0, 0.5, 1.5))
        assert t0.service_cv2 == 0.0 < t1.service_cv2 < t2.service_cv2
        assert t2.service_cv2 == pytest.approx(1.5**2, rel=0.15)
        rate = 0.5 / t0.prefill_s  # ρ 0.5 at fixed lengths
        waits = [disagg.prefill_wait_s(t.prefill_s, rate, t.service_cv2) for t in (t0, t1, t2)]
        assert waits[0] < waits[1] < waits[2]
        assert e0.prefill_milli_tps > e1.prefill_milli_tps > e2.prefill_milli_tps


def test_a_measured_prompt_shape_spreads_the_prefill_too() -> None:
    """`isl_quantiles` (ShareGPT's shape, scaled to a 2048-token mean) is sampled as the replay samples
    it: Llama-3.1-8B's prefill, nearly linear in tokens there, spreads about as the lengths do (1.37).
    (At ShareGPT's own 238-token mean a prompt's prefill is mostly the fixed weight read: c² 0.07 on
    Qwen3-0.6B.)"""
    update = {"isl": 2048, "ttft_ms": 2000.0, "tpot_ms": 50.0, "num_prompts": None}  # the shape, not a burst
    w = Serving.preset("sharegpt").model_copy(update=update)
    rs = build_role_space(fleet_of_one("meta-llama/Llama-3.1-8B", w), Cluster.parse("1x2xH100"))
    spreads = [t.service_cv2 for e, t in zip(rs.space.engines, rs.times, strict=True) if e.role == "prefill"]
    assert spreads and all(0.8 * w.prompt_spread < c < 1.2 * w.prompt_spread for c in spreads)


def test_no_decode_engine_names_the_nixl_pipeline_rule() -> None:
    """Llama-3.1-405B on 4x8xH100: every shape that fits has pp ≥ 2 (TP up to 8), and vLLM's NIXL
    connector runs no decode engine with pipeline stages; the reason said "break node granularity"."""
    w = Serving(isl=2048, osl=512, ttft_ms=3000, tpot_ms=50)
    rs = build_role_space(fleet_of_one("meta-llama/Llama-3.1-405B", w), Cluster.parse("4x8xH100"))
    with pytest.raises(InfeasibleError) as exc:
        solve_roles(rs)
    text = str(exc.value)
    assert "node granularity" not in text
    assert "pipeline stages (the fewest: tp=8 pp=2, 16 GPUs; TP searched up to 8)" in text
    assert "runs decode engines without pipeline stages (engine_support.nixl_role_problem)" in text
