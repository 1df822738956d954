"""Shared helpers for the emitter tests: golden-file comparison and the checkers' JSON verdicts.

Golden files live in tests/frameworks/golden/. To regenerate them after an intended change:
    AUTOPARALLEL_UPDATE_GOLDEN=1 uv run pytest tests/frameworks
then review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).parent / "golden"
SHARED_TOOLS = Path(__file__).resolve().parents[2].parent / "shared" / "tools"
"""The checkers of tools/README.md: `../shared/tools` beside the repository (as in CI)."""


def check_golden(name: str, data: object) -> None:
    """Compare `data` (JSON-serializable) with golden/`name`.json, or write it when updating."""
    path = GOLDEN_DIR / f"{name}.json"
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    if os.environ.get("AUTOPARALLEL_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"missing golden file {path}; run with AUTOPARALLEL_UPDATE_GOLDEN=1"
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert json.loads(text) == expected, f"{name}: output differs from {path}"


def run_json_checker(
    argv: list[str],
    *,
    opener: str = "{",
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: int = 600,
) -> Any:
    """Run one checker process (a framework's own validation code under its own Python) and return
    the JSON it prints on stdout from the first `opener` ("{" or "["); a library's chatter before it
    is skipped."""
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    start = done.stdout.find(opener)
    assert start >= 0, f"checker printed no JSON (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(done.stdout[start:])
