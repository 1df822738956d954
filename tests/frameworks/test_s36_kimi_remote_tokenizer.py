"""Kimi-K2's tokenizer is its checkpoint's code (`tokenization_kimi.TikTokenTokenizer` via auto_map):
every vLLM line for it carries --trust-remote-code (vLLM 0.32 loads tokenizers through AutoTokenizer
with the CLI's flag), as SGLang's and TensorRT-LLM's already did. Other models get no such flag."""

from autoparallel.configs import ServingConfig
from autoparallel.frameworks.vllm import vllm_command
from autoparallel.models import load_model


def test_kimi_k2_vllm_line_trusts_remote_code() -> None:
    kimi = load_model("moonshotai/Kimi-K2-Instruct")
    line = vllm_command(
        "moonshotai/Kimi-K2-Instruct",
        ServingConfig(tp=8, replicas=2, enable_expert_parallel=True),
        model=kimi,
    )
    assert "--trust-remote-code" in line


def test_a_plain_model_gets_no_remote_code() -> None:
    qwen = load_model("Qwen/Qwen3-8B")
    assert "--trust-remote-code" not in vllm_command("Qwen/Qwen3-8B", ServingConfig(), model=qwen)
