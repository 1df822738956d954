"""Dense replicas of powers of two on whole hosts of a rack-scale NVLink domain (GB200 NVL36: 9 hosts
of 4 GPUs, a node of 36).

The serving space kept a dense shape only when tp divided the node and tp · pp divided it or was a
multiple of it, so 8-, 16- and 32-GPU dense replicas were never offered on a 36-GPU domain:
Llama-3.1-405B at 5 req/s on 1x36xGB200 (cost) took tp 4 pp 9 on all 36 GPUs ($12.27 per million
tokens; the deployment $216/h), where 1x72xGB200 serves it with tp 8 engines on 24 GPUs ($144/h).
Those shapes are now offered (`perf.serving.sub_domain_size`, the deployment planner's sizes), with
⌊node / (tp · pp)⌋ replicas per domain (`space.replicas_on`), the leftover GPUs reported idle, the
oracle counting its own replicas, and the launches putting every replica on whole hosts of one domain.
"""

from __future__ import annotations

import re
from functools import cache

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.frameworks._common import replica_hosts
from autoparallel.frameworks.sglang import sglang_launch
from autoparallel.frameworks.trtllm import trtllm_launch
from autoparallel.frameworks.vllm import vllm_launch
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.hardware.gpu import host_size
from autoparallel.models import ModelSpec, load_model
from autoparallel.perf.serving import deployment_problems, evaluate_serving
from autoparallel.solvers.deployment import FleetModel, solve_deployment
from autoparallel.solvers.oracle.serving import enumerate_serving, placed_replicas
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import ServingOptions, replicas_on, shape_domain
from autoparallel.solvers.settings import SolverSettings
from autoparallel.workload import Serving

NVL36 = Cluster.parse("1x36xGB200")
TWO_NVL36 = Cluster.parse("2x36xGB200")
GB200 = get_gpu("GB200")
WORKLOAD = Serving(isl=2048, osl=512, ttft_ms=3000, tpot_ms=60, request_rate=5)
"""`plan meta-llama/Llama-3.1-405B-Instruct --request-rate 5 --isl 2048 --osl 512 --ttft-ms 3000
--tpot-ms 60 --objective cost`."""
SETTINGS = SolverSettings(workers=1, seed=0, time_limit_s=30.0)
BEFORE_USD_PER_MTOK = 12.27
"""The single-engine plan on 1x36xGB200 before: tp 4 pp 9 on 36 GPUs at $12.27 per million tokens."""


@cache
def _model(name: str) -> ModelSpec:
    return load_model(name)


def test_a_36_gpu_domain_offers_dense_power_of_two_replicas_per_domain() -> None:
    shapes = shape_domain(_model("meta-llama/Llama-3.1-405B-Instruct"), NVL36, ServingOptions(), 36)
    dense = {(s.tp, s.pp): s.max_replicas for s in shapes if not s.ep}
    assert dense[8, 1] == 4 and dense[4, 2] == 4 and dense[8, 2] == 2 and dense[8, 4] == 1
    assert dense[16, 1] == 2 and dense[4, 9] == 1  # the old shapes stay
    for (tp, pp), most in dense.items():  # every replica on whole hosts or inside one, in one domain
        per = tp * pp
        assert per % 4 == 0 or 4 % per == 0
        assert per % 36 == 0 or 36 % per == 0 or (per & (per - 1) == 0 and tp & (tp - 1) == 0)
        assert most == replicas_on(per, 36, 36) == placed_replicas(per, 36, 36, 4)
    two = shape_domain(_model("meta-llama/Llama-3.1-8B"), TWO_NVL36, ServingOptions(tp_values=(8,)), 72)
    assert {(s.pp, s.max_replicas) for s in two if not s.ep} >= {(1, 8), (2, 4), (4, 2)}  # not 9, 4, 2
    h100 = shape_domain(_model("meta-llama/Llama-3.1-70B"), Cluster.parse("2x8xH100"), ServingOptions(), 16)
    assert {s.tp for s in h100} == {1, 2, 4, 8}  # 8-GPU nodes: nothing new
    assert all(s.max_replicas == 16 // s.gpus_per_replica for s in h100 if not s.ep)
    six = shape_domain(_model("meta-llama/Llama-3.1-70B"), Cluster.parse("1x6xH100"), ServingOptions(), 6)
    assert {s.tp for s in six} == {1, 2, 3, 4, 6}  # its divisors, and tp 4 inside the node (s46 fN)


def test_the_float_model_runs_tp8_on_a_36_gpu_domain() -> None:
    """`tp=8 does not fit inside a node of 36 GPUs` refused every such plan (the decoder's re-check)."""
    est = evaluate_serving(
        _model("meta-llama/Llama-3.1-405B-Instruct"),
        NVL36,
        ServingConfig(tp=8, pp=4, max_model_len=4096),
        WORKLOAD,
    )
    assert est.fits, est.problems
    assert deployment_problems(NVL36, ServingConfig(tp=24, max_model_len=4096), WORKLOAD) == [
        "tp=24 does not fit inside a node of 36 GPUs"  # neither divides the node nor a power of two
    ]
    assert not deployment_problems(NVL36, ServingConfig(tp=16, max_model_len=4096), WORKLOAD)


def test_405b_on_nvl36_plans_a_dense_tp8_replica_cheaper_on_fewer_gpus() -> None:
    sol = solve_serving(
        _model("meta-llama/Llama-3.1-405B-Instruct"),
        NVL36,
        WORKLOAD,
        objective="cost",
        options=ServingOptions(max_num_seqs=(128, 256, 384)),
        settings=SETTINGS,
        runner_up=False,
    )
    c = sol.config
    assert c.tp == 8 and c.gpus < 36 and c.gpus % 8 == 0
    assert sol.objective_value < BEFORE_USD_PER_MTOK
    idle = [b for b in sol.binding if b.startswith("gpus:")]
    assert idle == [
        f"gpus: {c.gpus} of 36 GPUs used; {36 - c.gpus} idle: a replica of {c.gpus_per_replica} GPUs stays "
        f"inside one NVLink domain (node) of 36 GPUs, which holds {36 // c.gpus_per_replica} "
        f"({36 % c.gpus_per_replica} GPUs of each left over)"
    ]


def test_the_deployment_planner_packs_the_dense_tp8_engines_on_fewer_gpus() -> None:
    """The whole-cluster deployment was 1 x tp4pp9 on 36 GPUs at $216/h."""
    fm = FleetModel(_model("meta-llama/Llama-3.1-405B-Instruct"), WORKLOAD)
    d = solve_deployment([fm], NVL36, objective="cost", options=ServingOptions(max_num_seqs=(64, 128, 256)))
    assert d.usd_per_hour < 216.0 and d.gpus_used < 36
    assert {e.tp for e in d.engines} == {8}
    for e in d.engines:  # each replica on whole hosts of the one domain (hosts 0-8)
        for replica in e.placement:
            assert replica.gpu_ids == (0, 1, 2, 3) and all(0 <= h < 9 for h in replica.nodes)
            assert len(replica.nodes) == e.gpus_per_replica // 4
    assert d.gpus_idle == 36 - d.gpus_used and d.idle_reasons


@pytest.mark.parametrize("spec", ["1x36xGB200", "2x36xGB200", "1x72xGB200", "1x6xGB200", "2x8xH100"])
def test_replicas_sit_on_whole_hosts_inside_one_domain(spec: str) -> None:
    cluster = Cluster.parse(spec)
    node = cluster.gpus_per_node
    host = host_size(cluster.gpu.name, node)
    k = -(-node // host)
    for width in (1, 2, 4, 8, 16, 32):
        if width >= node:
            continue
        most = replicas_on(width, cluster.world_size, node)
        assert most == placed_replicas(width, cluster.world_size, node, host)
        groups = replica_hosts(most, width, node, host)
        for hosts in groups:
            assert len({h // k for h in hosts}) == 1  # one NVLink domain
            assert (width <= host and len(hosts) == 1) or len(hosts) * host == width
        gpus = [(h, g) for hosts in groups for h in hosts for g in range(min(width, host))]
        assert len(set(gpus)) == len(gpus) or width < host  # no host shared by two wide replicas


def test_the_oracle_agrees_with_cpsat_on_two_nvl36_domains() -> None:
    """Eight tp=8 replicas fit 2 x 36 GPUs (four per domain), not 72 // 8 = 9; before, tp=8 was no shape
    on 36-GPU nodes and both sides found nothing."""
    model = _model("meta-llama/Llama-3.1-8B")
    options = ServingOptions(tp_values=(8,), pp_values=(1, 2), max_num_seqs=(64, 256), enforce_eager=(False,))
    for workload, objective in (
        (Serving(isl=1024, osl=256), "throughput"),
        (Serving(isl=1024, osl=256, concurrency=700, tpot_ms=40), "throughput"),
        (Serving(isl=1024, osl=256, tpot_ms=30), "cost"),
    ):
        oracle = enumerate_serving(model, TWO_NVL36, workload, objective=objective, options=options)
        sol = solve_serving(
            model,
            TWO_NVL36,
            workload,
            objective=objective,
            options=options,
            settings=SETTINGS,
            runner_up=False,
        )
        assert oracle.config is not None and oracle.objective_value is not None
        assert sol.objective_value == pytest.approx(oracle.objective_value, rel=1e-4, abs=0.05 * 8)
        assert sol.config.replicas <= 8 and oracle.config.replicas <= 8
    assert sol.config.gpus_per_replica in (8, 16)


def _hosts_of_ray_clusters(commands: tuple[tuple[str, ...], ...]) -> list[list[int]]:
    """The hosts of each Ray cluster of a launch: a head's host and the workers naming its address."""
    clusters: dict[str, list[int]] = {}
    heads: list[int] = []
    for h, lines in enumerate(commands):
        for line in lines:
            if line.startswith("ray start --head"):
                heads.append(h)
            elif m := re.match(r"ray start --address=\$\{(HEAD_IP\w*)\}", line):
                clusters.setdefault(m.group(1), []).append(h)
    return [
        [head, *clusters.get(f"HEAD_IP_{d}", clusters.get("HEAD_IP", []))] for d, head in enumerate(heads)
    ]


def test_a_planned_two_host_tp8_replica_launches_as_a_multi_node_engine() -> None:
    """The plan's tp=8 replicas (none before: "placement: no allowed (tp, pp) fits") run over two
    4-GPU hosts each: vLLM on a Ray cluster, SGLang with --nnodes 2, TensorRT-LLM under mpirun."""
    model = _model("meta-llama/Llama-3.1-405B-Instruct")
    options = ServingOptions(tp_values=(8,), pp_values=(1,), max_num_seqs=(64, 128))
    sol = solve_serving(
        model, NVL36, WORKLOAD, objective="cost", options=options, settings=SETTINGS, runner_up=False
    )
    config = sol.config
    assert (config.tp, config.pp) == (8, 1) and 1 <= config.replicas <= 4
    launch = vllm_launch(model.name, config, cluster=NVL36, model=model)
    assert _hosts_of_ray_clusters(launch.commands) == [list(range(2 * config.replicas))]
    head = launch.commands[0][1]
    assert "--tensor-parallel-size 8" in head and "--distributed-executor-backend ray" in head
    one = config.model_copy(update={"replicas": 1})
    assert vllm_launch(model.name, one, cluster=NVL36, model=model).commands == (
        (
            "ray start --head --port=6379",
            vllm_launch(model.name, one, cluster=NVL36, model=model).commands[0][1],
        ),
        ("ray start --address=${HEAD_IP}:6379",),
    )
    sgl = sglang_launch(model.name, config, 36, mem_fraction_static=0.85, model=model, gpu=GB200)
    assert sgl.nodes == 2 and sgl.servers == config.replicas and len(sgl.lines) == 2
    for rank, line in enumerate(sgl.lines):
        assert "--tp-size 8 " in line
        assert f"--nnodes 2 --node-rank {rank} --dist-init-addr ${{HEAD_IP}}:5000" in line
    trt = trtllm_launch(model.name, config, 36, gpu=GB200)
    assert trt.nodes == 2 and trt.line.startswith("mpirun -np 8 --hostfile hostfile --map-by ppr:4:node ")


def test_replicas_over_two_nvl36_domains_never_share_a_ray_cluster() -> None:
    """One Ray cluster over hosts 0-15 put replica 4 on hosts 8 (domain 0) and 9 (domain 1)."""
    model = _model("meta-llama/Llama-3.1-405B-Instruct")
    config = ServingConfig(tp=8, replicas=8, max_model_len=4096)
    launch = vllm_launch(model.name, config, cluster=TWO_NVL36, model=model)
    rays = _hosts_of_ray_clusters(launch.commands)
    assert rays == [list(range(0, 8)), list(range(9, 17))]
    assert launch.commands[8][0].startswith("# idle")
    serves = [line for lines in launch.commands for line in lines if line.startswith("vllm serve")]
    assert len(serves) == 2 and all("--data-parallel-size 4 " in s for s in serves)
    assert any("hosts 8, 17 stay idle" in n for n in launch.notes)
    sgl = sglang_launch(model.name, config, 36, mem_fraction_static=0.85, model=model, gpu=GB200)
    assert any("replica 4 on hosts 9-10" in n and "hosts 8, 17 stay idle" in n for n in sgl.notes)
    trt = trtllm_launch(model.name, config, 36, gpu=GB200)
    assert any("replica 4 on hosts 9-10" in n for n in trt.notes)


def test_evaluate_names_dense_replicas_that_would_straddle_two_domains() -> None:
    import autoparallel as ap

    r = ap.evaluate(
        "meta-llama/Llama-3.1-70B",
        "2x36xGB200",
        ap.ServingConfig(tp=8, replicas=9),
        ap.Serving(isl=1024, osl=256),
    )
    assert not r.fits
    assert any("9 replicas of 8 GPUs" in p and "holds 8" in p for p in r.problems)
