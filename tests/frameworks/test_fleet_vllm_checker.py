"""Every `vllm serve` line of a fleet plan checked by vLLM 0.32's own parser (opt-in, like
test_vllm_checker.py): per-replica lines with --port, multi-node data-parallel EP lines, mixed pools.

    VLLM_CHECK_PYTHON=~/.vllmcheck/bin/python uv run pytest tests/frameworks/test_fleet_vllm_checker.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from vllm_checker import CHECKER_MARKS, check_vllm_command

from autoparallel.fleet import FleetEntry, solve_fleet
from autoparallel.models.zoo import find_entry

pytestmark = CHECKER_MARKS

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
                        command = re.sub(r"\$\{POOL\d+_NODE\d+_IP\}", "10.0.0.1", line)  # a replica's head
                        result = check_vllm_command(command, folder)
                        assert result["accepted"], (line, result.get("errors"))
    assert seen
