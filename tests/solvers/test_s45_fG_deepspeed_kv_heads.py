"""DeepSpeed plans keep tp to a divisor of the KV heads (s45 fG).

Megatron-DeepSpeed, whose mpu gives a DeepSpeed plan its tensor parallelism, splits the KV heads over
the tensor-parallel ranks and cannot replicate them: its ParallelAttention
(megatron/model/transformer.py) sets `num_key_value_heads_per_partition =
core.utils.divide(num_key_value_heads, world_size)`, which asserts when the model is built. The model
rule `tp_kv_heads` lets tp be a multiple of the KV heads (Megatron-Core and vLLM replicate them), so
`plan --train --engine deepspeed` planned Qwen3-30B-A3B (4 KV heads) at tp=8 and `evaluate --engine
deepspeed --tp 8` accepted it.
"""

from __future__ import annotations

import pytest

from autoparallel.api import evaluate
from autoparallel.cli import main
from autoparallel.configs import TrainingConfig, ZeroStage
from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.validation import kv_heads_split_problem, training_problems
from autoparallel.workload import Training

QWEN = "Qwen/Qwen3-30B-A3B"  # 32 query heads, 4 KV heads, 128 experts
JOB = Training(seq_len=32768, global_batch=64)
CLUSTER = Cluster.parse("2x8xH100")


def test_the_deepspeed_space_keeps_tp_to_divisors_of_the_kv_heads() -> None:
    model = load_model(QWEN)
    space = build_space(model, CLUSTER, JOB, TrainingOptions(framework="deepspeed"))
    assert {s.tp for s in space.shapes} == {1, 2, 4}
    (reason,) = space.excluded["ds_tp_divides_kv_heads"]
    assert reason.startswith("tp=8: Megatron-DeepSpeed splits the 4 KV heads")
    assert reason.endswith("so tp must divide 4")


def test_megatron_space_is_unchanged() -> None:
    """Megatron-Core replicates the KV heads at tp=8: its space keeps tp=8, with no such rule."""
    space = build_space(load_model(QWEN), CLUSTER, JOB, TrainingOptions())
    assert {s.tp for s in space.shapes} == {1, 2, 4, 8}
    assert "ds_tp_divides_kv_heads" not in space.excluded


def test_an_empty_deepspeed_space_names_the_rule_with_numbers() -> None:
    with pytest.raises(InfeasibleError) as info:
        build_space(load_model(QWEN), CLUSTER, JOB, TrainingOptions(framework="deepspeed", tp_values=(8,)))
    assert any(
        r.startswith("ds_tp_divides_kv_heads: tp=8: Megatron-DeepSpeed splits the 4 KV heads")
        for r in info.value.reasons
    )


@pytest.mark.parametrize(
    ("model_id", "tp", "refused"),
    [
        (QWEN, 4, False),
        (QWEN, 8, True),
        ("meta-llama/Llama-2-7b-hf", 8, False),  # KV heads = heads (32): tp splits both
        ("deepseek-ai/DeepSeek-V2-Lite", 8, False),  # MLA: one latent, no KV heads to split
        ("Qwen/Qwen3-Next-80B-A3B-Instruct", 2, False),  # full-attention layers: 2 KV heads
        ("Qwen/Qwen3-Next-80B-A3B-Instruct", 4, True),
        ("google/gemma-3-1b-it", 2, True),  # one KV head: DeepSpeed runs tp=1 only
    ],
)
def test_the_rule_by_attention_kind(model_id: str, tp: int, refused: bool) -> None:
    model = load_model(model_id)
    assert (kv_heads_split_problem(model, tp, "deepspeed") is not None) is refused
    assert kv_heads_split_problem(model, tp, "megatron") is None


def _layout(zero: ZeroStage = ZeroStage.DISTRIBUTED_OPTIMIZER) -> TrainingConfig:
    return TrainingConfig(tp=8, dp=2, ep=4, etp=1, micro_batch=1, global_batch=64, seq_len=32768, zero=zero)


def test_training_problems_refuse_it_under_deepspeed_only() -> None:
    model = load_model(QWEN)
    problems = training_problems(model, CLUSTER, _layout(zero=ZeroStage.GRADIENTS), framework="deepspeed")
    assert [p for p in problems if p.endswith("(ds_tp_divides_kv_heads)")]
    assert not training_problems(model, CLUSTER, _layout())


def test_evaluate_deepspeed_refuses_it_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["evaluate", QWEN, "--train", "--cluster", "2x8xH100", "--seq-len", "32768"]
    args += ["--global-batch", "64", "--tp", "8", "--ep", "4", "--etp", "1", "--zero", "2"]
    assert main([*args, "--engine", "deepspeed"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "tp=8: Megatron-DeepSpeed splits the 4 KV heads" in err and "(ds_tp_divides_kv_heads)" in err


def test_megatron_evaluate_accepts_it_and_says_deepspeed_cannot_express_it() -> None:
    plan = evaluate(QWEN, "2x8xH100", _layout(), JOB, compare=False, engine="megatron")
    assert plan.config.tp == 8
    unavailable = plan.to_dict()["deepspeed"]["config"]["unavailable"]
    assert "Megatron-DeepSpeed splits the 4 KV heads" in unavailable
