"""A results file in JSON Lines is strict JSON: an unbounded TTFT (inf) was written as `Infinity`."""

from __future__ import annotations

import json
import math
from pathlib import Path

from autoparallel.sweeps.results import write_rows


def test_an_infinite_figure_is_null_in_a_jsonl_results_file(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    write_rows(out, [{"scenario_id": "a", "ttft_ms": math.inf, "tpot_ms": 12.5}])
    line = out.read_text().strip()
    assert "Infinity" not in line
    assert json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))) == {
        "scenario_id": "a",
        "ttft_ms": None,
        "tpot_ms": 12.5,
    }
