"""Every prefill / decode `vllm serve` line of a disaggregated plan (with --kv-transfer-config for the
NIXL connector) checked by vLLM 0.32's own parser (opt-in, like test_fleet_vllm_checker.py).

    VLLM_CHECK_PYTHON=~/.vllmcheck/bin/python uv run pytest tests/frameworks/test_disagg_vllm_checker.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from vllm_checker import CHECKER_MARKS, check_vllm_command

from autoparallel.disagg import compare_disagg
from autoparallel.hardware import Cluster
from autoparallel.models.zoo import find_entry
from autoparallel.workload import Serving

pytestmark = CHECKER_MARKS

CASES = [
    ("meta-llama/Llama-3.1-70B", "2x8xH100", Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=30)),
    ("Qwen/Qwen3-30B-A3B", "2x8xH100", Serving(isl=2048, osl=512, ttft_ms=2000, tpot_ms=50)),
    ("deepseek-ai/DeepSeek-V3", "4x8xH100", Serving.preset("chatbot")),  # engines over two nodes each
]


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
                        env, _, serve = line.partition(" vllm serve ")
                        if serve:  # every node's: `VLLM_NIXL_SIDE_CHANNEL_HOST=... vllm serve ...`
                            assert env.startswith("VLLM_NIXL_SIDE_CHANNEL_HOST=")
                            assert "--kv-transfer-config" in serve
                            command = re.sub(r"\$\{POOL\d+_NODE\d+_IP\}", "10.0.0.1", f"vllm serve {serve}")
                            result = check_vllm_command(command, tmp_path)
                            assert result["accepted"], (line, result.get("errors"))
                            roles.add(role)
    assert roles == {"prefill", "decode"}
    assert "--prefiller-hosts" in comp.launch["proxy"] and "--decoder-ports" in comp.launch["proxy"]
