"""A TPOT limit on outputs that are all one token is dropped for a measured output shape too: a log of
one-token outputs, or a file of 100-token outputs planned at --osl 1 (s43 fB, problem 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.sweeps import make_scenario
from autoparallel.workload import Serving, one_token_outputs

SMALL = "meta-llama/Llama-3.2-1B"
FLAT = (1.0,) * 101


def _profiled(tmp_path: Path, output_tokens: int) -> Path:
    log, out = tmp_path / f"log{output_tokens}.jsonl", tmp_path / f"wl{output_tokens}.json"
    rows = [
        {"arrival_time": t * 0.5, "prompt_tokens": 500 + t, "output_tokens": output_tokens} for t in range(50)
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["profile", str(log), "-o", str(out)]) == 0
    return out


def test_a_shape_of_one_token_outputs_has_no_tpot() -> None:
    assert Serving(osl=1, osl_quantiles=FLAT, tpot_ms=5).tpot_ms is None
    # a fixed-length shape scaled to osl 1 (the replay's rule, `lengths_at`) is one token too
    fixed = Serving(isl=500, osl=100, osl_quantiles=(100.0,) * 101, tpot_ms=50)
    assert fixed.tpot_ms == 50 and fixed.with_updates({"osl": 1, "tpot_ms": 5}).tpot_ms is None


def test_a_shape_with_longer_outputs_keeps_its_tpot() -> None:
    spread = (1.0,) * 90 + (20.0,) * 11  # scaled to a mean of 1 token, the top tenth is still > 1
    assert not one_token_outputs(1, 0.0, spread)
    assert Serving(osl=1, osl_quantiles=spread, tpot_ms=5).tpot_ms == 5
    assert Serving(osl=1, osl_cv=1, tpot_ms=30).tpot_ms == 30
    assert Serving(osl=2, tpot_ms=5).tpot_ms == 5


@pytest.mark.parametrize(("tokens", "extra"), [(1, []), (100, ["--osl", "1"])])
def test_plan_drops_the_limit_with_the_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tokens: int, extra: list[str]
) -> None:
    wl = _profiled(tmp_path, tokens)
    capsys.readouterr()
    argv = ["plan", SMALL, "--cluster", "1xH100", "--disagg", "off", "--workload-file", str(wl)]
    # before: exit 1 on tpot_slo (TPOT limit 5 ms) where the same request as flags exits 0
    assert main([*argv, *extra, "--tpot-ms", "0.5"]) == 0
    assert "note: --tpot-ms dropped: every output is one token" in capsys.readouterr().err


def test_a_sweep_label_does_not_show_a_dropped_limit(tmp_path: Path) -> None:
    wl = _profiled(tmp_path, 1)
    row = make_scenario(SMALL, "1xH100", {"workload_file": str(wl), "tpot_ms": 5})
    assert row.to_workload().tpot_ms is None and "tpot_ms" not in row.workload_label
    kept = make_scenario(SMALL, "1xH100", {"workload_file": str(wl), "osl": 2, "tpot_ms": 5})
    assert kept.to_workload().tpot_ms == 5 and "tpot_ms=5" in kept.workload_label
