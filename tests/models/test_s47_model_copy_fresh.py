"""`model_copy(update=...)` of a model or a plan kept the original's `cached_property` values (pydantic
copies the instance dict without re-validating): Llama-3.1-8B cut to 16 layers after an `analyze` still
said 8.03B parameters and 14.96 GiB of weights (4.54B and 8.46 right), and DeepSeek-V2-Lite given
dense layers stayed MoE. Copies now compute them afresh (`memo.drop_cached_properties`)."""

from __future__ import annotations

import autoparallel as ap
from autoparallel.models import ModelSpec, load_model


def test_a_cut_copy_counts_its_own_layers() -> None:
    model = load_model("meta-llama/Llama-3.1-8B")
    whole = ap.analyze(model, "1x8xH100").weights_gib_total
    cut = model.model_copy(update={"layers": model.layers[:16]})
    rebuilt = ModelSpec.model_validate(cut.model_dump())
    assert cut.total_params == rebuilt.total_params < model.total_params
    assert ap.analyze(cut, "1x8xH100").weights_gib_total == ap.analyze(rebuilt, "1x8xH100").weights_gib_total
    assert ap.analyze(cut, "1x8xH100").weights_gib_total < whole


def test_a_copy_with_dense_layers_is_dense() -> None:
    model = load_model("deepseek-ai/DeepSeek-Coder-V2-Lite-Base")
    assert model.is_moe and model.num_experts == 64
    dense = model.model_copy(update={"layers": tuple(model.layers[:1]) * len(model.layers)})
    assert not dense.is_moe and dense.num_experts == 0 and dense.experts_per_token == 0


def test_a_plans_copy_launches_its_own_config() -> None:
    plan = ap.solve("meta-llama/Llama-3.1-8B-Instruct", "1x2xH100", "chatbot")
    assert f"--max-num-seqs {plan.config.max_num_seqs}" in " ".join(plan.vllm_launch.commands[0])  # read once
    other = plan.model_copy(update={"config": plan.config.model_copy(update={"max_num_seqs": 7})})
    assert "--max-num-seqs 7" in " ".join(other.vllm_launch.commands[0])
