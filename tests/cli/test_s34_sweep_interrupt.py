"""Ctrl-C on a process-pool sweep: `autoparallel: interrupted`, exit 130, and no pool worker left behind.

The command runs in a side thread and the main thread leaves with `os._exit` after a Ctrl-C, so the
pool's own shutdown never ran: its workers were re-parented to PID 1 and waited on the pool's queue
for ever (`cli._stop_sweep_pools`, `sweeps.execute.stop_pools`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
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
        Path(MARKS, str(os.getpid())).write_text("running")
        time.sleep(60)
        return {}

    execute.solve_scenario = slow
    sys.argv = ["autoparallel", *sys.argv[2:]]
    cli.entry()
    """
)


def _state(pid: int) -> str | None:
    """The process's state letter (None: gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def test_ctrl_c_on_a_pool_sweep_ends_its_workers(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    argv = [
        *("sweep", "--models", "meta-llama/Llama-3.2-1B", "--clusters", "1xH100"),
        *("--isl", "512,1024,2048,4096", "--osl", "64", "--workers", "2", "--no-progress"),
    ]
    err = tmp_path / "stderr"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(marks), *argv],
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),  # a file, not a pipe: a worker left behind would hold a pipe open
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 8.0
        while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        workers = [int(p.name) for p in marks.iterdir()]
        assert len(workers) == 2, err.read_text()
        os.killpg(proc.pid, signal.SIGINT)  # the whole group: the command and its pool's workers
        assert proc.wait(timeout=6.0) == 130 and "autoparallel: interrupted" in err.read_text()
        deadline = time.monotonic() + 3.0
        while any(_state(w) not in (None, "Z") for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {w: _state(w) for w in workers if _state(w) not in (None, "Z")} == {}
    finally:
        for w in [int(p.name) for p in marks.iterdir()]:
            if _state(w) not in (None, "Z"):
                os.kill(w, signal.SIGKILL)  # what the test started, by id
        if proc.poll() is None:
            proc.kill()
            proc.wait()
