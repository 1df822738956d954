"""SGLang and TensorRT-LLM emitters, and `evaluate --engine sglang|trtllm` (perf/serving_engines.py)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoparallel.api import evaluate
from autoparallel.cli import main
from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError
from autoparallel.frameworks.sglang import sglang_args, sglang_command, sglang_launch
from autoparallel.frameworks.trtllm import (
    TRTLLM_NULLABLE,
    TRTLLM_YAML_SCHEMA,
    trtllm_command,
    trtllm_options,
    trtllm_yaml,
)
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.models import list_models
from autoparallel.workload import Serving

SGLANG_FLAGS = {
    "--model-path": str,
    "--host": str,
    "--port": int,
    "--nccl-port": int,
    "--tp-size": int,
    "--pp-size": int,
    "--dp-size": int,
    "--ep-size": int,
    "--enable-dp-attention": bool,
    "--mem-fraction-static": float,
    "--max-running-requests": int,
    "--chunked-prefill-size": int,
    "--context-length": int,
    "--kv-cache-dtype": str,
    "--quantization": str,
    "--disable-cuda-graph": bool,
    "--nsa-prefill-backend": str,
    "--nsa-decode-backend": str,
    "--nnodes": int,
    "--node-rank": int,
    "--dist-init-addr": str,
}
"""SGLang 0.5 `ServerArgs` flags the emitter may write (server_args.py)."""


def _parse_sglang(line: str) -> argparse.Namespace:
    words = shlex.split(line)
    assert words[:3] == ["python", "-m", "sglang.launch_server"]
    p = argparse.ArgumentParser(exit_on_error=False)
    for flag, kind in SGLANG_FLAGS.items():
        if kind is bool:
            p.add_argument(flag, action="store_true")
        else:
            p.add_argument(flag, type=kind)
    return p.parse_args(words[3:])


def sglang_ports(line: str) -> tuple[set[int], set[int]]:
    """The ports a `python -m sglang.launch_server` line needs free on its node, as SGLang 0.5.6 derives
    them (server_args.py `PortArgs.init_new`, data_parallel_controller.py `_broadcast_worker_ports`,
    model_runner.py `init_torch_distributed`): (ports it binds or requires free, ports its NCCL port
    is drawn from when `--nccl-port` is not given). HTTP at `--port`; the torch store at the NCCL
    port, or at `--dist-init-addr`'s port when given; under attention DP the dist-init port (`--port`
    + 233 without `--dist-init-addr`) and the 5 ZMQ ports after it, and the DP handshake at 13 above
    the dist-init address's port or above `--port`."""
    ns = _parse_sglang(line)
    fixed = {ns.port} | ({ns.nccl_port} if ns.nccl_port is not None else set())
    drawn = set(range(ns.port + 100, ns.port + 1001)) if ns.nccl_port is None else set()
    given = int(ns.dist_init_addr.rsplit(":", 1)[1]) if ns.dist_init_addr else None
    if ns.enable_dp_attention:
        dist = given if given is not None else ns.port + 233
        fixed |= set(range(dist, dist + 6)) | {(given if given is not None else ns.port) + 13}
    elif given is not None:
        fixed.add(given)
    return fixed, drawn


def assert_ports_apart(lines: list[str]) -> None:
    """Servers on one node: no port one needs is another's, nor in the range another draws its NCCL
    port from (it may draw it before the other binds it)."""
    ports = [sglang_ports(line) for line in lines]
    for i, (fixed, _) in enumerate(ports):
        for j, (other, drawn) in enumerate(ports):
            if i != j:
                assert not fixed & (other | drawn), (lines[i], lines[j], sorted(fixed & (other | drawn)))


def test_sglang_servers_sharing_a_node_keep_their_internal_ports_apart() -> None:
    """`plan Qwen/Qwen3-30B-A3B --cluster 1x8xH100 --engine sglang`: the deployment's two attention-DP
    servers on node 0 took --port 8000 and 8001, so SGLang's derived ports (8233-8238 and 8234-8239)
    overlapped ("dist_init_port at 8234 is not available"). Each server sharing a node now takes the
    block of its slot (`shared_node_flags`): up to 72 servers on a node (a GB200 NVL72 domain) keep
    every port apart, below the ephemeral range."""
    from autoparallel.frameworks.sglang import shared_node_flags

    dp_attention = ServingConfig(tp=1, replicas=4, enable_expert_parallel=True)
    for config in (ServingConfig(tp=1), dp_attention):
        line = sglang_command("m", config, mem_fraction_static=0.8)
        lines = [f"{line} --port {8000 + k} {shared_node_flags(config, k)}" for k in range(72)]
        assert_ports_apart(lines)
        assert max(max(sglang_ports(x)[0]) for x in lines) < 32768
    line = sglang_command("m", dp_attention, mem_fraction_static=0.8)
    with pytest.raises(AssertionError):  # what the lines were: consecutive --port, derived ports
        assert_ports_apart([f"{line} --port 8000", f"{line} --port 8001"])
    with pytest.raises(InputError, match="cannot share a node"):
        shared_node_flags(ServingConfig(tp=1, replicas=2), 0)


def test_sglang_servers_wider_than_a_node_span_whole_nodes() -> None:
    """A server wider than a node runs the same line on each of its nodes with `--nnodes`, its rank and
    the first node's address (left for the shell to expand); replicas that fit a node run one server
    per node; a width that would split a node is refused."""
    ep = ServingConfig(tp=2, replicas=8, enable_expert_parallel=True)
    launch = sglang_launch("deepseek-ai/DeepSeek-V3", ep, 8, mem_fraction_static=0.75)
    assert (launch.servers, launch.nodes, len(launch.lines)) == (1, 2, 2)
    for rank, line in enumerate(launch.lines):
        ns = _parse_sglang(line.replace("${HEAD_IP}", "10.0.0.1"))
        assert (ns.tp_size, ns.dp_size, ns.ep_size, ns.enable_dp_attention) == (16, 8, 16, True)
        assert (ns.nnodes, ns.node_rank, ns.dist_init_addr) == (2, rank, "10.0.0.1:5000")
        assert "--dist-init-addr ${HEAD_IP}:5000" in line  # unquoted: the shell expands it
    pipeline = sglang_launch("m", ServingConfig(tp=8, pp=2, replicas=3), 8, mem_fraction_static=0.8)
    assert (pipeline.servers, pipeline.nodes, pipeline.server.replicas) == (3, 2, 1)
    assert _parse_sglang(pipeline.lines[1].replace("${HEAD_IP}", "h")).pp_size == 2
    assert any("3 servers" in n for n in pipeline.notes)
    per_node = sglang_launch("m", ServingConfig(tp=2, replicas=6), 8, mem_fraction_static=0.8)
    assert (per_node.servers, per_node.nodes, per_node.server.replicas) == (2, 1, 4)
    assert any("--dp-size 2" in n for n in per_node.notes)  # the last server's share
    one = sglang_launch("m", ServingConfig(tp=2, replicas=2), 8, mem_fraction_static=0.8)
    assert (one.servers, one.nodes, one.lines) == (
        1,
        1,
        (sglang_command("m", ServingConfig(tp=2, replicas=2), mem_fraction_static=0.8),),
    )
    with pytest.raises(InputError, match="span whole nodes"):
        sglang_launch("m", ServingConfig(tp=4, pp=3), 8, mem_fraction_static=0.8)


def test_sglang_dense_and_expert_parallel_lines() -> None:
    dense = _parse_sglang(
        sglang_command("meta-llama/Llama-3.1-70B", ServingConfig(tp=4, replicas=2), mem_fraction_static=0.85)
    )
    assert (dense.tp_size, dense.dp_size, dense.ep_size, dense.enable_dp_attention) == (4, 2, None, False)
    assert dense.mem_fraction_static == 0.85 and dense.max_running_requests == 256
    assert dense.host == "0.0.0.0"  # ServerArgs.host defaults to 127.0.0.1: the node only
    moe = ServingConfig(
        tp=1, replicas=8, enable_expert_parallel=True, kv_cache_dtype="fp8", enforce_eager=True
    )
    ep = _parse_sglang(sglang_command("Qwen/Qwen3-30B-A3B", moe, mem_fraction_static=0.8))
    assert (ep.tp_size, ep.dp_size, ep.ep_size, ep.enable_dp_attention) == (8, 8, 8, True)
    assert ep.kv_cache_dtype == "fp8_e4m3" and ep.disable_cuda_graph
    # SGLang splits --max-running-requests over the attention-DP ranks (ModelRunner:
    # `max_running_requests // dp_size`): the line carries a replica's cap times the ranks.
    assert ep.max_running_requests // ep.dp_size == moe.max_num_seqs
    assert "chunked_prefill_size" not in sglang_args("m", ServingConfig(), mem_fraction_static=0.8)
    assert "nsa_decode_backend" not in sglang_args("m", ServingConfig(), mem_fraction_static=0.8)
    nsa = _parse_sglang(
        sglang_command("m", ServingConfig(tp=8), mem_fraction_static=0.8, nsa_backends=("fa3", "flashmla_kv"))
    )
    assert (nsa.nsa_prefill_backend, nsa.nsa_decode_backend) == ("fa3", "flashmla_kv")


def _check_schema(doc: dict[str, object], schema: dict[str, object], where: str = "") -> None:
    for key, value in doc.items():
        assert key in schema, f"{where}{key} is not a documented LLM-API key"
        kind = schema[key]
        if value is None:
            assert key in TRTLLM_NULLABLE, f"{where}{key} is not an Optional sub-config"
            continue
        if isinstance(kind, dict):
            assert isinstance(value, dict)
            _check_schema(value, kind, f"{where}{key}.")
        else:
            assert isinstance(value, kind), (key, value, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "config",
    [
        ServingConfig(tp=8),
        ServingConfig(tp=2, pp=2, max_num_batched_tokens=4096, kv_cache_dtype="fp8"),
        ServingConfig(tp=1, replicas=8, enable_expert_parallel=True, enforce_eager=True),
    ],
)
def test_trtllm_yaml_keys_follow_the_llm_api_schema(config: ServingConfig) -> None:
    doc = yaml.safe_load(trtllm_yaml(config))
    _check_schema(doc, TRTLLM_YAML_SCHEMA)
    assert doc == trtllm_options(config)
    assert doc["kv_cache_config"]["free_gpu_memory_fraction"] == 0.9
    line = shlex.split(trtllm_command("m", config))
    assert line[0] == "trtllm-serve" and line[line.index("--tp_size") + 1] == str(doc["tensor_parallel_size"])
    if config.enable_expert_parallel:
        assert doc["enable_attention_dp"] is True and doc["moe_expert_parallel_size"] == 8
    if config.enforce_eager:  # TorchLlmArgs.cuda_graph_config defaults to CudaGraphConfig(): graphs on
        assert "cuda_graph_config" in doc and doc["cuda_graph_config"] is None


def test_trtllm_copies_each_take_their_own_gpus_and_port() -> None:
    """`plan llama-3.1-8b --cluster 2x8xH100 --engine trtllm`: one line and "run 16 copies of this line,
    one per 1 GPU(s), behind a load balancer"; copied as is, every copy took GPU 0 and port 8000 and
    listened on localhost only (trtllm-serve's `--host` default). The line now listens on all
    interfaces and the note gives each copy of a node its CUDA_VISIBLE_DEVICES and --port."""
    from autoparallel.frameworks.trtllm import trtllm_launch

    launch = trtllm_launch("meta-llama/Llama-3.1-8B", ServingConfig(tp=1, replicas=16), 8)
    words = shlex.split(launch.line)
    assert words[words.index("--host") + 1] == "0.0.0.0" and "--port" not in words
    (note,) = launch.notes
    assert "16 copies" in note and "8 per node on 2 node(s)" in note
    for k in range(8):
        assert f"CUDA_VISIBLE_DEVICES={k} <this line> --port {8000 + k}" in note
    (partial,) = trtllm_launch("m", ServingConfig(tp=2, replicas=5), 8).notes
    assert (
        "CUDA_VISIBLE_DEVICES=6,7 <this line> --port 8003" in partial
        and "the last node the first 1" in partial
    )
    assert trtllm_launch("m", ServingConfig(tp=8), 8).notes == ()


@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
@pytest.mark.parametrize(
    "model, cluster, config",
    [
        ("meta-llama/Llama-3.1-8B", "1x1xH100", ServingConfig(max_model_len=4096)),  # dense
        (
            "Qwen/Qwen3-30B-A3B",
            "1x2xH100",
            ServingConfig(tp=2, enable_expert_parallel=True, max_model_len=4096),
        ),  # MoE
        ("deepseek-ai/DeepSeek-V3", "1x8xH200", ServingConfig(tp=8, max_model_len=8192)),  # MLA + MoE
    ],
)
def test_evaluate_engine_on_dense_moe_and_mla(
    engine: str, model: str, cluster: str, config: ServingConfig
) -> None:
    workload = Serving(isl=1024, osl=256)
    plan = evaluate(model, Cluster.parse(cluster), config, workload, compare=False, engine=engine)
    assert plan.fits, plan.problems
    assert plan.engine == engine and plan.engine_eval is not None
    assert plan.kv_cache_tokens == plan.engine_eval.memory.kv_cache_tokens >= config.max_model_len
    assert plan.perf.output_tokens_per_s > 0 and plan.perf.tpot_ms > 0
    assert (plan.engine_eval.mem_fraction_static is not None) == (engine == "sglang")


@pytest.mark.parametrize("engine", ["sglang", "trtllm"])
def test_evaluating_a_plan_on_its_engine_gives_the_plan(engine: str) -> None:
    """`evaluate` of the configuration `plan --engine E` chose, on E, is that plan: the same speed,
    pool, memory rule, launch line and finite benchmark (`solve` leaves the replay to the caller, as
    the CLI's `plan` does), and it sits at the engine's optimum."""
    from autoparallel.api import solve, with_benchmark
    from autoparallel.solvers.serving.space import ServingOptions

    cluster, workload = Cluster.parse("1x2xH100"), Serving(isl=512, osl=256, num_prompts=200)
    plan = solve("Qwen/Qwen3-8B", cluster, workload, options=ServingOptions(engines=(engine,)))
    ev = evaluate("Qwen/Qwen3-8B", cluster, plan.config, workload, engine=engine)
    assert ev.engine == plan.engine == engine and ev.solver.status == "EVALUATED"
    assert ev.perf == plan.perf and ev.kv_cache_tokens == plan.kv_cache_tokens
    assert ev.memory_rule == plan.memory_rule and ev.command == plan.command
    assert ev.benchmark is not None and ev.benchmark == with_benchmark(plan).benchmark
    with pytest.raises(InputError, match="takes a ServingPlan"):
        with_benchmark(None)  # type: ignore[arg-type]
    assert ev.solver.gap_to_optimum is not None and abs(ev.solver.gap_to_optimum) < 1e-9


@pytest.mark.parametrize(
    "engine, nsa, message",
    [
        ("sglang", "fa3", "must be a pair"),
        ("sglang", ("fa3", None, None), "must be a pair"),
        ("sglang", ("fa3", 3), "must be a pair"),
        ("vllm", ("fa3", None), "SGLang settings"),
        ("sglang", ("fa3", None), "has no DeepSeek Sparse Attention"),
    ],
)
def test_api_evaluate_checks_nsa_backends(engine: str, nsa: Any, message: str) -> None:
    """From Python as from the command line: SGLang's sparse-attention kernels are a pair, for SGLang,
    on a model with DeepSeek Sparse Attention; anything else is one InputError, not a pydantic trace
    or a silently ignored setting."""
    with pytest.raises(InputError, match=message):
        evaluate(
            "meta-llama/Llama-3.1-8B",
            "1x1xH100",
            ServingConfig(),
            compare=False,
            engine=engine,
            nsa_backends=nsa,
        )


def test_engines_refuse_what_does_not_fit() -> None:
    plan = evaluate(
        "meta-llama/Llama-3.1-70B",
        Cluster.parse("1x1xH100"),
        ServingConfig(max_model_len=4096),
        Serving(),
        compare=False,
        engine="sglang",
    )
    assert not plan.fits and "no KV pool" in plan.problems[0]


def test_cli_evaluate_engine(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluate", "Qwen/Qwen3-8B", "--cluster", "1x1xH100", "--engine", "trtllm", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "trtllm" and out["trtllm"]["extra_options_yaml"]
    assert out["solver"]["status"] == "EVALUATED" and "gap_to_optimum" in out["solver"]
    assert main(["evaluate", "meta-llama/Llama-3.1-70B", "--cluster", "1x1xH100", "--engine", "sglang"]) == 1


def test_cli_evaluate_sglang_nsa_backends(capsys: pytest.CaptureFixture[str]) -> None:
    """`--nsa-decode-backend flashmla_kv` over SGLang's default BF16 cache (Hopper) quantizes the whole
    pool every decode step: slower than the default FA3 decode, and the flag is on the launch line."""
    base = ["evaluate", "deepseek-ai/DeepSeek-V3.2", "--cluster", "1x8xH200", "--tp", "8", "--json"]
    tps = {}
    for extra in ([], ["--nsa-decode-backend", "flashmla_kv"]):
        assert main([*base, "--engine", "sglang", *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        tps[bool(extra)] = out["perf"]["output_tokens_per_s"]
        assert ("--nsa-decode-backend flashmla_kv" in out["sglang"]["command"]) == bool(extra)
        assert (out["sglang"]["args"].get("nsa_decode_backend") == "flashmla_kv") == bool(extra)
    assert tps[True] < 0.9 * tps[False]
    assert main([*base, "--nsa-decode-backend", "fa3"]) == 2  # vLLM takes no NSA flags
    assert "add --engine sglang" in capsys.readouterr().err
    dense = [
        "evaluate",
        "deepseek-ai/DeepSeek-V3",
        "--cluster",
        "1x8xH200",
        "--tp",
        "8",
        "--engine",
        "sglang",
    ]
    assert main([*dense, "--nsa-prefill-backend", "fa3"]) == 2
    assert "no DeepSeek Sparse Attention" in capsys.readouterr().err


def _sglang_lines() -> list[str]:
    """SGLang launch lines as users get them: every emitter option, and the lines `plan --engine
    sglang` chose for zoo models (dense, MoE, MLA, sparse attention; data-parallel attention)."""
    lines = []
    for cfg in (
        ServingConfig(tp=4, replicas=2),
        ServingConfig(
            tp=1, replicas=8, enable_expert_parallel=True, kv_cache_dtype="fp8", enforce_eager=True
        ),
        ServingConfig(tp=2, pp=2, max_num_seqs=64, max_model_len=8192, quantization="fp8"),
        ServingConfig(tp=8, max_num_batched_tokens=4096, kv_cache_dtype="fp8_e4m3"),
    ):
        lines.append(sglang_command("Qwen/Qwen3-30B-A3B", cfg, mem_fraction_static=0.8))
    nsa = ("flashmla_sparse", "flashmla_kv")
    lines.append(
        sglang_command(
            "deepseek-ai/DeepSeek-V3.2", ServingConfig(tp=8), mem_fraction_static=0.85, nsa_backends=nsa
        )
    )
    for model, cluster in (
        ("meta-llama/Llama-3.1-70B-Instruct", "1x8xH100"),
        ("Qwen/Qwen3-235B-A22B", "1x8xH200"),
        ("deepseek-ai/DeepSeek-V3", "1x8xH200"),
        ("deepseek-ai/DeepSeek-V3.2", "1x8xH200"),
        ("Qwen/Qwen3-8B", "1x2xH100"),
    ):
        for extra in ([], ["--workload", "batch"]):
            plan = _cli_json(["plan", model, "--cluster", cluster, "--engine", "sglang", *extra])
            lines.append(plan["sglang"]["command"])
    # Servers over two nodes (the shell expands HEAD_IP): the planner's DeepSeek-V3 line, a pipeline.
    plan = _cli_json(["plan", "deepseek-ai/DeepSeek-V3", "--cluster", "2x8xH100", "--engine", "sglang"])
    pipeline = sglang_launch("m", ServingConfig(tp=8, pp=2), 8, mem_fraction_static=0.8)
    lines += [
        x.replace("${HEAD_IP}", "10.0.0.1") for x in (*plan["sglang"]["node_commands"], *pipeline.lines)
    ]
    return lines


def _cli_json(argv: list[str]) -> dict[str, Any]:
    """`autoparallel ARGV --json`, parsed (stdout captured here, not by pytest)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*argv, "--json"]) == 0
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


@pytest.mark.skipif(
    not os.environ.get("SGLANG_CHECK_PYTHON"),
    reason="SGLANG_CHECK_PYTHON (a Python with SGLang 0.5.6 and transformers 4.57.1) is not set; SGLang's "
    "own ServerArgs code is not available",
)
def test_sglang_lines_pass_sglangs_own_parser() -> None:
    """Every line goes through SGLang's own parser and start-up arguments code (`ServerArgs.__post_init__`
    and `check_server_args`, tests/frameworks/check_sglang_args.py), on an H200, one process for all."""
    from sglang_checker import assert_all_start, sglang_case

    configs = {e.id: e.config for e in list_models()}
    lines = _sglang_lines()
    assert len(set(lines)) >= 10
    cases = []
    for line in lines:
        model_id = shlex.split(line)[shlex.split(line).index("--model-path") + 1]
        config = configs.get(model_id, configs["meta-llama/Llama-3.1-70B"])  # "m": any dense model
        cases.append(sglang_case(line, config, get_gpu("H200")))
    assert_all_start(lines, cases)


def test_sglang_line_trusts_remote_code_only_for_a_checkpoint_whose_config_is_its_own_code() -> None:
    """Kimi-K2's `kimi_k2` config class is the checkpoint's code (transformers 4.57.1, which SGLang
    0.5.6 pins, has none): its line carries `--trust-remote-code` with a note saying why, on one node
    and across nodes; DeepSeek-V3, the same architecture under a known model_type, does not."""
    from autoparallel.models import load_model

    kimi = load_model("moonshotai/Kimi-K2-Instruct")
    for gpus_per_node in (16, 8):
        launch = sglang_launch(
            "moonshotai/Kimi-K2-Instruct",
            ServingConfig(tp=16),
            gpus_per_node,
            mem_fraction_static=0.8,
            model=kimi,
        )
        assert all(_parse_sglang_flags(line).get("--trust-remote-code") for line in launch.lines)
        assert launch.model_notes and launch.model_notes[0] in launch.notes
        assert "kimi_k2" in launch.model_notes[0]
    v3 = load_model("deepseek-ai/DeepSeek-V3")
    launch = sglang_launch(
        "deepseek-ai/DeepSeek-V3", ServingConfig(tp=8), 8, mem_fraction_static=0.8, model=v3
    )
    assert "--trust-remote-code" not in launch.lines[0] and not launch.model_notes


def _parse_sglang_flags(line: str) -> dict[str, bool]:
    return {word: True for word in shlex.split(line) if word.startswith("--")}


def test_sglang_on_rocm_refuses_mxfp4_and_names_llama4s_backend(capsys: pytest.CaptureFixture[str]) -> None:
    """SGLang 0.5.6 on CDNA3 (MI300X): no MXFP4 method (gpt-oss is refused, exit 2, and `plan --engine
    auto` serves it on vLLM); Llama 4's line names `--attention-backend aiter` with a note, on AMD only."""
    assert (
        main(["evaluate", "openai/gpt-oss-20b", "--cluster", "1x1xMI300X", "--tp", "1", "--engine", "sglang"])
        == 2
    )
    assert "CDNA4" in capsys.readouterr().err
    scout = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
    for cluster, named in (("1x4xMI300X", True), ("1x4xH100", False)):
        argv = ["evaluate", scout, "--cluster", cluster, "--tp", "4", "--engine", "sglang", "--json"]
        assert main(argv) == 0
        out = json.loads(capsys.readouterr().out)
        assert ("--attention-backend aiter" in out["sglang"]["command"]) == named
        assert any("aiter" in n for n in out["sglang"]["notes"]) == named


def test_a_fleet_on_rocm_carries_llama4s_backend_and_its_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The deployment planner's SGLang engines on MI300X: Llama 4's lines name aiter and its engine
    carries the note saying why; the other model's line names no backend."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "models:\n"
        "  - {model: meta-llama/Llama-4-Scout-17B-16E-Instruct, request_rate: 2, workload: chatbot}\n"
        "  - {model: Qwen/Qwen3-8B, request_rate: 5, workload: chatbot}\n"
    )
    argv = ["plan", "--fleet", str(fleet), "--cluster", "1x8xMI300X", "--engine", "sglang", "--json"]
    assert main(argv) == 0
    engines = json.loads(capsys.readouterr().out)["deployment"]["engines"]
    assert len(engines) == 2
    for engine in engines:
        scout = "Llama-4" in engine["model"]
        lines = [line for replica in engine["sglang"]["commands"] for node in replica for line in node]
        assert lines and all(("--attention-backend aiter" in line) == scout for line in lines)
        assert any("aiter" in note for note in engine["sglang"]["notes"]) == scout


def test_sglang_pool_loads_gemma_in_float16_where_vllm_runs_float32(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Gemma 3 on a T4: vLLM runs it in float32 (16 GiB of weights for the 4B model, more than the GPU),
    SGLang in float16 below SM80, so SGLang's pool is priced with 8 GiB of weights and 2-byte KV."""
    argv = ["evaluate", "google/gemma-3-4b-it", "--cluster", "1x1xT4", "--tp", "1", "--json"]
    assert main([*argv, "--engine", "sglang"]) == 0
    sglang = json.loads(capsys.readouterr().out)
    main(argv)
    vllm = json.loads(capsys.readouterr().out)
    assert sglang["memory"]["weights_gib"] == pytest.approx(vllm["memory"]["weights_gib"] / 2, rel=0.01)
    assert (
        sglang["memory"]["kv_bytes_per_token_per_gpu"] * 2
        == vllm["memory"]["kv_bytes_per_token_all_layers_per_gpu"]
    )
    assert sglang["fits"] and not vllm["memory"]["fits"]


def test_trtllm_options_trust_remote_code_only_for_kimi() -> None:
    """TensorRT-LLM reads configs through transformers as SGLang does: Kimi-K2's options carry
    `trust_remote_code: true` (as TensorRT-LLM's Kimi K2 guide sets it), within the documented schema;
    DeepSeek-V3's do not."""
    from autoparallel.models import load_model

    config = ServingConfig(tp=8, max_model_len=8192)
    kimi = trtllm_options(config, model=load_model("moonshotai/Kimi-K2-Instruct"))
    assert kimi["trust_remote_code"] is True
    assert "trust_remote_code" not in trtllm_options(config, model=load_model("deepseek-ai/DeepSeek-V3"))
    assert set(kimi) <= set(TRTLLM_YAML_SCHEMA) and isinstance(
        kimi["trust_remote_code"], TRTLLM_YAML_SCHEMA["trust_remote_code"]
    )
    assert "trust_remote_code: true" in trtllm_yaml(config, model=load_model("moonshotai/Kimi-K2-Instruct"))
