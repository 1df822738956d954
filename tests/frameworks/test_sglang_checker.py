"""SGLang's own start-up arguments code over what the planner emits and prices (opt-in).

Runs check_sglang_args.py with $SGLANG_CHECK_PYTHON (SGLang 0.5.6 and transformers 4.57.1, on a CPU):
`ServerArgs.__post_init__` and `check_server_args` for each line, with the GPU's memory and compute
capability and the zoo entry's config.json. About 10 s per test.

    SGLANG_CHECK_PYTHON=/path/to/python uv run pytest tests/frameworks/test_sglang_checker.py
"""

from __future__ import annotations

import re

import pytest
from sglang_checker import CHECKER_MARKS, check_sglang_lines, sglang_case

from autoparallel.configs import ServingConfig
from autoparallel.frameworks.sglang import REMOTE_CONFIG_MODEL_TYPES, sglang_command
from autoparallel.hardware import get_gpu
from autoparallel.memory.serving import serving_memory
from autoparallel.memory.sglang import sglang_priced_config, sglang_server_kv, sglang_stored_kv_dtype
from autoparallel.models import list_models, load_model

pytestmark = CHECKER_MARKS

GPUS = ("T4", "A10", "L40S", "A100-SXM-40G", "A100-SXM-80G", "H100-SXM", "H20", "H200", "B200")
"""One GPU per memory band of SGLang's defaults (< 20, < 35, < 60, < 90, < 160 GiB and above) and per
architecture whose backends differ (Turing, Ampere, Ada, Hopper, Blackwell)."""
LAYOUTS = (
    ("Qwen/Qwen3-8B", ServingConfig(tp=1)),
    ("Qwen/Qwen3-8B", ServingConfig(tp=4)),
    ("meta-llama/Llama-3.1-70B", ServingConfig(tp=8)),
    ("Qwen/Qwen3-30B-A3B", ServingConfig(tp=1, replicas=8, enable_expert_parallel=True)),
    ("deepseek-ai/DeepSeek-V3", ServingConfig(tp=8)),
    ("deepseek-ai/DeepSeek-V3.2", ServingConfig(tp=8)),
    ("deepseek-ai/DeepSeek-V3.2", ServingConfig(tp=1, replicas=8, enable_expert_parallel=True)),
    ("google/gemma-3-27b-it", ServingConfig(tp=2)),
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", ServingConfig(tp=4)),
    ("openai/gpt-oss-120b", ServingConfig(tp=2)),
    ("meta-llama/Llama-4-Scout-17B-16E-Instruct", ServingConfig(tp=4)),
)
"""Dense, MoE with attention DP, MLA, DeepSeek Sparse Attention (TP and attention DP), sliding window,
multimodal, linear attention, and the architectures SGLang gives TensorRT-LLM kernels on Blackwell."""


def _configs() -> dict[str, dict[str, object]]:
    return {e.id: e.config for e in list_models()}


def test_sglang_resolves_the_defaults_the_pool_is_priced_with() -> None:
    """A line without `--mem-fraction-static`: SGLang's own fraction, chunked-prefill size (per attention-DP
    rank), CUDA-graph batch, page size and KV dtype are the ones memory/sglang.py prices the pool with."""
    configs, cases, ours = _configs(), [], []
    for name in GPUS:
        gpu = get_gpu(name)
        for model_id, layout in LAYOUTS:
            model, config = load_model(model_id), layout.model_copy(update={"max_model_len": 4096})
            line = re.sub(
                r" --mem-fraction-static \S+", "", sglang_command(model_id, config, mem_fraction_static=1)
            )
            memory = serving_memory(model, gpu, sglang_priced_config(model, gpu, config))
            kv = sglang_server_kv(model, memory, gpu, config)
            cases.append(sglang_case(line, configs[model_id], gpu))
            priced = {
                "mem_fraction_static": float(kv.rule.split()[-1]),
                "chunked_prefill_size": kv.step_tokens,
                "cuda_graph_max_bs": kv.cuda_graph_max_batch,
                "page_size": kv.block_size,
                "kv_cache_dtype": sglang_stored_kv_dtype(model, gpu, "auto"),
            }
            ours.append((f"{model_id} {config.tp}x{config.replicas} on {name}", priced))
    wrong = []
    for (what, priced), result in zip(ours, check_sglang_lines(cases), strict=True):
        assert result["accepted"], f"{what}: {result['error']}"
        resolved = dict(result["resolved"])
        if resolved["kv_cache_dtype"] == "bfloat16":  # DeepSeek Sparse Attention's 16-bit cache on Hopper
            resolved["kv_cache_dtype"] = "auto"
        differ = {k: (v, resolved[k]) for k, v in priced.items() if v != resolved[k]}
        if differ:
            wrong.append(f"{what}: (priced, SGLang) {differ}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("gpu_name", ["H100-SXM", "B200"])
def test_zoo_lines_accepted_by_sglang(gpu_name: str) -> None:
    """Every zoo model's line (the widest valid tp <= 8, attention DP + EP over two ranks for MoE)
    passes SGLang's start-up arguments code; the line carries `--trust-remote-code` exactly for the
    checkpoints SGLang cannot read without it."""
    configs, gpu, cases, ids = _configs(), get_gpu(gpu_name), [], []
    for model_id, config_json in configs.items():
        model = load_model(model_id)
        tp = max(t for t in range(1, 9) if not model.tp_violations(t))
        config = ServingConfig(
            tp=tp,
            replicas=2 if model.is_moe else 1,
            enable_expert_parallel=model.is_moe,
            max_model_len=min(8192, model.max_position_embeddings),
            max_num_seqs=128,
        )
        line = sglang_command(model_id, config, mem_fraction_static=0.85, model=model)
        assert ("--trust-remote-code" in line) == (model.model_type in REMOTE_CONFIG_MODEL_TYPES), line
        cases.append(sglang_case(line, config_json, gpu))
        ids.append(model_id)
    refused = [
        f"{model_id}: {r['error']}"
        for model_id, r in zip(ids, check_sglang_lines(cases), strict=True)
        if not r["accepted"]
    ]
    assert not refused, "\n".join(refused)


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
    from autoparallel.api import evaluate_engine
    from autoparallel.errors import AutoParallelError
    from autoparallel.hardware import Cluster

    configs, cases, what = _configs(), [], []
    layouts = {
        "tp": ServingConfig(tp=8),
        "dp-attention": ServingConfig(tp=1, replicas=8, enable_expert_parallel=True),
        "pipeline": ServingConfig(tp=4, pp=2),
    }
    for gpu_name in ("A100-SXM-80G", "L40S", "H100-SXM", "B200"):
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
                            ev = evaluate_engine(model_id, cluster, config, "chatbot", "sglang")
                        except AutoParallelError:
                            continue
                        cases.append(sglang_case(ev.command, configs[model_id], cluster.gpu))
                        what.append(f"{model_id} {name} kv {kv} quant {quant} on {gpu_name}")
    assert len(cases) > 500
    refused = [
        f"{w}: {r['error']}"
        for w, r in zip(what, check_sglang_lines(cases), strict=True)
        if not r["accepted"]
    ]
    assert not refused, "\n".join(refused)
