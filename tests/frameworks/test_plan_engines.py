"""`plan --engine vllm|sglang|trtllm|auto`, `pareto --engine` and sweep scenarios with an engine."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml
from test_engines import _check_schema, _parse_sglang, assert_ports_apart

from autoparallel.cli import main
from autoparallel.frameworks.trtllm import TRTLLM_YAML_SCHEMA

MODEL, CLUSTER = "meta-llama/Llama-3.1-8B-Instruct", "1x2xH100"


def _plan_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    assert main(["plan", MODEL, "--cluster", CLUSTER, "--json", "--disagg", "off", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_auto_json_compares_the_three_engines(capsys: pytest.CaptureFixture[str]) -> None:
    out = _plan_json(capsys, "--engine", "auto", "--isl", "4096", "--osl", "512")
    comp = out["comparison"]
    assert [e["engine"] for e in comp["engines"]] == ["vllm", "sglang", "trtllm"]
    assert comp["engine_winner"] == out["engine"] and "deployment" in out
    for entry in comp["engines"]:
        assert entry["feasible"]
        for key in (
            "output_tokens_per_s",
            "output_tokens_per_s_per_gpu",
            "ttft_ms",
            "tpot_ms",
            "kv_cache_tokens",
        ):
            assert entry[key] > 0
        assert entry["winner"] == (entry["engine"] == out["engine"])
        assert ("why_not" in entry) == (entry["engine"] != out["engine"])
    best = max(e["output_tokens_per_s"] for e in comp["engines"])
    assert out["perf"]["output_tokens_per_s"] == pytest.approx(best)
    # the engines' memory rules differ, so their KV pools do
    assert len({e["kv_cache_tokens"] for e in comp["engines"]}) == 3


def test_sglang_plan_emits_sglang_only(capsys: pytest.CaptureFixture[str]) -> None:
    out = _plan_json(capsys, "--engine", "sglang")
    assert out["engine"] == "sglang" and "vllm" not in out and "comparison" not in out
    assert "gpu_memory_utilization" not in out["config"]
    ns = _parse_sglang(out["sglang"]["command"])  # the package's own SGLang flag check
    c = out["config"]
    assert ns.max_running_requests == c["max_num_seqs"] and ns.context_length == c["max_model_len"]
    assert ns.mem_fraction_static == out["memory"]["mem_fraction_static"]
    assert ns.tp_size == c["tp"] and (ns.dp_size or 1) == c["replicas"]
    assert (
        "vllm" not in out["sglang"]["command"] and "--gpu-memory-utilization" not in out["sglang"]["command"]
    )


def test_trtllm_plan_yaml_follows_the_llm_api_schema(capsys: pytest.CaptureFixture[str]) -> None:
    out = _plan_json(capsys, "--engine", "trtllm")
    art = out["trtllm"]
    doc = yaml.safe_load(art["extra_options_yaml"])
    _check_schema(doc, TRTLLM_YAML_SCHEMA)
    assert doc["max_batch_size"] == out["config"]["max_num_seqs"]
    line = shlex.split(art["command"])
    assert line[:2] == ["trtllm-serve", MODEL] and art["extra_options_file"] in line
    assert out["memory"]["engine"] == "trtllm" and out["memory"]["kv_cache_tokens"] > 0


def test_default_engine_is_vllm_and_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    default = _plan_json(capsys)
    explicit = _plan_json(capsys, "--engine", "vllm")
    for key in ("config", "memory", "perf", "vllm", "binding", "engine"):
        assert default[key] == explicit[key], key
    assert default["engine"] == "vllm" and default["vllm"]["command"].startswith("vllm serve")
    assert "comparison" not in default and "sglang" not in default


def test_auto_text_says_which_engine_wins_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["plan", MODEL, "--cluster", CLUSTER, "--engine", "auto", "--isl", "4096", "--osl", "512"]) == 0
    )
    text = capsys.readouterr().out
    assert "Engines compared" in text and "why:" in text
    for name in ("vLLM", "SGLang", "TensorRT-LLM"):
        assert name in text.split("Engines compared")[1]


def test_engine_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", MODEL, "--cluster", CLUSTER, "--engine", "sglang", "--disagg", "on"]) == 2
    assert (
        main(
            [
                "plan",
                MODEL,
                "--cluster",
                CLUSTER,
                "--train",
                "--seq-len",
                "2048",
                "--global-batch",
                "8",
                "--engine",
                "sglang",
            ]
        )
        == 2
    )
    assert main(["plan", MODEL, "--cluster", CLUSTER, "--engine", "trtllm", "--quantization", "fp8"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "does not quantize weights online" in err


def test_evaluate_refuses_what_the_engine_cannot_run(capsys: pytest.CaptureFixture[str]) -> None:
    # The plan's runtime filter (`engine_runtime_problem`) holds for `evaluate` too: TensorRT-LLM has
    # no online quantization, and SGLang asserts on a DeepSeek Sparse Attention cache other than
    # bf16 / fp8_e4m3.
    base = ["evaluate", MODEL, "--cluster", "1x1xH100"]
    assert main([*base, "--engine", "trtllm", "--quantization", "fp8"]) == 2
    assert "does not quantize weights online" in capsys.readouterr().err
    v32 = [
        "evaluate",
        "deepseek-ai/DeepSeek-V3.2",
        "--cluster",
        "1x8xH200",
        "--tp",
        "8",
        "--engine",
        "sglang",
    ]
    assert main([*v32, "--kv-cache-dtype", "fp8_e5m2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bf16 or fp8_e4m3" in err and "Traceback" not in err
    assert main([*v32, "--kv-cache-dtype", "fp8_e4m3"]) == 0


def test_engine_runtime_problem_reads_the_model() -> None:
    from autoparallel.models import load_model
    from autoparallel.perf.serving_engines import engine_runtime_problem

    v32, llama = load_model("deepseek-ai/DeepSeek-V3.2"), load_model(MODEL)
    assert engine_runtime_problem("sglang", None, "fp8_e5m2", v32) is not None
    assert engine_runtime_problem("sglang", None, "fp8_e5m2", llama) is None
    assert engine_runtime_problem("sglang", None, "fp8", v32) is None
    # An FP8 checkpoint named as loaded is not an online quantization.
    assert engine_runtime_problem("trtllm", "fp8", "auto", v32) is None
    assert engine_runtime_problem("trtllm", "fp8", "auto", llama) is not None
    # TensorRT-LLM's DSA on Hopper is the BF16-cache path only; Blackwell takes an FP8 cache.
    from autoparallel.hardware import get_gpu

    assert engine_runtime_problem("trtllm", None, "fp8", v32, get_gpu("H200")) is not None
    assert engine_runtime_problem("trtllm", None, "fp8", v32, get_gpu("B200")) is None
    assert engine_runtime_problem("trtllm", None, "fp8", llama, get_gpu("H200")) is None


def test_whole_cluster_plans_in_the_users_precisions(capsys: pytest.CaptureFixture[str]) -> None:
    # The deployment section reads --kv-cache-dtype / --quantization as the single-engine plan does.
    out = _plan_json(capsys, "--engine", "auto", "--kv-cache-dtype", "fp8")
    assert out["config"]["kv_cache_dtype"] == "fp8"
    engines = out["deployment"]["engines"]
    assert engines and {e["kv_cache_dtype"] for e in engines} == {"fp8"}


def test_gpu_memory_utilization_is_vllms_knob(capsys: pytest.CaptureFixture[str]) -> None:
    # SGLang and TensorRT-LLM size their pools by their own rules: the vLLM knob is refused where no
    # vLLM engine is planned (it was silently ignored) and noted where engines are compared.
    flag = ["--gpu-memory-utilization", "0.5"]
    assert main(["plan", MODEL, "--cluster", "1x1xH100", "--engine", "trtllm", *flag]) == 2
    assert "--free-gpu-memory-fraction" in capsys.readouterr().err
    assert main(["evaluate", MODEL, "--cluster", "1x1xH100", "--engine", "sglang", *flag]) == 2
    assert "--mem-fraction-static" in capsys.readouterr().err
    # Compared beside vLLM, it applies to vLLM's pool; a note says so on stderr, once.
    assert main(["plan", MODEL, "--cluster", CLUSTER, "--engine", "auto", "--disagg", "off", *flag]) == 0
    assert capsys.readouterr().err.count("sizes vLLM's pool only") == 1


def test_pareto_with_engines(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "pareto",
        MODEL,
        "--cluster",
        "1x1xH100",
        "--engine",
        "trtllm",
        "--objectives",
        "throughput,ttft",
        "--json",
    ]
    assert main(argv) == 0
    points = json.loads(capsys.readouterr().out)["points"]
    assert points and {p["engine"] for p in points} == {"trtllm"}


def test_sweep_scenarios_record_the_engine(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"scenarios": [{"model": MODEL, "cluster": "1x1xH100", "engine": e} for e in ("sglang", "auto")]}
        )
    )
    out = tmp_path / "r.jsonl"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["engine"] for r in rows] == ["sglang", "auto"]
    assert rows[0]["plan_engine"] == "sglang" and rows[1]["plan_engine"] in ("vllm", "sglang", "trtllm")
    assert all(r["status"] == "ok" for r in rows)


def test_deployment_planner_takes_the_engine(capsys: pytest.CaptureFixture[str]) -> None:
    out = _plan_json(capsys, "--engine", "sglang")
    engines = out["deployment"]["engines"]
    assert engines and all(e["engine"] == "sglang" and "vllm" not in e for e in engines)
    for e in engines:
        for replica in e["sglang"]["commands"]:
            (line,) = replica[0]
            ns = _parse_sglang(line.rsplit(" --port ", 1)[0])
            per_rank = ns.max_running_requests // (ns.dp_size if ns.enable_dp_attention else 1)
            assert per_rank == e["max_num_seqs"] and ns.tp_size >= e["tp"]


def sglang_servers_by_node(deployment: dict) -> dict[tuple[int, int], list[str]]:
    """(pool, node) -> the node-0 lines of the deployment's SGLang servers whose first node it is."""
    out: dict[tuple[int, int], list[str]] = {}
    for e in deployment["engines"]:
        for replica, p in zip(e["sglang"]["commands"], e["placement"], strict=True):
            out.setdefault((e["pool"], p["nodes"][0]), []).append(replica[0][0])
    return out


@pytest.mark.parametrize("model", ["Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-8B"], ids=["attention-dp", "dense"])
def test_deployment_sglang_servers_on_one_node_keep_their_ports_apart(model: str) -> None:
    """The deployment's SGLang servers sharing a node (two attention-DP servers of 4 GPUs, eight dense
    servers of 1) took consecutive --port values, from which SGLang 0.5.6 derives its other ports
    (`PortArgs.init_new`): attention-DP servers at 8000 and 8001 both needed 8234-8238. Each now
    passes the internal ports of its slot on the node."""
    from autoparallel.fleet import FleetEntry, solve_fleet
    from autoparallel.solvers.serving.space import ServingOptions

    # one pipeline stage: several servers share the node (the planner's best for the MoE model is
    # otherwise one tp 2 pp 4 server at SGLang's 4,096 request slots)
    options = ServingOptions(engines=("sglang",), pp_values=(1,))
    plan = solve_fleet([FleetEntry(model=model)], "1x8xH100", options=options)
    nodes = sglang_servers_by_node(plan.to_dict()["deployment"])
    assert max(len(lines) for lines in nodes.values()) > 1
    for lines in nodes.values():
        assert all("--host 0.0.0.0 " in line for line in lines)
        assert_ports_apart(lines)


@pytest.mark.parametrize(("engine", "cluster"), [("vllm", "8x8xH100"), ("sglang", "4x8xH100")])
def test_each_multi_node_replica_names_its_own_head(engine: str, cluster: str) -> None:
    """The whole-cluster deployment of DeepSeek-V3 runs several replicas over 2 or more nodes each
    (vLLM: 4 over 2 since its experts exchange by all-gather, SGLang: 2 over 2): every replica's
    lines said `${HEAD_IP}` (`--data-parallel-address`, `--dist-init-addr`) and
    the notes "export HEAD_IP=<address of node 0> on every node", so the second replica's nodes
    joined the first's head. Each replica's lines now name its own first node."""
    from autoparallel.fleet import FleetEntry, solve_fleet
    from autoparallel.solvers.serving.space import ServingOptions

    options = ServingOptions(engines=(engine,))
    entry = FleetEntry(model="deepseek-ai/DeepSeek-V3", workload="chatbot")
    (e,) = solve_fleet([entry], cluster, options=options).to_dict()["deployment"]["engines"]
    launch = e[engine]
    assert e["replicas"] >= 2 and not any("HEAD_IP" in n for n in launch["notes"])
    for replica, p in zip(launch["commands"], e["placement"], strict=True):
        lines = [line for node in replica for line in node]
        assert len(replica) == len(p["nodes"]) > 1 and "HEAD_IP" not in str(lines)
        head = f"${{POOL0_NODE{p['nodes'][0]}_IP}}"
        assert all(f"--data-parallel-address {head} " in x or f"--dist-init-addr {head}:" in x for x in lines)


def test_a_trtllm_fleet_gives_each_engine_its_own_options_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two models on TensorRT-LLM: each engine's `trtllm-serve` lines read an options file of its
    own, and the plan file carries that file's name with its content (one shared name would make the
    second engine's YAML overwrite the first's)."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "models:\n"
        "  - {model: Qwen/Qwen3-30B-A3B, request_rate: 20, workload: chatbot}\n"
        "  - {model: meta-llama/Llama-3.1-8B-Instruct, request_rate: 50, workload: chatbot}\n"
    )
    plan_file = tmp_path / "plan.yaml"
    argv = ["plan", "--fleet", str(fleet), "--cluster", "1x8xH100", "--engine", "trtllm"]
    assert main([*argv, "--plan-file", str(plan_file)]) == 0
    text = capsys.readouterr().out
    engines = yaml.safe_load(plan_file.read_text())["engines"]
    files = [e["extra_options_file"] for e in engines]
    assert len(engines) == 2 and len(set(files)) == 2
    for e in engines:
        options = yaml.safe_load(e["extra_options_yaml"])
        _check_schema(options, TRTLLM_YAML_SCHEMA)
        assert options["tensor_parallel_size"] == e["tp"]
        for replica in e["replicas"]:
            ((line,),) = replica["commands"]  # one node, one line
            words = shlex.split(line)
            assert words[words.index("--extra_llm_api_options") + 1] == e["extra_options_file"]
        assert f"{e['extra_options_file']}:" in text  # the report shows each file's content


def test_deployment_candidates_are_each_engines_float_model() -> None:
    from autoparallel.models import load_model
    from autoparallel.solvers.deployment import FleetModel, build_deployment_space, solve_space
    from autoparallel.solvers.deployment.decoder import evaluate_engine
    from autoparallel.solvers.serving.space import ServingOptions
    from autoparallel.workload import Serving

    fleet = [FleetModel(load_model(MODEL), Serving(isl=4096, osl=512, tpot_ms=100))]
    opts = ServingOptions(engines=("vllm", "sglang", "trtllm"), max_num_seqs=(16, 64, 96, 128))
    space = build_deployment_space(
        fleet, __import__("autoparallel").Cluster.parse("1x4xH100"), opts, prune=False
    )
    assert {e.engine for e in space.engines} == {"vllm", "sglang", "trtllm"}
    for e in space.engines:  # the decoder re-evaluates each with its engine's float model
        assert evaluate_engine(space, e).perf.batch_size == e.config.max_num_seqs
    plan = solve_space(build_deployment_space(fleet, space.cluster, opts), "throughput")
    assert plan.solver.status == "OPTIMAL" and plan.gpus_used == 4


def test_engines_load_only_the_checkpoints_they_implement() -> None:
    # TensorRT-LLM's PyTorch backend: its supported-models list and the quantized formats its
    # ModelConfig reads; SGLang: every zoo architecture but BLOOM. vLLM 0.32 runs the whole zoo but
    # Llama 3.2 Vision (Mllama, dropped after 0.10.2 with the other encoder-decoder models).
    from autoparallel.models import list_models, load_model
    from autoparallel.perf.engine_support import engine_model_problem

    trt_no = {
        "bigscience/bloom",
        "facebook/opt-66b",
        "EleutherAI/gpt-neox-20b",
        "openai-community/gpt2",
        "google/gemma-2-9b",
        "google/gemma-7b",
        "microsoft/phi-2",
        "ibm-granite/granite-3.3-8b-instruct",
        "deepseek-ai/DeepSeek-Coder-V2-Lite-Base",
        "Orion-zhen/QwQ-32B-Preview-AWQ",  # an AWQ checkpoint of a supported architecture
    }
    trt_yes = {
        "meta-llama/Llama-3.1-8B",
        "deepseek-ai/DeepSeek-V3.2",
        "moonshotai/Kimi-K2-Instruct",  # DeepseekV3ForCausalLM, FP8 128x128 blocks
        "nvidia/Llama-3.1-70B-Instruct-FP8",  # ModelOpt FP8
        "openai/gpt-oss-20b",  # MXFP4
        "google/gemma-3-27b-it",
        "Qwen/Qwen3-30B-A3B",
        "Qwen/Qwen1.5-MoE-A2.7B",  # Qwen2MoeForCausalLM: registered (modeling_qwen_moe.py), not in the list
    }
    names = {e.id for e in list_models()}
    assert trt_no | trt_yes <= names
    for name in names:
        spec = load_model(name)
        assert spec.architecture, name
        mllama = spec.architecture == "MllamaForConditionalGeneration"
        act_order = spec.quantization is not None and spec.quantization.act_order  # refused from 0.32
        assert (engine_model_problem("vllm", spec) is None) == (not mllama and not act_order), name
        assert engine_model_problem("vllm", spec, vllm_version="0.10.2") is None
        assert (engine_model_problem("sglang", spec) is None) == (spec.architecture != "BloomForCausalLM")
        if name in trt_no | trt_yes:
            assert (engine_model_problem("trtllm", spec) is None) == (name in trt_yes), name


def test_auto_never_picks_an_engine_that_cannot_load_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "bigscience/bloom", "--cluster", "1x8xH100", "--engine", "auto", "--disagg", "off"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["engine"] == "vllm" and {e["engine"] for e in out["deployment"]["engines"]} == {"vllm"}
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "SGLang has no implementation of BloomForCausalLM" in text
    assert "does not run architecture BloomForCausalLM" in text
    assert (
        main(["evaluate", "bigscience/bloom", "--cluster", "1x8xH100", "--tp", "8", "--engine", "trtllm"])
        == 2
    )


def test_engines_wider_than_a_node_span_whole_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    """DeepSeek-V3 does not fit one node of H100s: SGLang serves it on two with one line per node rank,
    TensorRT-LLM with one `mpirun` line over both (plan and evaluate alike); a width that would split
    a node is refused by both."""
    argv = ["plan", "deepseek-ai/DeepSeek-V3", "--cluster", "2x8xH100", "--disagg", "off"]
    assert main([*argv, "--engine", "sglang", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    lines = plan["sglang"]["node_commands"]
    assert plan["config"]["gpus"] == 16 and len(lines) == 2 and plan["sglang"]["command"] == lines[0]
    for rank, line in enumerate(lines):
        ns = _parse_sglang(line.replace("${HEAD_IP}", "10.0.0.1"))
        assert (ns.nnodes, ns.node_rank) == (2, rank) and ns.tp_size * (ns.pp_size or 1) == 16
    for engine in plan["deployment"]["engines"]:  # the whole-cluster planner's servers, too
        for replica, nodes in zip(engine["sglang"]["commands"], engine["nodes"], strict=True):
            assert len(replica) == len(nodes)
            assert all(f"--node-rank {r} " in line for r, (line,) in enumerate(replica) if len(nodes) > 1)
    assert main([*argv, "--engine", "trtllm", "--json"]) == 0
    trt = json.loads(capsys.readouterr().out)
    words = shlex.split(trt["trtllm"]["command"])
    assert words[:8] == [
        "mpirun",
        "-np",
        "16",
        "--hostfile",
        "hostfile",
        "--map-by",
        "ppr:8:node",
        "trtllm-llmapi-launch",
    ]
    options = yaml.safe_load(trt["trtllm"]["extra_options_yaml"])
    assert options["tensor_parallel_size"] * options["pipeline_parallel_size"] == 16
    for engine in trt["deployment"]["engines"]:  # one mpirun line per engine, on its first node
        for replica, nodes in zip(engine["trtllm"]["commands"], engine["nodes"], strict=True):
            assert len(replica) == len(nodes) and len(replica[0]) == 1 and not any(replica[1:])
            assert replica[0][0].startswith("mpirun ") == (len(nodes) > 1)
    evaluate = ["evaluate", "deepseek-ai/DeepSeek-V3", "--cluster", "2x8xH100", "--tp", "8", "--pp", "2"]
    assert main([*evaluate, "--engine", "sglang"]) in (0, 1)
    out = capsys.readouterr().out
    assert "node rank 1:" in out and "--node-rank 1 --dist-init-addr ${HEAD_IP}:5000" in out
    assert main([*evaluate, "--engine", "trtllm"]) in (0, 1)
    assert "mpirun -np 16" in capsys.readouterr().out
    for engine in ("sglang", "trtllm"):  # 12 GPUs would take one node and half of another
        split = ["evaluate", "meta-llama/Llama-3.1-70B", "--cluster", "2x8xH100", "--tp", "4", "--pp", "3"]
        assert main([*split, "--engine", engine]) == 2
        assert "span whole nodes" in capsys.readouterr().err


def _nvfp4_checkpoint(tmp_path: Path, zoo_id: str) -> Path:
    """A ModelOpt NVFP4 checkpoint directory as NVIDIA publishes them (config.json + hf_quant_config.json)."""
    from autoparallel.models.zoo import find_entry

    path = tmp_path / "nvfp4"
    path.mkdir()
    entry = find_entry(zoo_id)
    assert entry is not None
    (path / "config.json").write_text(json.dumps(entry.config))
    quant = {
        "quant_algo": "NVFP4",
        "kv_cache_quant_algo": "FP8",
        "group_size": 16,
        "exclude_modules": ["lm_head"],
    }
    (path / "hf_quant_config.json").write_text(
        json.dumps({"producer": {"name": "modelopt"}, "quantization": quant})
    )
    return path


def test_nvfp4_checkpoints_plan_on_blackwell_and_only_vllm_runs_them_on_hopper(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from autoparallel.hardware import get_gpu
    from autoparallel.models import load_model
    from autoparallel.perf.serving_engines import engine_runtime_problem

    path = _nvfp4_checkpoint(tmp_path, "Qwen/Qwen3-8B")
    model = load_model(str(path))
    assert model.quantization is not None and model.quantization.method.value == "modelopt_fp4"
    for engine in ("sglang", "trtllm"):
        assert "Blackwell" in (engine_runtime_problem(engine, None, "auto", model, get_gpu("H100")) or "")
        assert engine_runtime_problem(engine, None, "auto", model, get_gpu("B200")) is None
    assert engine_runtime_problem("vllm", None, "auto", model, get_gpu("H100")) is None  # FP4 Marlin
    assert "SM75" in (engine_runtime_problem("vllm", None, "auto", model, get_gpu("V100")) or "")
    # Turing: FP4 Marlin, but vLLM 0.32 has no FP8 KV cache there, and the checkpoint declares one.
    assert "no FP8 KV cache" in (engine_runtime_problem("vllm", None, "auto", model, get_gpu("T4")) or "")
    assert engine_runtime_problem("vllm", None, "float16", model, get_gpu("T4")) is None
    assert main(["evaluate", str(path), "--cluster", "1x1xV100", "--tp", "1"]) == 2
    assert "FP4 Marlin" in capsys.readouterr().err
    for engine in ("trtllm", "sglang", "vllm"):
        args = ["plan", str(path), "--cluster", "1x2xB200", "--engine", engine, "--disagg", "off", "--json"]
        assert main(args) == 0
        plan = json.loads(capsys.readouterr().out)
        assert plan["deployment"]["throughput_tokens_per_s"] > 0
    assert main(["evaluate", str(path), "--cluster", "1x1xH100", "--engine", "trtllm", "--tp", "1"]) == 2
    assert "FP4 tensor cores" in capsys.readouterr().err


def test_trtllm_needs_fp8_tensor_cores_for_fp8_weights_or_kv() -> None:
    """TensorRT-LLM's support matrix lists Ampere as FP32/FP16/BF16/INT8/INT4: an FP8 checkpoint or KV
    cache is refused there, while vLLM and SGLang run FP8 weights as Marlin W8A16 GEMMs."""
    from autoparallel.hardware import get_gpu
    from autoparallel.models import load_model
    from autoparallel.perf.serving_engines import engine_runtime_problem

    a100, h100 = get_gpu("A100-80G"), get_gpu("H100")
    fp8, plain = load_model("nvidia/Llama-3.1-70B-Instruct-FP8"), load_model("meta-llama/Llama-3.1-70B")
    assert "FP8 weights" in (engine_runtime_problem("trtllm", None, "auto", fp8, a100) or "")
    assert "FP8 KV cache" in (engine_runtime_problem("trtllm", None, "fp8", plain, a100) or "")
    assert engine_runtime_problem("trtllm", None, "auto", plain, a100) is None
    assert engine_runtime_problem("trtllm", None, "auto", fp8, h100) is None
    # vLLM runs a ModelOpt FP8 checkpoint from compute capability 8.0 (`ModelOptFp8Config`), SGLang
    # from 8.9 (its `ModelOptFp8Config.get_min_capability`); a block-FP8 one from 7.5 and 8.0 (`Fp8Config`).
    assert engine_runtime_problem("vllm", None, "auto", fp8, a100) is None
    assert "8.9" in (engine_runtime_problem("sglang", None, "auto", fp8, a100) or "")
    block = load_model("Qwen/Qwen3-32B-FP8")
    for engine in ("vllm", "sglang"):
        assert engine_runtime_problem(engine, None, "auto", block, a100) is None


def test_engines_run_only_on_the_gpus_they_support() -> None:
    """TensorRT-LLM is NVIDIA's, Ampere and later (its supported-hardware list); DeepSeek Sparse
    Attention has kernels for Hopper and Blackwell (and, in vLLM, AMD's AITER): a V3.2 plan on an
    A100 or an L40S is refused by every engine, with the architecture named."""
    from autoparallel.hardware import get_gpu
    from autoparallel.models import load_model
    from autoparallel.perf.serving_engines import engine_runtime_problem

    llama, v32 = load_model("meta-llama/Llama-3.1-8B"), load_model("deepseek-ai/DeepSeek-V3.2")
    for name in ("MI300X", "MI325X", "T4", "V100"):
        assert "NVIDIA Ampere" in (engine_runtime_problem("trtllm", None, "auto", llama, get_gpu(name)) or "")
    for name in ("A100-80G", "A10G", "L40S", "H100", "B200"):
        assert engine_runtime_problem("trtllm", None, "auto", llama, get_gpu(name)) is None
    for engine in ("vllm", "sglang", "trtllm"):
        for name in ("A100-80G", "L40S"):
            problem = engine_runtime_problem(engine, None, "auto", v32, get_gpu(name))
            assert problem is not None and "Sparse Attention" in problem and "Hopper" in problem
            assert engine_runtime_problem(engine, None, "auto", llama, get_gpu(name)) is None
        for name in ("H200", "B200"):
            assert engine_runtime_problem(engine, None, "auto", v32, get_gpu(name)) is None
    assert engine_runtime_problem("vllm", None, "auto", v32, get_gpu("MI300X")) is None  # ROCm AITER
    newer = get_gpu("B200").model_copy(update={"name": "Rubin-test", "arch": "rubin"})  # a custom GPU file's
    for engine in ("vllm", "sglang", "trtllm"):
        assert engine_runtime_problem(engine, None, "auto", v32, newer) is None
    on_amd = engine_runtime_problem("sglang", None, "auto", v32, get_gpu("MI300X"))
    assert "Sparse Attention" in (on_amd or "")


def test_a_pool_no_engine_runs_the_model_on_stays_idle_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On H200 + A100 nodes a V3.2 deployment uses the H200s and names why the A100s stay idle (two
    A100 nodes hold it at pp=2, so memory is not the reason); on A100s alone it is one line, exit 2."""
    v32 = "deepseek-ai/DeepSeek-V3.2"
    assert main(["plan", v32, "--cluster", "8xH200+2x8xA100-80G", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["deployment"]
    assert {e["pool"] for e in plan["engines"]} == {0}
    assert any("A100" in r and "Sparse Attention" in r for r in plan["idle_reasons"])
    assert main(["plan", v32, "--cluster", "2x8xA100-80G"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Sparse Attention" in err
    assert main(["evaluate", "meta-llama/Llama-3.1-8B", "--cluster", "1xMI300X", "--engine", "trtllm"]) == 2
    assert "not on MI300X" in capsys.readouterr().err


def test_quantized_checkpoints_need_the_engines_least_compute_capability() -> None:
    """Each engine's start-up check (`capability < quant_config.get_min_capability()`): MXFP4 from 8.0,
    FP8 from 7.5 in vLLM and 8.0 in SGLang, AWQ from 7.5, GPTQ from 7.5 in vLLM (Marlin only) and 6.0 in
    SGLang; online FP8 as FP8."""
    from autoparallel.hardware import get_gpu
    from autoparallel.models import load_model
    from autoparallel.perf.serving_engines import engine_runtime_problem

    v100, t4, a100 = get_gpu("V100-SXM2-32G"), get_gpu("T4"), get_gpu("A100-80G")
    oss, fp8 = load_model("openai/gpt-oss-20b"), load_model("Qwen/Qwen3-32B-FP8")
    awq, gptq = load_model("Orion-zhen/QwQ-32B-Preview-AWQ"), load_model("TheBloke/Llama-2-13B-chat-GPTQ")
    assert gptq.quantization is not None  # without activation ordering, which vLLM 0.32 refuses anywhere
    gptq = gptq.model_copy(update={"quantization": gptq.quantization.model_copy(update={"act_order": False})})
    plain = load_model("meta-llama/Llama-3.1-8B")
    for engine in ("vllm", "sglang"):
        assert "8.0 and up" in (engine_runtime_problem(engine, None, "auto", oss, t4) or "")
        assert engine_runtime_problem(engine, None, "auto", oss, a100) is None
        assert engine_runtime_problem(engine, None, "auto", awq, t4) is None
        assert engine_runtime_problem(engine, None, "auto", gptq, t4) is None
    assert "7.5 and up" in (engine_runtime_problem("vllm", None, "auto", awq, v100) or "")
    # vLLM 0.32 runs GPTQ on Marlin only (`verify_marlin_supported`: no quant type below 7.5).
    assert "GPTQ weights on compute capability 7.5" in (
        engine_runtime_problem("vllm", None, "auto", gptq, v100) or ""
    )
    assert engine_runtime_problem("vllm", "fp8", "auto", plain, v100) is not None
    assert engine_runtime_problem("vllm", None, "auto", plain, v100) is None
    # SGLang does not start on Volta at all ("SGLang only supports sm75 and above.").
    assert "7.5 (Turing)" in (engine_runtime_problem("sglang", None, "auto", plain, v100) or "")
    assert "8.0 and up" in (engine_runtime_problem("sglang", "fp8", "auto", plain, t4) or "")
    assert engine_runtime_problem("vllm", None, "auto", fp8, t4) is None
    assert "8.0 and up" in (engine_runtime_problem("sglang", None, "auto", fp8, t4) or "")
    # TensorRT-LLM's MXFP4 experts: Blackwell (TRTLLM backend) and Hopper (TRITON) only.
    assert "9.0 and up" in (engine_runtime_problem("trtllm", None, "auto", oss, a100) or "")
    assert engine_runtime_problem("trtllm", None, "auto", oss, get_gpu("H100")) is None


def test_disaggregation_counts_only_the_pools_that_can_run_the_model() -> None:
    """DeepSeek-V3.2 on 8 H200s + 16 A100s: its smallest engine takes the 8 H200s, and the A100s
    cannot run it, so a prefill and a decode engine do not fit; the reason counts the usable pool,
    not the 24 GPUs of the cluster (the message had read "cannot carry None req/s")."""
    from autoparallel.disagg import compare_disagg
    from autoparallel.errors import InfeasibleError
    from autoparallel.hardware import Cluster
    from autoparallel.workload import Serving

    cluster = Cluster.parse("8xH200+2x8xA100-80G")
    with pytest.raises(InfeasibleError, match="the pools that run it have 8"):
        compare_disagg("deepseek-ai/DeepSeek-V3.2", Serving.preset("chatbot"), cluster, mode="on")


def test_vllm_refuses_an_architecture_its_release_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    model = "meta-llama/Llama-3.2-11B-Vision"
    assert main(["plan", model, "--cluster", "1x8xH100", "--disagg", "off"]) == 2
    assert "vLLM 0.32 does not run MllamaForConditionalGeneration" in capsys.readouterr().err
    assert (
        main(["plan", model, "--cluster", "1x8xH100", "--engine", "auto", "--disagg", "off", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["engine"] in ("sglang", "trtllm")
    assert main(["memory", model, "--gpu", "H100"]) == 1
    assert "vLLM ran it until v0.10.2" in capsys.readouterr().out
    assert main(["memory", model, "--gpu", "H100", "--vllm-version", "0.10.2"]) == 0


def test_an_fp8_kv_cache_only_where_a_backend_reads_one(capsys: pytest.CaptureFixture[str]) -> None:
    """vLLM 0.32's Triton attention and Triton MLA backends store FP8 only from SM89; FlashInfer (SM80 on)
    covers plain attention on Ampere; MLA on Ampere has only Triton MLA."""
    from autoparallel.hardware import get_gpu
    from autoparallel.models import load_model
    from autoparallel.perf.engine_support import engine_runtime_problem

    mla, plain = load_model("deepseek-ai/DeepSeek-Coder-V2-Lite-Base"), load_model("meta-llama/Llama-3.1-8B")
    for model, gpu, runs in (
        (mla, "A100", False),
        (mla, "L40S", True),
        (mla, "H100", True),
        (plain, "A100", True),
        (plain, "A10", True),
        (plain, "T4", False),
        (plain, "V100", False),
        (plain, "MI300X", True),
        (load_model("openai/gpt-oss-20b"), "A100", False),  # attention sinks: no FlashInfer on SM80
        (load_model("microsoft/phi-2"), "A100", False),  # head size 80: no FlashInfer
        (load_model("google/gemma-2-9b"), "A100", True),  # head size 256
    ):
        problem = engine_runtime_problem("vllm", None, "fp8", model, get_gpu(gpu))
        assert (problem is None) == runs, (model.name, gpu, problem)
        assert engine_runtime_problem("vllm", None, "auto", model, get_gpu(gpu)) is None
        assert engine_runtime_problem("vllm", None, "fp8", model, get_gpu(gpu), vllm_version="0.19") is None
    assert "SM80" in (engine_runtime_problem("vllm", None, "bfloat16", plain, get_gpu("V100")) or "")
    # SGLang starts from sm75 ("SGLang only supports sm75 and above."): T4 yes, V100 no.
    assert "7.5" in (engine_runtime_problem("sglang", None, "auto", plain, get_gpu("V100")) or "")
    assert engine_runtime_problem("sglang", None, "auto", plain, get_gpu("T4")) is None
    assert engine_runtime_problem("vllm", None, "float16", plain, get_gpu("V100")) is None
    # SGLang runs MLA below Hopper on its Triton backend: E4M3 cannot be read below SM89, E5M2 can.
    a100 = get_gpu("A100")
    assert "Triton" in (engine_runtime_problem("sglang", None, "fp8_e4m3", mla, a100) or "")
    assert engine_runtime_problem("sglang", None, "fp8_e5m2", mla, a100) is None
    assert engine_runtime_problem("sglang", None, "fp8_e4m3", mla, get_gpu("L40S")) is None
    assert engine_runtime_problem("sglang", None, "fp8_e4m3", plain, a100) is None  # FlashInfer
    # On Blackwell SGLang runs DeepSeek-V3's architecture on trtllm_mla, which refuses E5M2 (its
    # ServerArgs: "only supports kv-cache-dtype of fp8_e4m3, fp4_e2m1, or auto"); MLA on FlashInfer
    # (DeepSeek-V2's architecture) and gpt-oss's trtllm_mha take it.
    b200, v3 = get_gpu("B200"), load_model("deepseek-ai/DeepSeek-V3")
    assert "TensorRT-LLM MLA" in (engine_runtime_problem("sglang", None, "fp8_e5m2", v3, b200) or "")
    assert engine_runtime_problem("sglang", None, "fp8_e4m3", v3, b200) is None
    assert engine_runtime_problem("sglang", None, "fp8_e5m2", v3, get_gpu("H100")) is None
    assert engine_runtime_problem("sglang", None, "fp8_e5m2", mla, b200) is None
    assert engine_runtime_problem("sglang", None, "fp8_e5m2", load_model("openai/gpt-oss-20b"), b200) is None
    lite = "deepseek-ai/DeepSeek-Coder-V2-Lite-Base"
    args = ["plan", lite, "--cluster", "1xA100", "--kv-cache-dtype", "auto,fp8", "--disagg", "off", "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["config"]["kv_cache_dtype"] == "auto"
    assert main(["evaluate", lite, "--cluster", "1xA100", "--tp", "1", "--kv-cache-dtype", "fp8"]) == 2
    assert "Triton MLA" in capsys.readouterr().err


def test_why_names_only_the_factors_the_step_reads() -> None:
    """A dense BF16 model's comparison listed the block-FP8 MoE kernel's rate among its reasons."""
    import autoparallel as ap

    plan = ap.solve(
        "meta-llama/Llama-3.1-70B",
        "1x8xH100",
        options=ap.ServingOptions(engines=("vllm", "sglang", "trtllm"), quantizations=("fp8",)),
    )
    from autoparallel.engine_compare import why

    whys = " ".join(why(plan, b.plan) for b in plan.engines if b.plan is not None and b.engine != plan.engine)
    assert "efficiency factors" in whys and "moe" not in whys and "block_fp8" not in whys, whys


def test_the_memory_reason_quotes_the_layout_nearest_to_fitting(capsys: pytest.CaptureFixture[str]) -> None:
    """SGLang's tables clip a negative KV pool at 0, so the least need won: DeepSeek-V3 on 8 H100s was
    quoted at tp=1 pp=8 (85.79 GiB of weights per GPU) where tp=8 leaves more room (79.31 GiB)."""
    code = main(["plan", "deepseek-ai/DeepSeek-V3", "--cluster", "1x8xH100", "--engine", "auto"])
    err = capsys.readouterr().err
    assert code == 1
    for engine in ("SGLang", "TensorRT-LLM"):
        assert f"{engine} at best (tp=8 pp=1" in err, err


def test_an_engines_memory_reason_is_in_its_own_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    """The SGLang / TensorRT-LLM reason printed the tables' figure, a pool clipped at 0 counted in vLLM's
    budget: "needing 36.43 GiB per GPU of 36.40" for a layout whose weights leave a pool of -1.1 GiB."""
    assert (
        main(["plan", "mistralai/Mixtral-8x22B-v0.1", "--cluster", "2x4xA100-40G", "--engine", "sglang"]) == 1
    )
    err = capsys.readouterr().err
    assert "--mem-fraction-static" in err and "leave a KV pool of 0.00 GiB (0 tokens)" in err
    assert "needing" not in err
