"""An infeasible fleet names each model's least GPUs, not its largest engine.

`deployment.explain.demand_numbers` took the engine of most capacity on the pool: Qwen3-8B at 8 req/s
"needs >= 1 engines of tp4pp4 (58.77 req/s each, 16 GPUs)" beside two other models on 4x8xA100, where
one tp4 engine on 4 GPUs carries 13.7 req/s; the sum of the needs overstated what the fleet asks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from autoparallel.cli import main


def test_each_model_is_named_with_its_fewest_gpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = {
        "models": [
            {"model": "meta-llama/Llama-3.1-70B", "request_rate": 4, "isl": 1743, "osl": 274},
            {
                "model": "Qwen/Qwen3-8B",
                "request_rate": 8,
                "isl": 512,
                "osl": 512,
                "ttft_ms": 80,
                "tpot_ms": 8,
            },
        ]
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet))
    assert main(["plan", "--fleet", str(path), "--cluster", "1x8xA100-80G", "--objective", "cost"]) == 1
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.strip().startswith("- Qwen/Qwen3-8B"))
    assert "needs >= 1 engines of tp4 on A100-SXM-80G" in line and "4 GPUs" in line
