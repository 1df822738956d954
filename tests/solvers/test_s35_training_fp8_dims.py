"""FP8 plans Transformer Engine refuses: TE's Linear / LayerNormLinear forward calls
`assert_dim_for_fp8_exec(inputmat, weight)` (transformer_engine/pytorch/utils.py): every GEMM input's
rows (tokens) a multiple of 8 and its last dimension a multiple of 16, the weight's rows a multiple
of 8. `plan Llama-3.1-8B --seq-len 4100 --precision fp8` chose 4100 tokens per micro-batch, and
`evaluate DeepSeek-Coder-V2-Lite-Base --tp 8 --precision fp8` accepted a dense FC2 shard of
10944 / 8 = 1368 in_features."""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.cli import main
from autoparallel.configs import TrainingConfig
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.training.space import TrainingOptions, build_space
from autoparallel.validation import fp8_gemm_problem, fp8_token_problem, training_problems

LITE = "deepseek-ai/DeepSeek-Coder-V2-Lite-Base"
LLAMA_8B = "meta-llama/Llama-3.1-8B"


def test_evaluate_refuses_a_gemm_shard_te_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "evaluate",
        LITE,
        "--cluster",
        "1x8xH100",
        "--train",
        "--seq-len",
        "4096",
        "--global-batch",
        "64",
        "--precision",
        "fp8",
        "--tp",
        "8",
        "--dp",
        "1",
        "--ep",
        "1",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "linear_fc2 at tp=8: in_features 1368 is not a multiple of 16" in err
    # FP8 runs at tp=4 (2736 = 16 x 171)
    cfg = TrainingConfig(tp=4, dp=2, seq_len=4096, global_batch=64, precision="fp8")
    assert not training_problems(load_model(LITE), Cluster.parse("1x8xH100"), cfg)


def test_the_token_rows_of_a_micro_batch_are_checked_after_sequence_and_context_parallelism() -> None:
    assert fp8_token_problem(4100, 1, 1, 1) is not None
    assert fp8_token_problem(4100, 2, 1, 1) is None
    # 4096 / cp 2 / tp 8 = 256 rows per rank: fine; 4104 / 8 = 513 rows: not
    assert fp8_token_problem(4096, 1, 8, 2) is None
    problem = fp8_token_problem(4104, 1, 8, 1)
    assert problem is not None and "513 tokens" in problem
    assert fp8_token_problem(4104, 1, 8, 1, sequence_parallel=False) is None
    cfg = TrainingConfig(tp=1, dp=8, seq_len=4100, global_batch=8, precision="fp8")
    model = load_model(LLAMA_8B)
    assert any("fp8_gemm_dims" in p for p in training_problems(model, None, cfg))
    assert not training_problems(model, None, cfg.model_copy(update={"precision": "bf16"}))


def test_routed_expert_weights_count_but_not_their_tokens() -> None:
    """Megatron pads FP8 expert tokens (TEGroupedMLP, Fp8Padding); the expert weights at etp bind."""
    lite = load_model(LITE)
    assert fp8_gemm_problem(lite, 4, 4) is None
    # expert width 1408: 1408 / 8 = 176 is fine; 1408 / 2 = 704 too; the dense FC2 at tp=8 is not
    assert fp8_gemm_problem(lite, 2, 1) is None
    problem = fp8_gemm_problem(lite, 8, 1)
    assert problem is not None and "linear_fc2" in problem and "experts." not in problem


def test_the_planner_skips_what_te_refuses() -> None:
    cluster = Cluster.parse("1x8xH100")
    space = build_space(
        load_model(LITE),
        cluster,
        ap.Training(seq_len=4096, global_batch=64, precision="fp8"),
        TrainingOptions(),
    )
    assert space.shapes and all(s.tp < 8 for s in space.shapes)
    assert any("1368" in m for m in space.excluded["fp8_gemm_dims"])
    plan = ap.solve(
        LLAMA_8B,
        "1x8xH100",
        ap.Training(seq_len=4100, global_batch=8, precision="fp8"),
        options=ap.TrainingOptions(runner_up=False),
    )
    c = plan.config
    assert not training_problems(load_model(LLAMA_8B), cluster, c)
    sp = c.tp if c.sequence_parallel and c.tp > 1 else 1
    assert c.micro_batch * (c.seq_len // c.cp) // sp % 8 == 0, c


def test_an_fp8_batch_whose_every_micro_batch_te_refuses_names_the_rule() -> None:
    """seq 4097 at global batch 4: micro-batches 1, 2 and 4 all give token rows that are not a multiple
    of 8; the planner says so (exit 1) instead of blaming the global batch."""
    with pytest.raises(ap.InfeasibleError) as exc:
        build_space(
            load_model(LLAMA_8B),
            Cluster.parse("1x8xH100"),
            ap.Training(seq_len=4097, global_batch=4, precision="fp8"),
            TrainingOptions(),
        )
    (reason,) = exc.value.reasons
    assert reason.startswith("fp8_gemm_dims:") and "4097 tokens per GEMM input" in reason
