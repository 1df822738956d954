"""The opt-in harness of the tests that run SGLang's own start-up arguments code over emitted lines.

check_sglang_args.py (beside this file) runs under $SGLANG_CHECK_PYTHON, a Python with SGLang 0.5.6
and the transformers it pins (4.57.1) installed; `CHECKER_MARKS` skip a test module, with the reason,
where it is not set. One process checks a whole batch of lines (SGLang's import takes about 6 s).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fw_golden import run_json_checker

from autoparallel.hardware import GPU
from autoparallel.hardware.gpu import ARCH_COMPUTE_CAPABILITY

CHECK_PYTHON = os.environ.get("SGLANG_CHECK_PYTHON")
CHECKER = Path(__file__).with_name("check_sglang_args.py")

CHECKER_MARKS = [
    pytest.mark.skipif(
        not CHECK_PYTHON,
        reason="set SGLANG_CHECK_PYTHON to a Python with SGLang 0.5.6 and transformers 4.57.1 installed",
    ),
]


REMOTE_CONFIG_AS = {"kimi_k2": "deepseek_v3"}
"""model_type -> the transformers model_type whose config class the checkpoint's own config code is
(Kimi-K2 ships DeepSeek's `configuration_deepseek.DeepseekV3Config`)."""


def sglang_case(line: str, config: dict[str, Any], gpu: GPU) -> dict[str, Any]:
    """One line to check: the model's config.json and what SGLang would probe on `gpu` (its memory in
    MiB as the driver reports it, its architecture's compute capability)."""
    # An AMD CDNA3 GPU (MI300X, MI325X: gfx942) reports capability 9.4 under ROCm.
    cc = 94 if gpu.vendor == "amd" else ARCH_COMPUTE_CAPABILITY[gpu.arch]
    mib = gpu.memory_bytes / 2**20
    case = {
        "line": line,
        "config": config,
        "gpu_mem_mib": mib,
        "capability": divmod(cc, 10),
        "vendor": gpu.vendor,
    }
    remote = REMOTE_CONFIG_AS.get(str(config.get("model_type")))
    return case if remote is None else {**case, "remote_config_as": remote}


def check_sglang_lines(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SGLang's verdict on each case: {"accepted", "error", "resolved": {ServerArgs field: value}}.
    One process per GPU vendor (SGLang reads CUDA vs ROCm once per module); AMD's with
    `SGLANG_USE_AITER=1`, as SGLang's ROCm images set it."""
    assert CHECK_PYTHON is not None
    results: dict[int, dict[str, Any]] = {}
    for vendor in ("nvidia", "amd"):
        mine = [i for i, case in enumerate(cases) if case.get("vendor", "nvidia") == vendor]
        if not mine:
            continue
        env = {**os.environ, "SGLANG_USE_AITER": "1"} if vendor == "amd" else None
        verdicts: list[dict[str, Any]] = run_json_checker(
            [CHECK_PYTHON, str(CHECKER)], opener="[", stdin=json.dumps([cases[i] for i in mine]), env=env
        )
        assert len(verdicts) == len(mine)
        results.update(zip(mine, verdicts, strict=True))
    return [results[i] for i in range(len(cases))]


def assert_all_start(labels: list[str], cases: list[dict[str, Any]]) -> None:
    """Fail, with SGLang's own message for each, unless SGLang accepts every case (`labels`: what each
    case is, in the same order)."""
    verdicts = check_sglang_lines(cases)
    refused = [
        f"{label}: {v['error']}" for label, v in zip(labels, verdicts, strict=True) if not v["accepted"]
    ]
    assert not refused, "\n".join(refused)
