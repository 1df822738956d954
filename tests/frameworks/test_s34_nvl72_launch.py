"""GB200 NVL72 serving launches count hosts (18 compute trays of 4 GPUs), not the 72-GPU NVLink domain.

The planner's node of a GB200 cluster is the rack's NVLink domain (72 GPUs); a process starts on one
host (tray) and sees its 4 GPUs (`frameworks._common.gpus_per_host`). The serving emitters and the
deployment placement treated the rack as one host: nine `CUDA_VISIBLE_DEVICES=0..7 .. 64..71` lines on
node 0, one `--dp-size 9` SGLang server, "9 per node on 1 node(s)" TensorRT-LLM copies, one
`vllm serve --pipeline-parallel-size 8 --data-parallel-size 9` over 72 GPUs. Other GPUs: unchanged.
"""

from __future__ import annotations

import re

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError
from autoparallel.frameworks._common import rack_hosts_note
from autoparallel.frameworks.sglang import sglang_command, sglang_launch
from autoparallel.frameworks.trtllm import trtllm_launch
from autoparallel.frameworks.vllm import vllm_args, vllm_launch
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.models import load_model
from autoparallel.solvers.deployment.decoder import on_hosts

RACK = Cluster.parse("1x72xGB200")
GB200 = get_gpu("GB200")


def _visible(line: str) -> list[int]:
    """The GPU ids of a line's CUDA_VISIBLE_DEVICES (none: [])."""
    m = re.search(r"CUDA_VISIBLE_DEVICES=([\d,]+)", line)
    return [int(g) for g in m.group(1).split(",")] if m else []


def test_nvl72_vllm_moe_separate_engines_span_two_hosts_each() -> None:
    """`plan deepseek-ai/DeepSeek-V3 --cluster 1x72xGB200 --disagg off`: nine tp=8 engines were nine
    CUDA_VISIBLE_DEVICES lines on node 0 (GPU ids up to 71); each is now a Ray cluster of 2 hosts."""
    spec = load_model("deepseek-ai/DeepSeek-V3")
    launch = vllm_launch(spec.name, ServingConfig(tp=8, replicas=9), cluster=RACK, model=spec)
    assert launch.nodes == 18
    lines = [line for host in launch.commands for line in host]
    assert all(max(_visible(line), default=0) < 4 for line in lines)
    heads = [host for host in launch.commands if host[0].startswith("ray start --head")]
    assert len(heads) == 9 and all("--distributed-executor-backend ray" in host[1] for host in heads)
    assert launch.notes[-1] == rack_hosts_note("GB200", 72)
    assert "18 hosts" in launch.notes[-1] and "0-3" in launch.notes[-1]


def test_nvl72_vllm_dense_pp8_dp9_runs_on_eighteen_hosts() -> None:
    """`plan meta-llama/Llama-3.1-70B --cluster 1x72xGB200`: one `vllm serve --pipeline-parallel-size 8
    --data-parallel-size 9` for all 72 GPUs as if on one host; an 8-GPU rank spans 2 hosts, so Ray."""
    spec = load_model("meta-llama/Llama-3.1-70B")
    config = ServingConfig(tp=1, pp=8, replicas=9)
    launch = vllm_launch(spec.name, config, cluster=RACK, model=spec)
    assert launch.nodes == 18
    assert launch.env == {"VLLM_RAY_DP_PACK_STRATEGY": "span"}
    assert vllm_args(spec.name, config, cluster=RACK, model=spec)["distributed_executor_backend"] == "ray"
    assert all(host == ("ray start --address=${HEAD_IP}:6379",) for host in launch.commands[1:])


def test_nvl72_vllm_narrow_replicas_pack_two_per_host() -> None:
    """36 tp=2 replicas: 2 data-parallel engines per host, 18 hosts, node 0 serving the API."""
    spec = load_model("meta-llama/Llama-3.1-8B")
    launch = vllm_launch(spec.name, ServingConfig(tp=2, replicas=36), cluster=RACK, model=spec)
    assert launch.nodes == 18
    assert "--data-parallel-size-local 2" in launch.commands[0][0]
    assert "--headless" not in launch.commands[0][0]
    assert (
        "--data-parallel-start-rank 34" in launch.commands[17][0] and "--headless" in launch.commands[17][0]
    )
    # an H100 node is its host: one line, as before
    h100 = vllm_launch(spec.name, ServingConfig(tp=2, replicas=4), cluster=Cluster.parse("1x8xH100"))
    assert h100.nodes == 1 and h100.notes == ()


def test_nvl72_engines_of_six_gpus_over_hosts_of_four() -> None:
    """`plan meta-llama/Llama-3.1-70B --cluster 1x6xGB200` plans one tp=2 pp=3 engine: a Ray cluster of
    2 hosts (its placement group packs 4 + 2); SGLang and TensorRT-LLM put 3 GPUs on each of 2 hosts.
    Data-parallel ranks of 6 are refused: vLLM's Ray `span` packing needs whole hosts."""
    spec = load_model("meta-llama/Llama-3.1-70B")
    one = ServingConfig(tp=2, pp=3)
    assert vllm_launch(spec.name, one, cluster=Cluster.parse("1x6xGB200"), model=spec).nodes == 2
    sgl = sglang_launch(spec.name, one, 72, mem_fraction_static=0.85, model=spec, gpu=GB200)
    assert sgl.nodes == 2 and "--nnodes 2" in sgl.lines[1]
    assert "--map-by ppr:3:node" in trtllm_launch(spec.name, one, 72, gpu=GB200).line
    with pytest.raises(InputError, match=r"over 6 GPUs on nodes of 4.*GB200: a host"):
        vllm_launch(spec.name, ServingConfig(tp=2, pp=3, replicas=12), cluster=RACK, model=spec)


def test_nvl72_sglang_servers_span_hosts_with_nnodes() -> None:
    """`--engine sglang`: one `--tp-size 8 --dp-size 9` server for the rack; now 9 servers of 2 hosts."""
    spec = load_model("deepseek-ai/DeepSeek-V3")
    launch = sglang_launch(
        spec.name, ServingConfig(tp=8, replicas=9), 72, mem_fraction_static=0.85, model=spec, gpu=GB200
    )
    assert (launch.servers, launch.nodes) == (9, 2)
    assert all("--nnodes 2" in line and "--dp-size" not in line for line in launch.lines)
    assert any("run 9 servers, one per group of 2 hosts" in n for n in launch.notes)
    assert rack_hosts_note("GB200", 72) in launch.notes
    narrow = sglang_launch("m", ServingConfig(tp=2, replicas=36), 72, mem_fraction_static=0.85, gpu=GB200)
    assert (narrow.servers, narrow.nodes) == (18, 1) and "--dp-size 2" in narrow.lines[0]
    h100 = sglang_launch(
        "m", ServingConfig(tp=2, replicas=4), 8, mem_fraction_static=0.85, gpu=get_gpu("H100")
    )
    assert (h100.servers, h100.nodes, h100.notes) == (1, 1, ())


def test_nvl72_trtllm_engines_run_under_mpirun_over_hosts_of_four() -> None:
    """`--engine trtllm`: "9 per node on 1 node(s)" with GPU ids up to 71; each tp=8 engine is now one
    MPI world over 2 hosts (slots=4), and tp=2 copies pack 2 per host."""
    wide = trtllm_launch("deepseek-ai/DeepSeek-V3", ServingConfig(tp=8, replicas=9), 72, gpu=GB200)
    assert (wide.engines, wide.nodes) == (9, 2)
    assert wide.line.startswith("mpirun -np 8 --hostfile hostfile --map-by ppr:4:node trtllm-llmapi-launch")
    assert any("listing its 2 hosts (slots=4 each)" in n for n in wide.notes)
    narrow = trtllm_launch("m", ServingConfig(tp=2, replicas=36), 72, gpu=GB200)
    assert "2 per host on 18 host(s)" in narrow.notes[0]
    assert "CUDA_VISIBLE_DEVICES=2,3 <this line> --port 8001" in narrow.notes[0]
    assert trtllm_launch("m", ServingConfig(tp=2, replicas=4), 8, gpu=get_gpu("H100")) == trtllm_launch(
        "m", ServingConfig(tp=2, replicas=4), 8
    )


def test_nvl72_deployment_placement_names_hosts() -> None:
    """The decoder's placement counted GPUs 0..71 of node 0; a replica is now on its hosts, with each
    host's own GPU ids (node n of 72 GPUs: hosts 18n .. 18n + 17)."""
    assert on_hosts((0,), (8, 9, 10, 11, 12, 13, 14, 15), 4, 72) == ((2, 3), (0, 1, 2, 3))
    assert on_hosts((1,), (70, 71), 4, 72) == ((35,), (2, 3))
    assert on_hosts((1,), tuple(range(72)), 4, 72) == (tuple(range(18, 36)), (0, 1, 2, 3))


def test_nvl72_fleet_replicas_have_a_line_group_per_host() -> None:
    """A whole-rack fleet of DeepSeek-V3: each 8-GPU replica on 2 hosts of its own, GPUs 0-3 on each."""
    from autoparallel.fleet import solve_fleet

    plan = solve_fleet([{"model": "deepseek-ai/DeepSeek-V3", "isl": 1024, "osl": 256}], "1x72xGB200")
    (engine,) = plan.deployment.engines
    hosts = [h for p in engine.placement for h in p.nodes]
    assert len(hosts) == len(set(hosts)) and max(hosts) < 18
    assert all(max(p.gpu_ids) < 4 for p in engine.placement)
    (launch,) = plan.launches()
    assert all(len(c) == len(p.nodes) for c, p in zip(launch["commands"], engine.placement, strict=True))


def test_sglang_accepts_a_bfloat16_kv_cache() -> None:
    """SGLang 0.5.6's --kv-cache-dtype takes bf16 / bfloat16; the emitter refused vLLM's `bfloat16`."""
    line = sglang_command("m", ServingConfig(tp=1, kv_cache_dtype="bfloat16"), mem_fraction_static=0.8)
    assert "--kv-cache-dtype bfloat16" in line


def test_the_placement_and_the_emitters_read_one_host_fact() -> None:
    """`hardware.gpu.GPUS_PER_HOST` is the one place; the emitters and the placement read it."""
    from autoparallel.frameworks._common import gpus_per_host
    from autoparallel.hardware import Cluster
    from autoparallel.solvers.deployment import decoder

    rack = Cluster.parse("1x72xGB200")
    assert gpus_per_host(rack) == decoder.pool_host_size(rack.pools[0]) == 4
    assert gpus_per_host(Cluster.parse("1x8xH100")) == 8
