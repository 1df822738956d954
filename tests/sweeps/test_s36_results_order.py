"""The results file holds a sweep's rows in scenario order, whichever order the executor finished them
(serial, process pool and Dask runs of one sweep wrote differently ordered files)."""

from pathlib import Path

from autoparallel.sweeps import grid
from autoparallel.sweeps.results import ResultStore, read_rows


def test_commit_writes_scenario_order_after_other_sweeps_rows(tmp_path: Path) -> None:
    old, *swept = grid(["Qwen/Qwen3-8B"], ["1x1xH100", "1x2xH100", "1x4xH100", "1x8xH100"], ["chatbot"])
    rows = {s.id: {"scenario_id": s.id, "cluster": s.cluster, "status": "ok"} for s in (old, *swept)}
    out = tmp_path / "r.jsonl"
    first = ResultStore(out)
    first.load()
    first.append(rows[old.id])
    first.commit()
    store = ResultStore(out)
    store.load()
    for s in reversed(swept):  # finished last-first
        store.append(rows[s.id])
    store.commit([s.id for s in swept])
    assert [r["scenario_id"] for r in read_rows(out)] == [old.id, *(s.id for s in swept)]
