"""The launch matches what is priced: Megatron's data-parallel overlap flags, EP overlap refused under
Megatron-FSDP with interleaving, the classic families' real embeddings / norms / biases, DeepSpeed's
lack of an interleaved schedule, and the plan attributes docs/training.md names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.errors import InputError
from autoparallel.frameworks.deepspeed import deepspeed_notes
from autoparallel.frameworks.megatron import megatron_arg_dict, megatron_args, megatron_notes
from autoparallel.models import load_model
from autoparallel.plan import TrainingPlan

LLAMA_8B = "meta-llama/Llama-3.1-8B"
OVERLAP = ("--overlap-grad-reduce", "--overlap-param-gather")


def _overlap(cfg: TrainingConfig, model_id: str = LLAMA_8B) -> tuple[str, ...]:
    args = megatron_args(load_model(model_id), cfg)
    return tuple(flag for flag in OVERLAP if flag in args)


@pytest.mark.parametrize(
    ("zero", "flags"),
    [
        (ZeroStage.NONE, ("--overlap-grad-reduce",)),  # DDP all-reduce: no parameter gather
        (ZeroStage.OPTIMIZER, OVERLAP),
        (ZeroStage.DISTRIBUTED_OPTIMIZER, OVERLAP),
        (ZeroStage.GRADIENTS, OVERLAP),  # Megatron-FSDP optim_grads turns on only the gradient one
        (ZeroStage.PARAMETERS, ()),  # optim_grads_params turns on both itself
    ],
)
def test_the_overlap_priced_as_hidden_is_switched_on(zero: ZeroStage, flags: tuple[str, ...]) -> None:
    """perf/training_schedule.py hides the gradient reduce and parameter gather behind compute, which
    Megatron's DDP does only with --overlap-grad-reduce / --overlap-param-gather (both off by default;
    validate_args: the parameter one needs the distributed optimizer or Megatron-FSDP and the
    gradient one beside it)."""
    cfg = TrainingConfig(tp=2, pp=2, dp=2, global_batch=32, seq_len=4096, zero=zero)
    assert _overlap(cfg) == flags


def test_no_overlap_flag_without_a_data_parallel_group() -> None:
    assert _overlap(TrainingConfig(tp=8, dp=1, global_batch=8, seq_len=4096)) == ()
    # cp ranks reduce gradients too (Megatron's dp × cp group)
    assert _overlap(TrainingConfig(tp=4, cp=2, dp=1, global_batch=8, seq_len=4096)) == OVERLAP


def test_experts_alone_in_a_data_parallel_group_still_overlap() -> None:
    """dp = cp = 1 with etp 1 < tp 8: each expert's weights sit on 8 expert-data-parallel ranks."""
    cfg = TrainingConfig(tp=8, etp=1, ep=1, dp=1, global_batch=8, seq_len=4096)
    assert _overlap(cfg, "Qwen/Qwen3-30B-A3B") == OVERLAP


def test_ep_overlap_is_refused_under_megatron_fsdp_with_interleaving() -> None:
    """combined_1f1b.py `combined_1f1b_schedule_for_interleaved_pipelining` asserts 'EP overlap 1F1B
    with FSDP is not supported for interleaved pipeline parallelism'."""
    model = load_model("Qwen/Qwen3-30B-A3B")
    base = {"pp": 2, "vp": 2, "ep": 8, "dp": 8, "global_batch": 64, "seq_len": 4096, "ep_overlap": True}
    for zero in (ZeroStage.GRADIENTS, ZeroStage.PARAMETERS):
        with pytest.raises(InputError, match=r"interleaved pipeline.*combined_1f1b"):
            megatron_args(model, TrainingConfig(**base, zero=zero))
    assert "--overlap-moe-expert-parallel-comm" in megatron_args(model, TrainingConfig(**base))


@pytest.mark.parametrize(
    ("model_id", "position"),
    [
        ("openai-community/gpt2-xl", "learned_absolute"),
        ("facebook/opt-66b", "learned_absolute"),
        ("bigscience/bloom", "none"),
        ("EleutherAI/gpt-neox-20b", "rope"),
        ("microsoft/phi-2", "rope"),
    ],
)
def test_classic_families_keep_their_embeddings_norms_and_biases(model_id: str, position: str) -> None:
    """LayerNorm and biased linears (models/families/classic.py, phi.py) are Megatron's defaults;
    the arguments described a Llama (RoPE, RMSNorm, no biases) for every model."""
    model = load_model(model_id)
    args = megatron_arg_dict(model, TrainingConfig(dp=1, global_batch=8, seq_len=1024))
    assert args["--position-embedding-type"] == position
    assert args["--normalization"] == "LayerNorm"
    assert "--disable-bias-linear" not in args


def test_what_megatron_cannot_express_of_the_classic_families_is_said() -> None:
    cfg = TrainingConfig(dp=1, global_batch=8, seq_len=1024)
    assert "ALiBi" in " ".join(megatron_notes(load_model("bigscience/bloom"), cfg))
    assert "--rotary-percent" in " ".join(megatron_notes(load_model("EleutherAI/gpt-neox-20b"), cfg))
    llama = megatron_arg_dict(load_model(LLAMA_8B), cfg)
    assert (llama["--position-embedding-type"], llama["--normalization"]) == ("rope", "RMSNorm")
    assert llama["--disable-bias-linear"] is True


def test_deepspeed_says_it_runs_no_interleaved_schedule() -> None:
    """DeepSpeed's PipelineEngine runs only TrainSchedule (plain 1F1B), so vp > 1 is priced with a
    bubble vp times smaller than the run's."""
    model = load_model("meta-llama/Llama-3.1-70B")
    cfg = TrainingConfig(tp=8, pp=4, vp=2, dp=1, global_batch=64, seq_len=4096, recompute=Recompute.NONE)
    assert "TrainSchedule" in " ".join(deepspeed_notes(model, cfg))
    flat = cfg.model_copy(update={"vp": 1})
    assert "TrainSchedule" not in " ".join(deepspeed_notes(model, flat))


def test_the_plan_attributes_the_training_doc_names_exist() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "training.md").read_text(encoding="utf-8")
    names = set(re.findall(r"`plan\.(\w+)`", doc))
    assert names >= {"deepspeed_config", "megatron_args"}
    assert all(hasattr(TrainingPlan, name) for name in names), names
