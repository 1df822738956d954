"""Emitted `vllm serve` lines checked by vLLM 0.32's own parser and engine config (opt-in).

Runs ../shared/tools/check_vllm_args.py with $VLLM_CHECK_PYTHON (the vLLM 0.32 CPU checker env of
tools/README.md) over a command for every zoo model, with a folder holding only the zoo entry's
config.json (`--config-dir`), so vLLM builds its full engine config: heads % tp, max_model_len vs the
model, expert parallelism on a MoE model. About 7 s per command.

    VLLM_CHECK_PYTHON=~/.vllmcheck/bin/python uv run pytest tests/frameworks/test_vllm_checker.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from vllm_checker import CHECKER_MARKS, check_vllm_command

from autoparallel.configs import ServingConfig
from autoparallel.frameworks.vllm import vllm_command, vllm_launch, vllm_yaml
from autoparallel.hardware import Cluster
from autoparallel.models import list_models, load_model

pytestmark = CHECKER_MARKS

KNOWN_REJECTED = {
    "TheBloke/Llama-2-13B-chat-GPTQ": (
        "vLLM 0.32 no longer supports GPTQ act-order checkpoints (desc_act=True); no flag changes that"
    ),
}
"""Zoo models vLLM 0.32 refuses whatever the flags, with vLLM's reason."""

CHECKER_ENV_GAPS = {
    "failed to be inspected": "the checker env lacks torchvision, which vLLM's multimodal models import",
    "Failed to import Ray": "the checker env lacks Ray (put a Ray install on PYTHONPATH to check Ray)",
    "Can't load image processor": "vLLM reads this multimodal model's preprocessor_config.json, and the "
    "--config-dir folder holds only config.json",
}
"""Rejections caused by the checker environment, not by the emitted flags."""


def _assert_accepted(result: dict[str, object], what: str) -> None:
    if result["accepted"]:
        return
    text = " ".join(str(e) for e in result["errors"])  # type: ignore[attr-defined]
    for marker, why in CHECKER_ENV_GAPS.items():
        if marker in text:
            pytest.skip(f"{what}: {why}")
    pytest.fail(f"vLLM rejected {what} at stage {result['stage']}: {text}")


def _config_dir(tmp_path: Path, model_id: str) -> Path:
    entry = next(e for e in list_models() if e.id == model_id)
    (tmp_path / "config.json").write_text(json.dumps(entry.config), encoding="utf-8")
    return tmp_path


def _plan(model_id: str) -> ServingConfig:
    """The widest valid tp <= 8, expert parallelism over two replicas for MoE models."""
    model = load_model(model_id)
    tp = max(t for t in range(1, 9) if not model.tp_violations(t))
    moe = model.is_moe
    return ServingConfig(
        tp=tp,
        replicas=2 if moe else 1,
        enable_expert_parallel=moe,
        max_model_len=min(8192, model.max_position_embeddings),
        max_num_seqs=128,
    )


@pytest.mark.parametrize("model_id", [e.id for e in list_models()])
def test_zoo_command_accepted_by_vllm(model_id: str, tmp_path: Path) -> None:
    command = vllm_command(model_id, _plan(model_id), model=load_model(model_id))
    result = check_vllm_command(command, _config_dir(tmp_path, model_id))
    if model_id in KNOWN_REJECTED:
        assert not result["accepted"], f"{model_id} is accepted now: remove it from KNOWN_REJECTED"
        pytest.xfail(KNOWN_REJECTED[model_id])
    _assert_accepted(result, command)


def test_yaml_config_accepted_by_vllm(tmp_path: Path) -> None:
    model_id = "Qwen/Qwen3-30B-A3B"
    path = tmp_path / "serve.yaml"
    path.write_text(vllm_yaml(model_id, _plan(model_id)), encoding="utf-8")
    result = check_vllm_command(f"vllm serve --config {path}", _config_dir(tmp_path, model_id))
    _assert_accepted(result, "vllm serve --config serve.yaml")
    assert result["args"]["enable_expert_parallel"] is True  # type: ignore[index]


@pytest.mark.parametrize(
    ("model_id", "config", "cluster"),
    [
        ("Qwen/Qwen3-30B-A3B", ServingConfig(tp=4, replicas=4, enable_expert_parallel=True), "2x8xH100"),
        ("meta-llama/Llama-3.1-8B", ServingConfig(tp=2, replicas=6), "2x8xH100"),
        ("meta-llama/Llama-3.1-70B", ServingConfig(tp=8, pp=2), "2x8xH100"),
        ("meta-llama/Llama-3.1-70B", ServingConfig(tp=8, pp=2, replicas=2), "4x8xH100"),
        ("Qwen/Qwen3-30B-A3B", ServingConfig(tp=2, replicas=4), "1x8xH100"),  # separate MoE engines
    ],
)
def test_multi_node_launch_accepted_by_vllm(
    model_id: str, config: ServingConfig, cluster: str, tmp_path: Path
) -> None:
    launch = vllm_launch(model_id, config, cluster=Cluster.parse(cluster), model=load_model(model_id))
    config_dir = _config_dir(tmp_path, model_id)
    for node in launch.commands:
        for line in node:
            serve = re.sub(r"^CUDA_VISIBLE_DEVICES=\S+ ", "", line)
            if serve.startswith("vllm serve"):
                _assert_accepted(
                    check_vllm_command(serve.replace("${HEAD_IP}", "10.0.0.1"), config_dir), line
                )


def test_nvfp4_checkpoint_accepted_by_vllm(tmp_path: Path) -> None:
    """A ModelOpt NVFP4 checkpoint (its `quantization_config` in config.json, an FP8 KV cache declared):
    vLLM builds its engine config from the planner's line, reads the checkpoint as `modelopt_fp4` and
    resolves `--kv-cache-dtype auto` to the declared fp8_e4m3, as `checkpoint_kv_dtype` prices it."""
    entry = next(e for e in list_models() if e.id == "Qwen/Qwen3-30B-A3B")
    quant = {
        "quant_method": "modelopt",
        "quant_algo": "NVFP4",
        "kv_cache_quant_algo": "FP8",
        "group_size": 16,
        "exclude_modules": ["lm_head"],
    }
    (tmp_path / "config.json").write_text(json.dumps({**entry.config, "quantization_config": quant}))
    model = load_model(str(tmp_path))
    assert model.quantization is not None and model.quantization.kv_cache_dtype == "fp8_e4m3"
    config = ServingConfig(
        tp=2, replicas=2, enable_expert_parallel=True, max_model_len=8192, max_num_seqs=128
    )
    command = vllm_command(str(tmp_path), config, model=model)
    _assert_accepted(check_vllm_command(command, tmp_path), command)


def test_online_fp8_uses_the_shorthand_vllm_resolves_it_to(tmp_path: Path) -> None:
    """`--quantization fp8` over an unquantized checkpoint is deprecated in vLLM 0.32 (it warns and
    resolves it to `fp8_per_tensor`): the line names the shorthand itself."""
    model_id = "meta-llama/Llama-3.1-70B"
    config = ServingConfig(tp=8, max_model_len=8192, max_num_seqs=128, quantization="fp8")
    command = vllm_command(model_id, config, model=load_model(model_id))
    assert "--quantization fp8_per_tensor" in command
    result = check_vllm_command(command, _config_dir(tmp_path, model_id))
    _assert_accepted(result, command)
    assert result["args"]["quantization"] == "fp8_per_tensor"  # type: ignore[index]
