"""`evaluate` takes the custom GPU types and prices `plan` takes (--gpus-file, --price): a custom-GPU
plan could not be checked with `evaluate` ("unrecognized arguments: --gpus-file")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main


def test_evaluate_reads_a_gpus_file_and_prices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gpus = tmp_path / "gpus.yaml"
    gpus.write_text("gpus: [{name: H100-lowclock, base: H100, bf16_tflops: 700}]\n")
    argv = ["evaluate", "Qwen/Qwen3-8B", "--tp", "1", "--json"]
    assert main([*argv, "--cluster", "1x8xH100"]) == 0
    stock = json.loads(capsys.readouterr().out)
    custom = [*argv, "--cluster", "1x8xH100-lowclock", "--gpus-file", str(gpus), "--price", "H100-lowclock=1"]
    assert main(custom) == 0
    slow = json.loads(capsys.readouterr().out)
    assert slow["perf"]["output_tokens_per_s"] < stock["perf"]["output_tokens_per_s"]
    per_gpu_hour = slow["perf"]["usd_per_million_tokens"] * slow["perf"]["output_tokens_per_s"] * 3600 / 1e6
    assert per_gpu_hour == pytest.approx(8 * 1.0, rel=1e-3)
    train = ["evaluate", "meta-llama/Llama-3.1-8B", "--train", "--cluster", "1x8xH100-lowclock"]
    assert main(
        [*train, "--gpus-file", str(gpus), "--tp", "8", "--global-batch", "8", "--seq-len", "4096"]
    ) in (0, 1)
    assert "error" not in capsys.readouterr().err
