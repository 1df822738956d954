"""Sweeps on Dask: a scheduler lost mid-run wrote the unfinished scenarios as `internal` rows
(`CancelledError: `) and exited 0, and a resume skipped them; an address that accepts TCP but is no
Dask scheduler hung (a silent listener, a dashboard) or failed after 20 s with `MemoryError: Unable to
allocate 3.07 EiB` (an HTTP reply read as a frame) and a `Client.__del__` traceback; a model named by
a relative path was read from each worker's own folder ("no such file or directory: ./mm/qwen")."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoparallel.cli import main
from autoparallel.sweeps import execute
from tests.local_model_config import LLAMA

pytest.importorskip("distributed")

MODEL = "meta-llama/Llama-3.1-8B"
ISL = ("256", "512", "768", "1024", "1536", "2048", "3072", "4096")

# A one-process cluster (scheduler and worker in it) whose third scenario kills the whole process, as
# `kill -9` of a LocalCluster mid-run does: the scenarios before it finish, the rest are lost.
CLUSTER = """
import os, signal, sys, time
from distributed import LocalCluster
from autoparallel.sweeps import execute

calls = []
solve = execute.solve_scenario

def dying(scenario, time_limit_s=10.0):
    calls.append(1)
    if len(calls) == 3:
        time.sleep(0.5)  # the two rows before reach the client
        os.kill(os.getpid(), signal.SIGKILL)
    return solve(scenario, time_limit_s)

execute.solve_scenario = dying
if __name__ == "__main__":
    c = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
        dashboard_address=":0",
    )
    print(c.scheduler_address, flush=True)
    while True:
        time.sleep(1)
"""


def test_a_lost_scheduler_writes_nothing_for_the_lost_scenarios(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execute, "DASK_CONNECT_TIMEOUT_S", 3.0)  # the client's reconnect wait too
    script = tmp_path / "cluster.py"
    script.write_text(CLUSTER)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("tcp://"), address
        out = tmp_path / "r.jsonl"
        args = ["sweep", "--models", MODEL, "--clusters", "1x1xH100", "--isl", ",".join(ISL), "--osl", "128"]
        args += ["--executor", "dask://" + address.removeprefix("tcp://"), "--out", str(out), "--no-progress"]
        assert main(args) == 1
    finally:
        proc.kill()
        proc.wait(10)
    err = capfd.readouterr().err
    assert err.count("\n") == 1, err
    assert "error: 6 scenarios not solved: the Dask cluster went away" in err
    assert "running the sweep again with the same results file solves the rest" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "ok"]  # nothing written for the lost six


def test_a_failing_task_on_a_healthy_cluster_is_still_an_internal_row() -> None:
    """KilledWorker (a worker's death) is no lost cluster: a lone scenario's row says it."""
    from concurrent.futures import Future

    from autoparallel.sweeps.scenario import make_scenario

    class KilledWorker(Exception):
        pass

    class Pool(execute.Executor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def,override]
            f: Future[object] = Future()
            f.set_exception(KilledWorker("attempted to run task 3 times"))
            return f

    rows: list[dict[str, object]] = []
    s = make_scenario(MODEL, "1x1xH100")
    assert execute._run_chunks(Pool(), [[s]], 1.0, rows.append) == []
    assert [(r["status"], r["message"]) for r in rows] == [
        ("internal", "KilledWorker: attempted to run task 3 times")
    ]


@pytest.fixture
def fake_server(request: pytest.FixtureRequest) -> Iterator[int]:
    """A TCP listener that is no Dask scheduler: `http` answers `HTTP/1.1 400`, `silent` never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    kept: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            kept.append(conn)
            if request.param == "http":
                try:
                    conn.settimeout(1.0)
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(2)
    for c in kept:
        c.close()
    sock.close()


@pytest.mark.parametrize("fake_server", ["http", "silent"], indirect=True)
def test_an_address_that_is_no_scheduler_is_one_line_exit_2(
    fake_server: int, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execute, "DASK_CONNECT_TIMEOUT_S", 0.75)
    out = tmp_path / "r.jsonl"
    args = ["sweep", "--models", MODEL, "--clusters", "1x1xH100", "--out", str(out), "--no-progress"]
    args += ["--executor", f"dask://127.0.0.1:{fake_server}"]
    got: list[int] = []
    start = time.monotonic()
    runner = threading.Thread(target=lambda: got.append(main(args)), daemon=True)
    runner.start()
    runner.join(8.0)  # it hung for minutes
    assert got == [2], "no answer within 8 s" if runner.is_alive() else got
    assert time.monotonic() - start < 0.75 + 2.5
    err = capfd.readouterr().err
    assert err.count("\n") == 1, err
    assert f"error: no Dask scheduler answered at tcp://127.0.0.1:{fake_server} within 0.75 s" in err
    assert not out.exists()


def test_a_relative_model_path_is_read_from_where_the_scenario_was_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Dask worker in another folder (here: this process, moved to another folder after the scenarios
    were made, running them on an in-process cluster) reads the model the sweep named."""
    from distributed import LocalCluster

    from autoparallel.sweeps import grid
    from autoparallel.sweeps.execute import run_scenarios
    from autoparallel.sweeps.scenario import _load_model

    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    (here / "mm" / "small").mkdir(parents=True)
    elsewhere.mkdir()
    (here / "mm" / "small" / "config.json").write_text(json.dumps(LLAMA))
    monkeypatch.chdir(here)
    _load_model.cache_clear()
    scenarios = grid(["./mm/small"], ["1x1xH100"])
    (s,) = scenarios
    assert s.model == "./mm/small" and s.label.startswith("./mm/small on")  # shown as written
    monkeypatch.chdir(elsewhere)
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=":0",
    ) as c:
        address = c.scheduler_address.removeprefix("tcp://")
        (row,) = run_scenarios(scenarios, executor=f"dask://{address}", time_limit_s=3).to_dicts()
    assert row["status"] == "ok", row["message"]
    assert row["model"] == "./mm/small" and row["scenario_id"] == s.id
    assert os.getcwd() == str(elsewhere)
