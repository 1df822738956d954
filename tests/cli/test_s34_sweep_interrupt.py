"""Ctrl-C on a process-pool sweep: `autoparallel: interrupted`, exit 130, and no pool worker left behind.

The command runs in a side thread and the main thread leaves with `os._exit` after a Ctrl-C, so the
pool's own shutdown never ran: its workers were re-parented to PID 1 and waited on the pool's queue
for ever (`cli._stop_sweep_pools`, `sweeps.execute.stop_pools`). A second Ctrl-C during that shutdown
broke into the pool's joins (`cli._interrupted`, `sweeps.execute._SweepPool.stop`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    from autoparallel import cli
    from autoparallel.sweeps import execute

    MARKS = sys.argv[1]  # the pool forks after sys.argv is the command's

    def slow(scenario, time_limit_s):  # a scenario whose search takes long (CP-SAT holds no Python frame)
        if scenario.inputs.get("isl") == 512 and os.environ.get("QUICK_512"):  # a row for the journal
            return {**execute.input_row(scenario), "status": "error", "message": "quick"}
        Path(MARKS, str(os.getpid())).write_text("running")
        time.sleep(60)
        return {}

    execute.solve_scenario = slow
    sys.argv = ["autoparallel", *sys.argv[2:]]
    cli.entry()
    """
)

SWEEP = [
    *("sweep", "--models", "meta-llama/Llama-3.2-1B", "--clusters", "1xH100"),
    *("--isl", "512,1024,2048,4096", "--osl", "64", "--workers", "2", "--no-progress"),
]


def _state(pid: int) -> str | None:
    """The process's state letter (None: gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


@contextmanager
def _sweep(
    tmp_path: Path, argv: list[str], **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    """The sweep `argv` in its own process group, as a terminal's Ctrl-C reaches it, SIGINT at its
    default disposition as from a shell; (the process, its stderr file, the workers' marks folder).
    Whatever it started is killed on the way out, by id."""
    marks = tmp_path / "marks"
    marks.mkdir()
    err = tmp_path / "stderr"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(marks), *argv],
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),  # a file, not a pipe: a worker left behind would hold a pipe open
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
    )
    try:
        yield proc, err, marks
    finally:
        for w in [int(p.name) for p in marks.iterdir()]:
            if _state(w) not in (None, "Z"):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _assert_workers_end(workers: list[int]) -> None:
    deadline = time.monotonic() + 3.0
    while any(_state(w) not in (None, "Z") for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {w: _state(w) for w in workers if _state(w) not in (None, "Z")} == {}


def test_ctrl_c_on_a_pool_sweep_ends_its_workers(tmp_path: Path) -> None:
    with _sweep(tmp_path, SWEEP) as (proc, err, marks):
        deadline = time.monotonic() + 8.0
        while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        workers = [int(p.name) for p in marks.iterdir()]
        assert len(workers) == 2, err.read_text()
        os.killpg(proc.pid, signal.SIGINT)  # the whole group: the command and its pool's workers
        assert proc.wait(timeout=6.0) == 130 and "autoparallel: interrupted" in err.read_text()
        _assert_workers_end(workers)


def test_a_burst_of_ctrl_c_on_a_pool_sweep_still_ends_in_one_line(tmp_path: Path) -> None:
    """A held Ctrl-C (two SIGINTs 1 ms apart): the second broke into `_SweepPool.stop`'s `p.join` and
    printed a KeyboardInterrupt traceback, exit 1 (or -2 in `entry`), two runs in three."""
    out = tmp_path / "out.parquet"
    with _sweep(tmp_path, [*SWEEP, "--out", str(out)], QUICK_512="1") as (proc, err, marks):
        journal = Path(f"{out}.journal.jsonl")
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(marks.iterdir())) >= 2 and journal.exists() and journal.read_text().count("\n"):
                break
            time.sleep(0.02)
        workers = [int(p.name) for p in marks.iterdir()]
        assert len(workers) == 2, err.read_text()
        for _ in range(8):  # the whole group, 1 ms apart
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.001)
        assert proc.wait(timeout=6.0) == 130, err.read_text()
        assert err.read_text() == "autoparallel: interrupted\n"
        _assert_workers_end(workers)
        rows = [json.loads(line) for line in journal.read_text().splitlines()]  # kept for a resume
        assert [r["message"] for r in rows] == ["quick"] and not out.exists()
