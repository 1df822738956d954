"""The opt-in harness of the tests that run vLLM 0.32's own parser over emitted `vllm serve` lines.

../shared/tools/check_vllm_args.py runs under $VLLM_CHECK_PYTHON (the vLLM 0.32 CPU checker env of
tools/README.md); `CHECKER_MARKS` skip a test module, with the reason, where either is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fw_golden import SHARED_TOOLS

CHECK_PYTHON = os.environ.get("VLLM_CHECK_PYTHON")
CHECKER = SHARED_TOOLS / "check_vllm_args.py"

CHECKER_MARKS = [
    pytest.mark.skipif(
        not CHECK_PYTHON,
        reason="set VLLM_CHECK_PYTHON to the vLLM 0.32 checker's Python "
        "(~/.vllmcheck/bin/python, see ../shared/tools/README.md)",
    ),
    pytest.mark.skipif(not CHECKER.exists(), reason=f"{CHECKER} not found (../shared/tools beside the repo)"),
]


def check_vllm_command(command: str, config_dir: Path) -> dict[str, object]:
    """The checker's verdict on one `vllm serve` line, the model's config.json read from `config_dir`."""
    assert CHECK_PYTHON is not None
    # HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set before the checker starts (tests/conftest.py sets them)
    # make EngineArgs look the model id up in the local HF cache and fail; the checker goes offline
    # itself once vLLM is imported.
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
