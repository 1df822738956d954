"""A sweep's process killed outright (SIGKILL: the out-of-memory killer's signal, no handler runs) left
its pool workers re-parented and waiting on the pool's queue for ever (and its marks folder behind);
each now removes the folder and exits within `execute.PARENT_POLL_S` of its parent's death
(`execute._worker_init`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Workers poll their parent every 0.2 s rather than `execute.PARENT_POLL_S` (1 s): the same watch, the
# test's waits (its sleep between polls below, the workers' exit after the kill) a fifth as long. Fork
# workers inherit the sweep process's module; the fork server (whose children are forkserver's workers)
# imports this module first (an import it cannot make it skips: the workers then poll every second).
_FAST_POLL = """
from autoparallel.sweeps import execute
execute.PARENT_POLL_S = 0.2
"""

_SCRIPT = """
import multiprocessing, sys, time
import _s42_fast_poll
from autoparallel.sweeps import execute
multiprocessing.set_start_method(sys.argv[1], force=True)
multiprocessing.set_forkserver_preload(["_s42_fast_poll"])
pool = execute._SweepPool(2)
# the workers outlive their parent watch's first polls while the sweep's process lives (forkserver:
# their parent is the fork server, not the sweep's process, and they all ended at once)
if sys.argv[1] == "forkserver":
    assert pool.submit(time.sleep, 1.5 * execute.PARENT_POLL_S).result() is None
futures = [pool.submit(time.sleep, 60) for _ in range(4)]
time.sleep(0.5)
print(pool.marks, " ".join(str(p.pid) for p in pool.workers()), flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("start", ["fork", "forkserver"])
def test_workers_exit_when_the_sweeps_process_is_killed(start: str, tmp_path: Path) -> None:
    (tmp_path / "_s42_fast_poll.py").write_text(_FAST_POLL)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, start], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    marks, *words = proc.stdout.readline().split()
    pids = [int(p) for p in words]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _alive(p)]
    for p in left:  # never leave them behind, even when the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"workers {left} outlived the sweep's process"
    assert not os.path.exists(marks)
