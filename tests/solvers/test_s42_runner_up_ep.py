"""The runner-up's sentence names expert parallelism where the two plans differ in it: TensorRT-LLM's
DeepSeek-V3 on 8 H200s ties with and without EP, and the runner-up line read "+0.0%: batch 192 vs 192,
TPOT 49.7 vs 49.7 ms, 8 vs 8 GPUs" with the one difference unsaid."""

from __future__ import annotations

import pytest

from autoparallel.cli import main


def test_a_runner_up_that_differs_only_in_expert_parallelism_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "plan",
        "deepseek-ai/DeepSeek-V3",
        "--cluster",
        "1x8xH200",
        "--engine",
        "trtllm",
        "--disagg",
        "off",
    ]
    assert main(argv) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("runner-up")]
    assert line.endswith("8 vs 8 GPUs per replica, no expert parallel vs expert parallel"), line
