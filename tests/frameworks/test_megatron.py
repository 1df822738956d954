"""Megatron emitter: golden argument lists, pipeline layouts, consistency checks, torchrun line, and
(opt-in) Megatron-LM's own parse_args + validate_args + TransformerConfig on the emitted arguments."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fw_golden import check_golden

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.errors import InputError
from autoparallel.frameworks.megatron import (
    check_megatron_consistency,
    megatron_arg_dict,
    megatron_args,
    megatron_env,
    megatron_notes,
    pipeline_layout,
    torchrun_command,
)
from autoparallel.hardware import Cluster
from autoparallel.models import load_model

LLAMA_70B = "meta-llama/Llama-3.1-70B"
LLAMA_405B = "meta-llama/Llama-3.1-405B"
DSV3 = "deepseek-ai/DeepSeek-V3"
QWEN_MOE = "Qwen/Qwen3-30B-A3B"

# name -> (model id, config, cluster)
CASES: dict[str, tuple[str, TrainingConfig, str]] = {
    "mg_llama70b_tp8_pp4_uniform": (
        LLAMA_70B,
        TrainingConfig(tp=8, pp=4, dp=4, micro_batch=1, global_batch=512, seq_len=8192),
        "16x8xH100",
    ),
    "mg_llama70b_interleaved_vp5": (
        LLAMA_70B,
        TrainingConfig(tp=8, pp=4, vp=5, dp=2, micro_batch=1, global_batch=256, recompute=Recompute.NONE),
        "8x8xH100",
    ),
    "mg_llama70b_uneven_middle_layout": (
        LLAMA_70B,
        TrainingConfig(
            tp=8, pp=4, dp=1, global_batch=64, layers_per_stage=(19, 21, 20, 20), recompute=Recompute.FULL
        ),
        "4x8xH100",
    ),
    "mg_llama70b_uneven_interleaved_layout": (
        LLAMA_70B,
        TrainingConfig(tp=8, pp=4, vp=2, dp=1, global_batch=64, layers_per_stage=(19, 21, 21, 19)),
        "4x8xH100",
    ),
    "mg_llama405b_first_last_stage": (
        LLAMA_405B,
        TrainingConfig(
            tp=8,
            pp=16,
            dp=2,
            micro_batch=1,
            global_batch=1024,
            seq_len=8192,
            layers_per_stage=(7, *([8] * 14), 7),
            precision="fp8",
            stage_recompute=(Recompute.FULL,) * 4 + (Recompute.SELECTIVE,) * 12,
        ),
        "32x8xH100",
    ),
    "mg_dsv3_mla_moe_mtp": (
        DSV3,
        TrainingConfig(
            tp=1,
            pp=16,
            dp=128,
            ep=64,
            micro_batch=1,
            global_batch=15360,
            seq_len=4096,
            layers_per_stage=(3, *([4] * 14), 2),
            precision="fp8",
            recompute=Recompute.NONE,
        ),
        "256x8xH800",
    ),
    "mg_qwen_moe_cp_fsdp_offload": (
        QWEN_MOE,
        TrainingConfig(
            tp=2,
            cp=2,
            dp=8,
            ep=8,
            etp=1,
            micro_batch=1,
            global_batch=64,
            seq_len=32768,
            zero=ZeroStage.GRADIENTS,
            offload_optimizer=True,
        ),
        "4x8xH100",
    ),
    "mg_qwen_moe_ep_overlap_capacity": (
        QWEN_MOE,
        TrainingConfig(
            dp=16,
            ep=8,
            micro_batch=1,
            global_batch=64,
            seq_len=4096,
            recompute=Recompute.SELECTIVE,
            moe_capacity_factor=1.25,
            ep_overlap=True,
        ),
        "2x8xH100",
    ),
}


def _artifacts(model_id: str, config: TrainingConfig, cluster_spec: str) -> dict[str, object]:
    cluster = Cluster.parse(cluster_spec)
    model = load_model(model_id)
    return {
        "args": megatron_args(model, config, cluster=cluster),
        "env": megatron_env(config, cluster),
        "torchrun": torchrun_command(model, config, cluster=cluster),
        "notes": megatron_notes(model, config),
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    check_golden(name, _artifacts(*CASES[name]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_emitted_args_are_consistent(name: str) -> None:
    model_id, cfg, cluster = CASES[name]
    model = load_model(model_id)
    args = megatron_args(model, cfg, cluster=Cluster.parse(cluster))
    assert check_megatron_consistency(args, model, Cluster.parse(cluster), world_size=cfg.world_size) == []


def test_pipeline_flags_choose_the_simplest_valid_form() -> None:
    model = load_model(LLAMA_70B)  # 80 layers

    def pipe(**kw: object) -> dict[str, object]:
        args = megatron_arg_dict(model, TrainingConfig(tp=8, dp=1, global_batch=8, **kw))  # type: ignore[arg-type]
        return {k: v for k, v in args.items() if "pipeline" in k and k != "--pipeline-model-parallel-size"}

    assert pipe(pp=4) == {}
    assert pipe(pp=3, layers_per_stage=(26, 27, 27)) == {"--decoder-first-pipeline-num-layers": 26}
    assert pipe(pp=2, layers_per_stage=(39, 41)) == {
        "--decoder-first-pipeline-num-layers": 39,
        "--decoder-last-pipeline-num-layers": 41,
    }
    assert pipe(pp=4, layers_per_stage=(19, 21, 20, 20)) == {
        "--pipeline-model-parallel-layout": "Et*19|t*21|t*20|t*20L"
    }
    assert pipe(pp=4, vp=5) == {"--num-layers-per-virtual-pipeline-stage": 4}
    assert pipe(pp=4, vp=2, layers_per_stage=(18, 22, 22, 18)) == {
        "--num-virtual-stages-per-pipeline-rank": 2,
        "--decoder-first-pipeline-num-layers": 18,
        "--decoder-last-pipeline-num-layers": 18,
    }


def test_pipeline_layout_interleaves_chunks() -> None:
    # chunk a of rank b sits at index a*pp + b; E first, m...L at the very end.
    assert pipeline_layout((3, 2), vp=2) == "Et*2|t|t|tL"
    assert pipeline_layout((1, 1, 1), mtp_layers=1) == "Et|t|tmL"


def test_recompute_mapping() -> None:
    model = load_model(LLAMA_70B)

    def rc(**kw: object) -> dict[str, object]:
        args = megatron_arg_dict(model, TrainingConfig(tp=8, pp=2, dp=1, global_batch=8, **kw))  # type: ignore[arg-type]
        return {k: v for k, v in args.items() if k.startswith("--recompute")}

    assert rc(recompute=Recompute.NONE) == {}
    assert rc(recompute=Recompute.SELECTIVE) == {"--recompute-granularity": "selective"}
    assert rc(recompute=Recompute.FULL) == {
        "--recompute-granularity": "full",
        "--recompute-method": "uniform",
        "--recompute-num-layers": 1,
    }
    assert rc(stage_recompute=(Recompute.FULL, Recompute.NONE)) == {
        "--recompute-granularity": "full",
        "--recompute-method": "block",
        "--recompute-num-layers": 40,
    }
    notes = megatron_notes(model, TrainingConfig(pp=2, stage_recompute=(Recompute.FULL, Recompute.NONE)))
    assert any("per-stage recompute" in n for n in notes)


def test_sharding_and_precision_flags() -> None:
    model = load_model(LLAMA_70B)

    def flags(**kw: object) -> dict[str, object]:
        return megatron_arg_dict(model, TrainingConfig(dp=8, global_batch=8, **kw))  # type: ignore[arg-type]

    assert "--use-distributed-optimizer" not in flags(zero=ZeroStage.NONE)
    assert flags(zero=ZeroStage.OPTIMIZER)["--use-distributed-optimizer"] is True
    assert flags(zero=ZeroStage.PARAMETERS)["--data-parallel-sharding-strategy"] == "optim_grads_params"
    assert flags(precision="fp8")["--fp8-format"] == "hybrid"
    assert flags(precision="fp16")["--fp16"] is True
    v100 = megatron_arg_dict(
        model, TrainingConfig(dp=8, global_batch=8), cluster=Cluster.parse("1x8xV100-SXM2-32G")
    )
    assert v100.get("--fp16") is True and "--bf16" not in v100
    # fp16 keeps fp16 gradients in Megatron whatever the sharding: no bf16 flag beside --fp16.
    v100_z1 = megatron_arg_dict(
        model,
        TrainingConfig(dp=8, global_batch=8, zero=ZeroStage.OPTIMIZER),
        cluster=Cluster.parse("1x8xV100-SXM2-32G"),
    )
    assert v100_z1.get("--fp16") is True and "--grad-reduce-in-bf16" not in v100_z1
    assert flags(zero=ZeroStage.OPTIMIZER)["--grad-reduce-in-bf16"] is True
    assert "--sequence-parallel" not in flags()  # tp = 1
    gqa = flags()
    assert gqa["--group-query-attention"] is True and gqa["--num-query-groups"] == 8


def test_env_and_torchrun_line() -> None:
    model = load_model(LLAMA_70B)
    cfg = TrainingConfig(tp=8, pp=2, dp=2, global_batch=32)
    assert megatron_env(cfg, Cluster.parse("4x8xH100")) == {"CUDA_DEVICE_MAX_CONNECTIONS": "1"}
    assert megatron_env(cfg, Cluster.parse("4x8xB200")) == {}
    assert megatron_env(TrainingConfig(dp=8), Cluster.parse("1x8xH100")) == {}
    line = torchrun_command(model, cfg, cluster=Cluster.parse("4x8xH100"))
    assert line.startswith(
        "CUDA_DEVICE_MAX_CONNECTIONS=1 torchrun --nnodes 4 --nproc-per-node 8 --node-rank "
        "${NODE_RANK} --master-addr ${MASTER_ADDR} --master-port 6000 pretrain_gpt.py "
    )
    single = torchrun_command(model, TrainingConfig(dp=4, global_batch=4), cluster=Cluster.parse("1x8xH100"))
    assert single.startswith("torchrun --nnodes 1 --nproc-per-node 4 --node-rank 0 --master-addr localhost ")


@pytest.mark.parametrize(
    ("model_id", "config", "match"),
    [
        (LLAMA_70B, TrainingConfig(pp=3, layers_per_stage=(40, 40)), "layers_per_stage"),
        (LLAMA_70B, TrainingConfig(dp=3, micro_batch=2, global_batch=8), "global_batch=8"),
        (LLAMA_70B, TrainingConfig(vp=2), "vp=2 needs pp > 1"),
        (
            LLAMA_70B,
            TrainingConfig(dp=8, global_batch=8, zero=ZeroStage.NONE, offload_optimizer=True),
            "distributed optimizer",
        ),
        (QWEN_MOE, TrainingConfig(tp=8, dp=2, ep=4, global_batch=8), "expert grid"),
    ],
)
def test_rejects_plans_megatron_cannot_run(model_id: str, config: TrainingConfig, match: str) -> None:
    with pytest.raises(InputError, match=match):
        megatron_args(load_model(model_id), config)


def test_consistency_finds_each_broken_rule() -> None:
    model = load_model(LLAMA_70B)
    cluster = Cluster.parse("4x8xH100")
    base = megatron_arg_dict(model, TrainingConfig(tp=4, pp=4, dp=2, global_batch=8))
    assert check_megatron_consistency(base, model, cluster, world_size=32) == []

    def problems(**changes: object) -> str:
        return " ".join(check_megatron_consistency({**base, **changes}, model, cluster, world_size=32))

    assert "not divisible by tp x pp x cp" in problems(**{"--tensor-model-parallel-size": 3})
    assert "--global-batch-size 7" in problems(**{"--global-batch-size": 7})
    assert "tp x pp x cp = 12" in problems(**{"--pipeline-model-parallel-size": 3})
    assert "80 layers are not divisible by pp=3" in " ".join(
        check_megatron_consistency(
            {**base, "--pipeline-model-parallel-size": 3}, model, cluster, world_size=24
        )
    )
    assert "holds 79 decoder layers" in problems(
        **{"--pipeline-model-parallel-layout": "Et*19|t*20|t*20|t*20L"}
    )
    assert "middle layers" in problems(**{"--decoder-first-pipeline-num-layers": 19})
    assert "--num-query-groups 6 must be a multiple or a divisor of tp=4" in problems(
        **{"--num-query-groups": 6}
    )
    replicated = {**base, "--tensor-model-parallel-size": 16, "--pipeline-model-parallel-size": 2}
    assert check_megatron_consistency(replicated, model, cluster, world_size=32) == []  # 8 groups, tp 16
    moe = load_model(QWEN_MOE)
    moe_args = megatron_arg_dict(moe, TrainingConfig(tp=2, dp=4, ep=4, global_batch=8))
    assert check_megatron_consistency(moe_args, moe, cluster, world_size=8) == []
    bad = {**moe_args, "--expert-model-parallel-size": 3}
    assert any(
        "not divisible by expert-model-parallel-size 3" in p
        for p in check_megatron_consistency(bad, moe, cluster, world_size=8)
    )


def test_context_parallel_needs_sequence_multiple() -> None:
    model = load_model(LLAMA_70B)
    with pytest.raises(
        InputError, match=r"seq_len=4098: not a multiple of 4, the chunks Megatron.*\(seq_divides_cp\)"
    ):
        megatron_arg_dict(model, TrainingConfig(tp=8, cp=2, dp=1, global_batch=8, seq_len=4098))
    args = megatron_arg_dict(model, TrainingConfig(tp=8, cp=2, dp=1, global_batch=8, seq_len=4096))
    args["--seq-length"] = 4098  # a hand-edited argument list: the checker still catches it
    problems = check_megatron_consistency(args, model, Cluster.parse("2x8xH100"), world_size=16)
    assert problems == ["--seq-length 4098 is not a multiple of 2 x context-parallel-size = 4"]


def test_notes_for_architectures_megatron_gpt_cannot_express() -> None:
    notes = " ".join(megatron_notes(load_model("Qwen/Qwen3-Next-80B-A3B-Instruct"), TrainingConfig()))
    assert "--hybrid-layer-pattern" in notes
    gemma = load_model("google/gemma-2-9b")
    notes = " ".join(megatron_notes(gemma, TrainingConfig(offload_params=True)))
    assert "offload_params" in notes and "--window-size" not in notes  # the arguments carry it now
    args = megatron_args(gemma, TrainingConfig())
    assert args[args.index("--window-size") + 1] == "4095,0" and "--window-attn-skip-freq" in args


# ----- Megatron-LM's own argument validation (opt-in) ----------------------------------------------

MEGATRON_CHECK_PYTHON = os.environ.get("MEGATRON_CHECK_PYTHON")
MEGATRON_LM_PATH = os.environ.get("MEGATRON_LM_PATH")

_DRIVER = textwrap.dedent("""
    import contextlib, io, json, os, sys, warnings
    warnings.filterwarnings("ignore")
    job = json.load(open(sys.argv[1]))
    os.environ.update(job["env"])  # what megatron_env emits
    import megatron.training.arguments as A
    import megatron.core.transformer.transformer_config as TC
    from megatron.training.argument_utils import core_transformer_config_from_args
    A.get_device_arch_version = lambda: 9  # Hopper: no GPU on the checking machine
    import torch
    torch.cuda.get_device_capability = lambda *a, **k: (9, 0)
    TC.is_te_min_version = lambda *a, **k: True  # a GPU box has a current Transformer Engine
    os.environ["WORLD_SIZE"], os.environ["RANK"] = str(job["world_size"]), "0"
    # Data/tokenizer/schedule stand-ins, and no fused kernels (no Transformer Engine / Apex on a CPU box).
    sys.argv = ["pretrain_gpt.py", *job["argv"], "--mock-data", "--tokenizer-type", "NullTokenizer",
                "--vocab-size", str(job["vocab"]), "--lr", "1e-4", "--train-iters", "10", "--no-rope-fusion",
                "--no-gradient-accumulation-fusion", "--no-bias-swiglu-fusion", "--no-masked-softmax-fusion",
                "--no-bias-dropout-fusion", "--no-persist-layer-norm"]
    with contextlib.redirect_stdout(io.StringIO()):
        args = A.parse_args()
        A.validate_args(args)
        core_transformer_config_from_args(args)
    print("MEGATRON-ACCEPTED")
""")


_MEGATRON_CHECK = pytest.mark.skipif(
    not (MEGATRON_CHECK_PYTHON and MEGATRON_LM_PATH),
    reason="set MEGATRON_CHECK_PYTHON (a Python 3.12+ with torch, triton, einops and packaging) and "
    "MEGATRON_LM_PATH (a Megatron-LM checkout importable by it) to run Megatron's own argument validation",
)


def _megatron_verdict(model: Any, cfg: TrainingConfig, cluster: Cluster, tmp_path: Path) -> str:
    """Megatron-LM's parse_args + validate_args + TransformerConfig on the emitted arguments: the
    driver's stdout ("MEGATRON-ACCEPTED") and stderr."""
    assert MEGATRON_CHECK_PYTHON is not None and MEGATRON_LM_PATH is not None
    job = {
        "argv": megatron_args(model, cfg, cluster=cluster),
        "world_size": cfg.world_size,
        "vocab": model.vocab_size,
        "env": megatron_env(cfg, cluster),
    }
    (tmp_path / "job.json").write_text(json.dumps(job), encoding="utf-8")
    (tmp_path / "driver.py").write_text(_DRIVER, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [MEGATRON_LM_PATH, os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [MEGATRON_CHECK_PYTHON, str(tmp_path / "driver.py"), str(tmp_path / "job.json")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    return done.stdout + done.stderr[-3000:]


@_MEGATRON_CHECK
@pytest.mark.parametrize("name", sorted(CASES))
def test_megatron_accepts_args(name: str, tmp_path: Path) -> None:
    model_id, cfg, cluster = CASES[name]
    verdict = _megatron_verdict(load_model(model_id), cfg, Cluster.parse(cluster), tmp_path)
    assert "MEGATRON-ACCEPTED" in verdict, f"{name}: {verdict}"


@_MEGATRON_CHECK
@pytest.mark.parametrize(
    ("model_id", "cluster", "framework"),
    [
        (QWEN_MOE, "2x8xH100", "megatron"),
        (QWEN_MOE, "2x8xH100", "deepspeed"),
        (DSV3, "32x8xH100", "megatron"),
        (LLAMA_70B, "2x8xH100", "megatron"),
    ],
)
def test_megatron_accepts_planned_args(model_id: str, cluster: str, framework: str, tmp_path: Path) -> None:
    """What `plan --train` hands out, not only the golden cases (MoE flags, Megatron-FSDP, layouts)."""
    import autoparallel as ap

    options = ap.TrainingOptions(framework=framework)  # type: ignore[arg-type]
    plan = ap.solve(model_id, cluster, ap.Training(seq_len=4096, global_batch=256), options=options)
    verdict = _megatron_verdict(plan.model, plan.config, Cluster.parse(cluster), tmp_path)
    assert "MEGATRON-ACCEPTED" in verdict, f"{model_id} {framework}: {verdict}"


@_MEGATRON_CHECK
def test_megatron_accepts_all_to_all_context_parallelism(tmp_path: Path) -> None:
    """`--cp-comm-type a2a` (TrainingConfig.cp_comm) passes Megatron's own argument checks."""
    cfg = TrainingConfig(tp=2, cp=4, dp=1, global_batch=8, seq_len=32768, cp_comm="a2a")
    verdict = _megatron_verdict(
        load_model("meta-llama/Llama-3.1-8B"), cfg, Cluster.parse("1x8xH100"), tmp_path
    )
    assert "MEGATRON-ACCEPTED" in verdict, verdict


def test_zero_0_and_1_reduce_gradients_in_bf16_as_priced() -> None:
    """ZeRO 0 / 1 are priced with bf16 gradients; under bf16 Megatron keeps an fp32 main_grad buffer
    (2 bytes more per parameter) unless `--grad-reduce-in-bf16`: a Llama-3.1-405B plan at ZeRO-1 on
    32x8xH200 fitted with 1.4 GiB to spare and needed 49 GiB more as emitted. Megatron-FSDP (ZeRO 2 / 3)
    likewise (its main grad buffer is fp32 under `grad_reduce_in_fp32`); only zero=dist prices fp32."""
    model = load_model(LLAMA_70B)
    for zero, dist in ((ZeroStage.NONE, False), (ZeroStage.OPTIMIZER, True)):
        args = megatron_arg_dict(model, TrainingConfig(tp=8, dp=2, zero=zero, global_batch=8))
        assert args["--grad-reduce-in-bf16"] is True and ("--use-distributed-optimizer" in args) is dist
    for zero in (ZeroStage.GRADIENTS, ZeroStage.PARAMETERS):
        args = megatron_arg_dict(model, TrainingConfig(tp=8, dp=2, zero=zero, global_batch=8))
        assert args["--grad-reduce-in-bf16"] is True and args["--use-megatron-fsdp"] is True
    args = megatron_arg_dict(
        model, TrainingConfig(tp=8, dp=2, zero=ZeroStage.DISTRIBUTED_OPTIMIZER, global_batch=8)
    )
    assert "--grad-reduce-in-bf16" not in args


def test_interleaved_schedule_needs_whole_microbatch_groups() -> None:
    """Megatron's interleaved 1F1B runs micro-batches in groups of pp: grad-accum 6 at pp 4 is a
    RuntimeError at the first step (schedules.py), and was emitted."""
    model = load_model(LLAMA_70B)
    cfg = TrainingConfig(tp=8, pp=4, dp=2, vp=2, global_batch=12, recompute=Recompute.FULL)
    with pytest.raises(InputError, match=r"grad-accum 6 is not a multiple of it \(vp_microbatch_groups\)"):
        megatron_arg_dict(model, cfg)
    whole = megatron_arg_dict(model, cfg.model_copy(update={"global_batch": 16}))
    assert whole["--num-layers-per-virtual-pipeline-stage"] == 10


def test_block_recompute_covers_the_largest_model_chunk() -> None:
    """A fully recomputed stage of 22 layers in 3 model chunks has a chunk of 8: --recompute-num-layers
    counts per chunk, so 22 // 3 = 7 kept one layer's activations the plan priced as recomputed."""
    cfg = TrainingConfig(
        tp=8,
        pp=4,
        vp=3,
        dp=2,
        global_batch=64,
        layers_per_stage=(22, 20, 19, 19),
        stage_recompute=(Recompute.FULL, Recompute.NONE, Recompute.NONE, Recompute.NONE),
    )
    assert megatron_arg_dict(load_model(LLAMA_70B), cfg)["--recompute-num-layers"] == 8


def test_a_vision_tower_outside_the_plan_is_said() -> None:
    cfg = TrainingConfig(tp=8, dp=1, global_batch=8)
    notes = " ".join(megatron_notes(load_model("meta-llama/Llama-3.2-11B-Vision"), cfg))
    assert "vision tower (0.90B parameters) is outside the plan" in notes
    assert "vision tower" not in " ".join(megatron_notes(load_model(LLAMA_70B), cfg))


@_MEGATRON_CHECK
def test_megatron_accepts_bf16_gradient_reduction(tmp_path: Path) -> None:
    """`--grad-reduce-in-bf16` (ZeRO 0 / 1 as priced) passes Megatron's own argument checks."""
    cfg = TrainingConfig(tp=8, dp=1, global_batch=8, zero=ZeroStage.OPTIMIZER)
    verdict = _megatron_verdict(load_model(LLAMA_70B), cfg, Cluster.parse("1x8xH100"), tmp_path)
    assert "MEGATRON-ACCEPTED" in verdict, verdict


def test_zero_0_or_1_says_why_it_reduces_gradients_in_bf16() -> None:
    """evaluate --zero 1 put --grad-reduce-in-bf16 on the line and halved the gradients' memory without
    a word; the notes now say so, and fp16 (V100) needs no such flag."""
    from autoparallel.frameworks.megatron import megatron_notes

    model = load_model(LLAMA_70B)
    notes = megatron_notes(model, TrainingConfig(dp=8, global_batch=8, zero=ZeroStage.OPTIMIZER))
    assert any("--grad-reduce-in-bf16" in n for n in notes)
    fp16 = TrainingConfig(dp=8, global_batch=8, zero=ZeroStage.OPTIMIZER, precision="fp16")
    assert not any("--grad-reduce-in-bf16" in n for n in megatron_notes(model, fp16))
    assert not any(
        "--grad-reduce-in-bf16" in n for n in megatron_notes(model, TrainingConfig(dp=8, global_batch=8))
    )
