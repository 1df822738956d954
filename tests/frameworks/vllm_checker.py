"""The opt-in harness of the tests that run vLLM 0.32's own parser over emitted `vllm serve` lines.

../shared/tools/check_vllm_args.py runs under $VLLM_CHECK_PYTHON (the vLLM 0.32 CPU checker env of
tools/README.md); `CHECKER_MARKS` skip a test module, with the reason, where either is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fw_golden import SHARED_TOOLS, run_json_checker

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
    result: dict[str, object] = run_json_checker(
        [CHECK_PYTHON, str(CHECKER), "--json", "--config-dir", str(config_dir), command], env=env
    )
    return result
