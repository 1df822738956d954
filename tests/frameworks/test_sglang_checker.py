"""SGLang's own start-up arguments code over what the planner emits and prices (opt-in).

Runs check_sglang_args.py with $SGLANG_CHECK_PYTHON (SGLang 0.5.6 and transformers 4.57.1, on a CPU):
`ServerArgs.__post_init__` and `check_server_args` for each line, with the GPU's memory and compute
capability and the zoo entry's config.json. About 10 s per test.

    SGLANG_CHECK_PYTHON=/path/to/python uv run pytest tests/frameworks/test_sglang_checker.py
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from sglang_checker import CHECKER_MARKS, assert_all_start, check_sglang_lines, sglang_case

from autoparallel.configs import ServingConfig
from autoparallel.frameworks.sglang import sglang_command
from autoparallel.hardware import GPU, Cluster, get_gpu
from autoparallel.memory.sglang import aiter_fraction_scale, profiled_cell_ratio, sglang_stored_kv_dtype
from autoparallel.models import list_models, load_model
from autoparallel.perf.engine_support import REMOTE_CONFIG_MODEL_TYPES, engine_runtime_problem
from autoparallel.perf.serving_engines import engine_kv_for

pytestmark = CHECKER_MARKS

GPUS = ("T4", "A10", "L40S", "A100-SXM-40G", "A100-SXM-80G", "H100-SXM", "H20", "H200", "B200", "MI300X")
"""One GPU per memory band of SGLang's defaults (< 20, < 35, < 60, < 90, < 160 GiB and above) and per
architecture whose backends differ (Turing, Ampere, Ada, Hopper, Blackwell, AMD CDNA3 under ROCm)."""
LAYOUTS = (
    ("Qwen/Qwen3-8B", ServingConfig(tp=1)),
    ("Qwen/Qwen3-8B", ServingConfig(tp=4)),
    ("meta-llama/Llama-3.1-70B", ServingConfig(tp=8)),
    ("meta-llama/Llama-3.1-70B", ServingConfig(tp=4, pp=2)),
    ("Qwen/Qwen3-30B-A3B", ServingConfig(tp=1, replicas=8, enable_expert_parallel=True)),
    ("deepseek-ai/DeepSeek-V3", ServingConfig(tp=8)),
    ("deepseek-ai/DeepSeek-V3.2", ServingConfig(tp=8)),
    ("deepseek-ai/DeepSeek-V3.2", ServingConfig(tp=1, replicas=8, enable_expert_parallel=True)),
    ("google/gemma-3-27b-it", ServingConfig(tp=2)),
    ("Qwen/Qwen2.5-VL-7B-Instruct", ServingConfig(tp=1)),
    ("mistralai/Mistral-Small-3.1-24B-Instruct-2503", ServingConfig(tp=2)),
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", ServingConfig(tp=4)),
    ("openai/gpt-oss-120b", ServingConfig(tp=2)),
    ("meta-llama/Llama-4-Scout-17B-16E-Instruct", ServingConfig(tp=4)),
)
"""Dense (also in pipeline stages), MoE with attention DP, MLA, DeepSeek Sparse Attention (TP and
attention DP), sliding window, multimodal (Gemma 3, served text-only by default; Qwen2.5-VL and
Mistral 3, whose vision towers scale the default fraction), linear attention, and the architectures
SGLang gives TensorRT-LLM kernels on Blackwell."""


def _configs() -> dict[str, dict[str, object]]:
    return {e.id: e.config for e in list_models()}


def _priced(model_id: str, config: ServingConfig, gpu: GPU) -> tuple[dict[str, Any], dict[str, float | str]]:
    """A line without `--mem-fraction-static` for `config`, and what the planner prices SGLang's pool
    with (`engine_kv_for`): the fraction after SGLang's own scaling, chunked-prefill size per rank,
    CUDA-graph batch, page size, stored KV dtype and the bytes a token is counted at."""
    model = load_model(model_id)
    line = re.sub(
        r" --mem-fraction-static \S+",
        "",
        sglang_command(model_id, config, mem_fraction_static=1, model=model, gpu=gpu),
    )
    kv, _ = engine_kv_for("sglang", model, Cluster.from_shape(nodes=1, gpus_per_node=8, gpu=gpu), config)
    stored = sglang_stored_kv_dtype(model, gpu, config.kv_cache_dtype)
    server_tp = config.tp * (config.replicas if config.shares_experts else 1)
    priced: dict[str, float | str] = {
        "mem_fraction_static": float(kv.rule.split()[-1])
        * aiter_fraction_scale(model, gpu, server_tp, config.max_model_len),
        "chunked_prefill_size": kv.step_tokens,
        "cuda_graph_max_bs": kv.cuda_graph_max_batch,
        "page_size": kv.block_size,
        "kv_cache_dtype": stored,
        "profiled_cell_bytes": round(kv.kv_bytes_per_token_per_gpu * profiled_cell_ratio(model, stored)),
    }
    return sglang_case(line, _configs()[model_id], gpu), priced


def _assert_priced_as_resolved(
    labels: list[str], cases: list[dict[str, Any]], priced: list[dict[str, float | str]]
) -> None:
    wrong = []
    for what, want, result in zip(labels, priced, check_sglang_lines(cases), strict=True):
        if not result["accepted"]:
            wrong.append(f"{what}: refused: {result['error']}")
            continue
        resolved = dict(result["resolved"])
        if resolved["kv_cache_dtype"] == "bfloat16":  # DeepSeek Sparse Attention's 16-bit cache on Hopper
            resolved["kv_cache_dtype"] = "auto"
        if resolved["profiled_cell_bytes"] is None:  # `auto` on a checkpoint that declares its cache,
            for key in ("profiled_cell_bytes", "kv_cache_dtype"):  # which SGLang reads at model load
                resolved[key] = want[key]
        # A multimodal model's default is scaled after SGLang rounds it; the line passes, and the pool
        # is priced at, 3 decimals of it.
        if abs(float(resolved["mem_fraction_static"]) - float(want["mem_fraction_static"])) <= 5e-4:
            resolved["mem_fraction_static"] = want["mem_fraction_static"]
        differ = {k: (v, resolved[k]) for k, v in want.items() if v != resolved[k]}
        if differ:
            wrong.append(f"{what}: (priced, SGLang) {differ}")
    assert not wrong, "\n".join(wrong)


def test_sglang_resolves_the_defaults_the_pool_is_priced_with() -> None:
    """The `LAYOUTS` on every GPU of `GPUS` at a 4,096- and a 32,768-token context: SGLang's own
    fraction (after its own scaling), chunked-prefill size (per attention-DP rank), CUDA-graph batch,
    page size, KV dtype and the bytes a token is counted at are the ones the planner prices SGLang's
    pool with."""
    labels, cases, priced = [], [], []
    for name, context in itertools.product(GPUS, (4096, 32768)):
        gpu = get_gpu(name)
        for model_id, layout in LAYOUTS:
            if engine_runtime_problem("sglang", None, "auto", load_model(model_id), gpu) is not None:
                continue  # refused before any line is written (MXFP4 on CDNA3)
            config = layout.model_copy(update={"max_model_len": context})
            case, want = _priced(model_id, config, gpu)
            labels.append(f"{model_id} {config.tp}x{config.replicas} pp{config.pp} at {context} on {name}")
            cases.append(case)
            priced.append(want)
    _assert_priced_as_resolved(labels, cases, priced)


def test_every_zoo_pool_is_priced_as_sglang_sizes_it() -> None:
    """Every zoo model SGLang runs, at its widest valid tp <= 8 and a 16k context (or its own, when
    shorter), with a 16-bit and an FP8 cache, on a T4, an H100, a B200 and an MI300X: the same checks."""
    labels, cases, priced = [], [], []
    for name in ("T4", "H100-SXM", "B200", "MI300X"):
        gpu = get_gpu(name)
        for model_id in _configs():
            model = load_model(model_id)
            tp = max(t for t in (1, 2, 4, 8) if not model.tp_violations(t))
            for kv in ("auto", "fp8_e4m3"):
                if engine_runtime_problem("sglang", None, kv, model, gpu) is not None:
                    continue
                mml = min(16384, model.max_position_embeddings)
                case, want = _priced(
                    model_id, ServingConfig(tp=tp, max_model_len=mml, kv_cache_dtype=kv), gpu
                )
                labels.append(f"{model_id} tp{tp} {kv} on {name}")
                cases.append(case)
                priced.append(want)
    assert len(cases) > 400
    _assert_priced_as_resolved(labels, cases, priced)


@pytest.mark.parametrize("gpu_name", ["H100-SXM", "B200", "MI300X"])
def test_zoo_lines_accepted_by_sglang(gpu_name: str) -> None:
    """Every zoo model's line (the widest valid tp <= 8, attention DP + EP over two ranks for MoE)
    passes SGLang's start-up arguments code; the line carries `--trust-remote-code` exactly for the
    checkpoints SGLang cannot read without it. Models the planner refuses on this GPU for the engine's
    own reasons (`engine_runtime_problem`) are left out: no line is written for them."""
    configs, gpu, cases, ids = _configs(), get_gpu(gpu_name), [], []
    for model_id, config_json in configs.items():
        model = load_model(model_id)
        if engine_runtime_problem("sglang", None, "auto", model, gpu) is not None:
            continue
        tp = max(t for t in range(1, 9) if not model.tp_violations(t))
        config = ServingConfig(
            tp=tp,
            replicas=2 if model.is_moe else 1,
            enable_expert_parallel=model.is_moe,
            max_model_len=min(8192, model.max_position_embeddings),
            max_num_seqs=128,
        )
        line = sglang_command(model_id, config, mem_fraction_static=0.85, model=model, gpu=gpu)
        assert ("--trust-remote-code" in line) == (model.model_type in REMOTE_CONFIG_MODEL_TYPES), line
        cases.append(sglang_case(line, config_json, gpu))
        ids.append(model_id)
    assert_all_start(ids, cases)


def test_remote_config_checkpoint_needs_the_flag() -> None:
    """Kimi-K2's line without `--trust-remote-code` is refused by SGLang (transformers 4.57.1 has no
    `kimi_k2` config): the flag is needed, not decoration."""
    model_id = "moonshotai/Kimi-K2-Instruct"
    line = sglang_command(model_id, ServingConfig(tp=8), mem_fraction_static=0.85)
    (result,) = check_sglang_lines([sglang_case(line, _configs()[model_id], get_gpu("H200"))])
    assert not result["accepted"] and "kimi_k2" in result["error"]


GRID_MODELS = (
    "meta-llama/Llama-3.1-8B",
    "Qwen/Qwen3-30B-A3B",
    "deepseek-ai/DeepSeek-Coder-V2-Lite-Base",
    "deepseek-ai/DeepSeek-V3",
    "deepseek-ai/DeepSeek-V3.2",
    "openai/gpt-oss-20b",
    "google/gemma-3-12b-it",
    "Qwen/Qwen3-Next-80B-A3B-Instruct",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "Qwen/Qwen3-32B-FP8",
    "Orion-zhen/QwQ-32B-Preview-AWQ",
    "Qwen/Qwen2.5-VL-7B-Instruct",
)


def test_every_line_evaluate_emits_starts_sglang() -> None:
    """`evaluate --engine sglang` over models x GPUs (Ampere, Ada, Hopper, Blackwell) x KV dtypes x
    weight formats x layouts (TP, attention DP + EP, pipeline): every line it emits passes SGLang's
    start-up arguments code; what SGLang's arguments refuse, the planner refuses first (a refusal of
    ours may also be a check SGLang makes later, at model load)."""
    from autoparallel.api import evaluate
    from autoparallel.errors import AutoParallelError

    configs, cases, what = _configs(), [], []
    layouts = {
        "tp": ServingConfig(tp=8),
        "dp-attention": ServingConfig(tp=1, replicas=8, enable_expert_parallel=True),
        "pipeline": ServingConfig(tp=4, pp=2),
    }
    for gpu_name in ("A100-SXM-80G", "L40S", "H100-SXM", "B200", "MI300X"):
        cluster = Cluster.from_shape(nodes=1, gpus_per_node=8, gpu=get_gpu(gpu_name))
        for model_id in GRID_MODELS:
            model = load_model(model_id)
            for kv in ("auto", "fp8_e4m3", "fp8_e5m2"):
                for quant in (None, "fp8"):
                    for name, layout in layouts.items():
                        if name == "dp-attention" and not model.is_moe:
                            continue
                        update = {"kv_cache_dtype": kv, "quantization": quant, "max_model_len": 4096}
                        config = layout.model_copy(update=update)
                        try:
                            plan = evaluate(
                                model_id, cluster, config, "chatbot", compare=False, engine="sglang"
                            )
                        except AutoParallelError:
                            continue
                        cases.append(sglang_case(plan.command, configs[model_id], cluster.gpu))
                        what.append(f"{model_id} {name} kv {kv} quant {quant} on {gpu_name}")
    assert len(cases) > 500
    assert_all_start(what, cases)


def test_what_sglang_refuses_on_rocm_the_planner_refuses_or_works_around() -> None:
    """On an MI300X (ROCm, gfx942): gpt-oss's MXFP4 checkpoint is "Unknown quantization method" to
    SGLang, and the planner refuses it first; Llama 4's default-backend probe raises there, and the
    planner's line names aiter, which starts."""
    from autoparallel.frameworks.sglang import rocm_attention_backend

    mi300x, configs = get_gpu("MI300X"), _configs()
    gpt_oss = load_model("openai/gpt-oss-20b")
    assert "CDNA4" in (engine_runtime_problem("sglang", None, "auto", gpt_oss, mi300x) or "")
    scout_id = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
    scout, config = load_model(scout_id), ServingConfig(tp=4, max_model_len=8192)
    assert (
        rocm_attention_backend(scout, mi300x) == "aiter"
        and rocm_attention_backend(scout, get_gpu("H100")) is None
    )
    plain = sglang_command(scout_id, config, mem_fraction_static=0.8)
    named = sglang_command(scout_id, config, mem_fraction_static=0.8, model=scout, gpu=mi300x)
    oss = sglang_command("openai/gpt-oss-20b", ServingConfig(tp=1), mem_fraction_static=0.8)
    cases = [
        sglang_case(oss, configs["openai/gpt-oss-20b"], mi300x),
        sglang_case(plain, configs[scout_id], mi300x),
        sglang_case(named, configs[scout_id], mi300x),
    ]
    refused_oss, refused_plain, started = check_sglang_lines(cases)
    assert not refused_oss["accepted"] and "mxfp4" in refused_oss["error"]
    assert not refused_plain["accepted"] and "TypeError" in refused_plain["error"]
    assert started["accepted"] and started["resolved"]["attention_backend"] == "aiter", started["error"]


def test_the_reference_rows_named_one_server_resolve_to_one_server() -> None:
    """`benchmarks/serving_accuracy.py` reports `SAME_SERVER` rows as one configuration measured twice:
    SGLang's own arguments code must resolve their published launch lines to the same server (the memory
    fraction aside, which the note names)."""
    import csv
    from pathlib import Path

    from benchmarks.serving_accuracy import DEFAULT_CSV, SAME_SERVER

    if not DEFAULT_CSV.exists():
        pytest.skip(f"reference data not found at {DEFAULT_CSV}")
    with Path(DEFAULT_CSV).open(newline="") as fh:
        notes = {row["row_id"]: row["notes"] for row in csv.DictReader(fh)}
    config = _configs()["deepseek-ai/DeepSeek-V3.2"]
    for rows in SAME_SERVER:
        lines = [re.sub(r"^.*?python3 ", "python ", notes[r]) for r in rows]
        verdicts = check_sglang_lines([sglang_case(line, config, get_gpu("H200")) for line in lines])
        assert all(v["accepted"] for v in verdicts), [v["error"] for v in verdicts]
        resolved = [
            {k: v for k, v in verdict["resolved"].items() if k != "mem_fraction_static"}
            for verdict in verdicts
        ]
        assert all(r == resolved[0] for r in resolved), rows
        assert resolved[0]["enable_dp_attention"] is False and resolved[0]["dp_size"] == 1


PORTS_SCRIPT = r"""
import argparse, json, shlex, sys, types
sys.path.insert(0, sys.argv[1])
import check_sglang_args  # the CPU stand-ins, then SGLang's server_args
check_sglang_args.MISSING_ON_CPU.add("einops")  # imported by the scheduler the DP controller imports
from sglang.srt import server_args as sa
from sglang.srt.managers.data_parallel_controller import DataParallelController

def ports(line):
    parser = argparse.ArgumentParser()
    sa.ServerArgs.add_cli_args(parser)
    ns = parser.parse_args(shlex.split(line)[3:])
    waited, draws = {}, []
    sa.wait_port_available = lambda port, name, *a, **k: waited.setdefault(name, port) > 0
    for end in (0, 1):  # the NCCL port SGLang draws, at either end of its range
        sa.random.randint = lambda lo, hi, end=end: (lo, hi)[end]
        args = sa.PortArgs.init_new(ns)
        draws.append(args.nccl_port)
    fixed = {ns.port} | {port for name, port in waited.items() if name != "nccl_port"}
    names = (args.tokenizer_ipc_name, args.scheduler_input_ipc_name, args.detokenizer_ipc_name,
             args.rpc_ipc_name, args.metrics_ipc_name)
    fixed |= {int(n.rsplit(":", 1)[1]) for n in names if n.startswith("tcp://")}
    if ns.enable_dp_attention:
        seen = []
        fake = types.SimpleNamespace(_broadcast_ports_as_server=lambda endpoint, n, w: seen.append(endpoint))
        DataParallelController._broadcast_worker_ports(fake, ns, [])
        fixed.add(int(seen[0].rsplit(":", 1)[1]))
    drawn = None
    if ns.dist_init_addr is None:  # the TP group's torch store binds the NCCL port (model_runner.py)
        if ns.nccl_port is None:
            drawn = draws
        else:
            fixed.add(ns.nccl_port)
    return {"fixed": sorted(fixed), "drawn": drawn}

print(json.dumps([ports(line) for line in json.load(sys.stdin)]))
"""
"""Per line, the ports SGLang 0.5.6's own code derives (`PortArgs.init_new` with `wait_port_available`
recording what it requires free, `DataParallelController._broadcast_worker_ports` for the handshake):
{"fixed": ports it binds or requires free, "drawn": [lo, hi] of the NCCL port it draws and binds}."""


def _sglang_ports(lines: list[str]) -> list[tuple[set[int], set[int]]]:
    """Per line, by SGLang's own code (`PORTS_SCRIPT`): (ports it needs, ports it draws its NCCL port
    from)."""
    from pathlib import Path

    from fw_golden import run_json_checker
    from sglang_checker import CHECK_PYTHON

    assert CHECK_PYTHON is not None
    found = run_json_checker(
        [CHECK_PYTHON, "-c", PORTS_SCRIPT, str(Path(__file__).parent)], opener="[", stdin=json.dumps(lines)
    )
    return [
        (set(f["fixed"]), set(range(f["drawn"][0], f["drawn"][1] + 1)) if f["drawn"] else set())
        for f in found
    ]


def _apart(ports: list[tuple[set[int], set[int]]]) -> bool:
    """No port a server on the node needs is another's, nor in the range another draws its NCCL port
    from."""
    return all(
        not need & (other | drawn)
        for i, (need, _) in enumerate(ports)
        for j, (other, drawn) in enumerate(ports)
        if i != j
    )


def test_servers_sharing_a_node_get_ports_sglang_keeps_apart() -> None:
    """The deployment's SGLang servers on one node at the chatbot preset (four attention-DP servers of
    2 H100s; eight dense servers of 1): SGLang accepts their lines (`--host 0.0.0.0`,
    `--dist-init-addr 127.0.0.1:P`, `--nccl-port P` included), and by SGLang's own port code no server
    needs a port another takes. The lines as they were (consecutive --port, nothing else) fail that
    check: the first two attention-DP servers needed 8234-8238."""
    from autoparallel.fleet import FleetEntry, solve_fleet
    from autoparallel.solvers.serving.space import ServingOptions

    h100, configs, labels, cases, nodes = get_gpu("H100-SXM"), _configs(), [], [], []
    for model in ("Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-8B"):
        # chatbot: with no limits at all Qwen3-30B-A3B became one tp2 pp4 server (the node shared by none)
        entry = FleetEntry(model=model, workload="chatbot")
        plan = solve_fleet([entry], "1x8xH100", options=ServingOptions(engines=("sglang",)))
        (engine,) = plan.to_dict()["deployment"]["engines"]
        lines = [replica[0][0] for replica in engine["sglang"]["commands"]]
        assert len(lines) > 1 and all("--host 0.0.0.0 " in line for line in lines)
        nodes.append(lines)
        labels += lines
        cases += [sglang_case(line, configs[model], h100) for line in lines]
    assert_all_start(labels, cases)
    nodes.append([re.sub(r" --(dist-init-addr|nccl-port) \S+", "", line) for line in nodes[0]])
    ports = iter(_sglang_ports([line for lines in nodes for line in lines]))
    attention_dp, dense, before = ([next(ports) for _ in lines] for lines in nodes)
    assert _apart(attention_dp) and _apart(dense) and not _apart(before)
    assert set(range(8234, 8239)) <= before[0][0] & before[1][0]
