"""The examples run as a user runs them (`uv run python examples/NAME.py`), against the API as it is.

`check_my_config.py` read `solver.optimum["vllm_command"]` after the key became `command`, and nothing
ran it; each example here runs to the end in a scratch folder (the ones that write files write there).
The 1,000-scenario sweep (`what_if_sweep.py`) is left to `tests/sweeps`, which cover its API.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FAST = (
    "check_my_config.py",
    "pareto_front.py",
    "serve_custom_slo.py",
    "serve_llama70b.py",
    "train_llama70b.py",
)


def test_every_example_is_run_here_or_named() -> None:
    """A new example joins `FAST` or is named as left out, so none is silently untested."""
    assert {p.name for p in EXAMPLES.glob("*.py")} == {*FAST, "what_if_sweep.py"}


@pytest.mark.parametrize("name", FAST)
def test_example_runs(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the examples use zoo models only
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert capsys.readouterr().out.strip()
