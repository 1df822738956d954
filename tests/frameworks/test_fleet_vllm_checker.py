"""Every `vllm serve` line of a fleet plan checked by vLLM 0.32's own parser (opt-in, like
test_vllm_checker.py): per-replica lines with --port, multi-node data-parallel EP lines, mixed pools.

    VLLM_CHECK_PYTHON=~/.vllmcheck/bin/python uv run pytest tests/frameworks/test_fleet_vllm_checker.py
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fw_golden import SHARED_TOOLS

from autoparallel.fleet import FleetEntry, solve_fleet
from autoparallel.models.zoo import find_entry

CHECK_PYTHON = os.environ.get("VLLM_CHECK_PYTHON")
CHECKER = SHARED_TOOLS / "check_vllm_args.py"

pytestmark = [
    pytest.mark.skipif(not CHECK_PYTHON, reason="set VLLM_CHECK_PYTHON to the vLLM 0.32 checker's Python"),
    pytest.mark.skipif(not CHECKER.exists(), reason=f"{CHECKER} not found (../shared/tools beside the repo)"),
]

FLEETS = [
    (
        "1x8xH100+1x8xA100-80G",
        [
            FleetEntry(model="meta-llama/Llama-3.1-8B-Instruct", request_rate=30, tpot_ms=40),
            FleetEntry(model="Qwen/Qwen3-30B-A3B", request_rate=10, isl=2048, osl=512, tpot_ms=50),
        ],
    ),
    ("8x8xH100", [FleetEntry(model="deepseek-ai/DeepSeek-V3", isl=2048, osl=512, ttft_ms=2000, tpot_ms=50)]),
]


def _check(command: str, config_dir: Path) -> dict[str, object]:
    assert CHECK_PYTHON is not None
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    done = subprocess.run(
        [CHECK_PYTHON, str(CHECKER), "--json", "--config-dir", str(config_dir), command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    start = done.stdout.find("{")
    assert start >= 0, f"checker printed no JSON (exit {done.returncode}): {done.stderr[-2000:]}"
    result: dict[str, object] = json.loads(done.stdout[start:])
    return result


@pytest.mark.parametrize(("cluster", "fleet"), FLEETS, ids=[c for c, _ in FLEETS])
def test_fleet_lines_accepted_by_vllm(cluster: str, fleet: list[FleetEntry], tmp_path: Path) -> None:
    plan = solve_fleet(fleet, cluster).to_dict()
    seen: set[str] = set()
    for engine in plan["deployment"]["engines"]:
        entry = find_entry(engine["model"])
        assert entry is not None
        folder = tmp_path / entry.id.replace("/", "__")
        folder.mkdir(exist_ok=True)
        (folder / "config.json").write_text(json.dumps(entry.config), encoding="utf-8")
        for replica in engine["vllm"]["commands"]:
            for node in replica:
                for line in node:
                    if line.startswith("vllm serve") and line not in seen:
                        seen.add(line)
                        result = _check(line.replace("${HEAD_IP}", "10.0.0.1"), folder)
                        assert result["accepted"], (line, result.get("errors"))
    assert seen
