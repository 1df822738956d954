"""A Dask executor's scenarios go in chunks (`execute._chunks`): one task per cheap scenario (about
10 ms each, Dask's own cost per task as much) made 2,000 of them slower on 2 Dask workers than serially.
Measured on 400 scenarios of ~10 ms, 2 local workers,
one a task 3.1-6.0 s, chunks of 16 2.0-2.4 s, serial 3.7 s."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from autoparallel.sweeps import execute
from autoparallel.sweeps.scenario import make_scenario


def _todo(n: int) -> list[Any]:
    return [
        make_scenario("meta-llama/Llama-3.2-1B", "1xH100", {"isl": 512, "osl": 100 + k}, "throughput")
        for k in range(n)
    ]


def test_chunks_keep_order_and_give_each_thread_several() -> None:
    todo = _todo(300)
    chunks = execute._chunks(todo, 2)
    assert [s for c in chunks for s in c] == todo
    assert max(map(len, chunks)) == execute.CHUNK_MAX and len(chunks) >= execute.CHUNKS_PER_THREAD * 2
    assert all(len(c) == 1 for c in execute._chunks(todo[:20], 2))  # few scenarios: one a task
    assert all(len(c) == 1 for c in execute._chunks(todo, None))  # not a Dask executor
    assert len(execute._chunks(todo, 64)) == len(todo)  # many threads: none left idle


class _Client:
    def nthreads(self) -> dict[str, int]:
        return {"tcp://a": 1}


class _DaskLike(ThreadPoolExecutor):
    """An executor with a Dask client's `nthreads`, counting the tasks it is given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self._client = _Client()
        self.tasks = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.tasks += 1
        return super().submit(fn, *args, **kwargs)


def test_a_dask_executor_solves_chunks_and_records_every_row_in_order_of_the_serial_run() -> None:
    todo = _todo(40)
    serial = execute.run_scenarios(todo, executor="serial")
    with _DaskLike() as pool:
        chunked = execute.run_scenarios(todo, executor=pool)
    assert pool.tasks == len(execute._chunks(todo, 1)) < len(todo)
    key = ("scenario_id", "status", "tp", "max_num_seqs", "throughput_tok_s")
    assert [tuple(r[k] for k in key) for r in chunked] == [tuple(r[k] for k in key) for r in serial]


def test_a_chunk_whose_worker_died_runs_again_one_scenario_a_task(monkeypatch: Any) -> None:
    """A worker's death (Dask's KilledWorker) failed its whole chunk: 16 `internal` rows where one
    scenario crashed, journaled, so a resume skipped them. Its scenarios now run again one a task."""
    todo = _todo(40)
    crash = todo[5].id
    real = execute.solve_chunk

    def dies_on_one(chunk: list[Any], time_limit_s: float) -> list[dict[str, Any]]:
        if any(s.id == crash for s in chunk):
            raise RuntimeError("KilledWorker: the worker running it died")
        return real(chunk, time_limit_s)

    monkeypatch.setattr(execute, "solve_chunk", dies_on_one)
    with _DaskLike() as pool:
        rows = execute.run_scenarios(todo, executor=pool)
    status = {r["scenario_id"]: r["status"] for r in rows}
    assert status.pop(crash) == "internal" and set(status.values()) == {"ok"} and len(status) == 39
