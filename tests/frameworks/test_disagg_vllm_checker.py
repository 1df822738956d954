"""Every prefill / decode `vllm serve` line of a disaggregated plan (with --kv-transfer-config for the
NIXL connector) checked by vLLM 0.32's own parser (opt-in, like test_fleet_vllm_checker.py).

    VLLM_CHECK_PYTHON=~/.vllmcheck/bin/python uv run pytest tests/frameworks/test_disagg_vllm_checker.py
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fw_golden import SHARED_TOOLS

from autoparallel.disagg import compare_disagg
from autoparallel.hardware import Cluster
from autoparallel.models.zoo import find_entry
from autoparallel.workload import Serving

CHECK_PYTHON = os.environ.get("VLLM_CHECK_PYTHON")
CHECKER = SHARED_TOOLS / "check_vllm_args.py"

pytestmark = [
    pytest.mark.skipif(not CHECK_PYTHON, reason="set VLLM_CHECK_PYTHON to the vLLM 0.32 checker's Python"),
    pytest.mark.skipif(not CHECKER.exists(), reason=f"{CHECKER} not found (../shared/tools beside the repo)"),
]

CASES = [
    ("meta-llama/Llama-3.1-70B", "2x8xH100", Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=30)),
    ("Qwen/Qwen3-30B-A3B", "2x8xH100", Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=50)),
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


@pytest.mark.parametrize(("model", "cluster", "workload"), CASES, ids=[m for m, _, _ in CASES])
def test_pd_lines_accepted_by_vllm(model: str, cluster: str, workload: Serving, tmp_path: Path) -> None:
    comp = compare_disagg(model, workload, Cluster.parse(cluster), mode="on")
    assert comp.launch is not None
    entry = find_entry(model)
    assert entry is not None
    (tmp_path / "config.json").write_text(json.dumps(entry.config), encoding="utf-8")
    roles = set()
    for role in ("prefill", "decode"):
        for engine in comp.launch[role]:
            for replica in engine["replicas"]:
                for node in replica["commands"]:
                    for line in node:
                        if line.startswith("vllm serve"):
                            assert "--kv-transfer-config" in line
                            result = _check(line.replace("${HEAD_IP}", "10.0.0.1"), tmp_path)
                            assert result["accepted"], (line, result.get("errors"))
                            roles.add(role)
    assert roles == {"prefill", "decode"}
    assert "--prefiller-hosts" in comp.launch["router"] and "--decoder-ports" in comp.launch["router"]
