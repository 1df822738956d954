"""Sweep throughput: 1,000 serving scenarios serial vs 2 local processes vs a local Dask cluster of 2
workers, and a run killed halfway then resumed.

Each mode runs in a fresh Python process (so imports, pool or cluster start-up and peak memory belong
to that mode alone) and reports: wall time of the sweep (start-up of the pool / cluster included; the
Dask cluster's start-up also shown apart), scenarios per second, the peak resident memory of the
driving process and of the largest worker (`ru_maxrss` of this process and of its reaped children),
and the ratios to serial. The resume check starts a 2-process sweep writing Parquet, kills it with
SIGKILL once about half the scenarios are in its journal, re-runs the same command and checks that
the re-run solves exactly the remainder and that the file ends with every scenario once.

Usage: uv run python benchmarks/sweep.py [--scenarios 1000] [--json]
       uv run python benchmarks/sweep.py --mode serial|process|dask [--out F] [--scenarios N]  (one mode)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODELS = (
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.2-3B",
    "meta-llama/Llama-3.1-8B",
    "Qwen/Qwen3-8B",
    "mistralai/Mistral-7B-v0.3",
)
CLUSTERS = (
    "1xH100",
    "1x2xH100",
    "1x4xH100",
    "1x8xH100",
    "1xA100-80G",
    "1x4xA100-80G",
    "1xL40S",
    "1x4xL40S",
    "1xH200",
    "1x8xH200",
)
WORKLOADS: tuple[str | dict[str, Any], ...] = (
    "chatbot",
    "batch",
    "rag",
    "reasoning",
    {"isl": 512, "osl": 128},
    {"isl": 2048, "osl": 512},
    {"isl": 4096, "osl": 256, "ttft_ms": 1500},
    {"isl": 8192, "osl": 1024},
    {"isl": 1024, "osl": 256, "request_rate": 20},
    {"isl": 2048, "osl": 256, "concurrency": 64, "tpot_ms": 40},
)
OBJECTIVES = ("throughput", "cost")


def scenarios(n: int) -> list[Any]:
    """The first `n` scenarios of models × clusters × workloads × objectives (5 × 10 × 10 × 2 = 1,000)."""
    from autoparallel.sweeps import grid

    todo = grid(list(MODELS), list(CLUSTERS), list(WORKLOADS), list(OBJECTIVES))
    if n > len(todo):
        raise SystemExit(f"at most {len(todo)} scenarios")
    return todo[:n]


def _peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def run_mode(mode: str, n: int, out: str | None) -> dict[str, Any]:
    """One mode in this process: the sweep's figures."""
    from autoparallel.sweeps.execute import run_scenarios

    todo = scenarios(n)
    start = time.perf_counter()
    cluster_s = 0.0
    if mode == "dask":
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
            cluster_s = time.perf_counter() - start
            address = "dask://" + cl.scheduler_address.split("://")[1]
            res = run_scenarios(todo, executor=address, out=out, progress=False)
    else:
        res = run_scenarios(todo, workers=1 if mode == "serial" else 2, out=out, progress=False)
    wall = time.perf_counter() - start
    solved = len(res) - res.skipped
    return {
        "mode": mode,
        "scenarios": len(res),
        "solved": solved,
        "skipped": res.skipped,
        "wall_s": wall,
        "cluster_start_s": cluster_s,
        "scenarios_per_s": solved / wall if wall else 0.0,
        "statuses": res.counts(),
        "peak_rss_main_mib": _peak_mib(resource.RUSAGE_SELF),
        "peak_rss_worker_mib": _peak_mib(resource.RUSAGE_CHILDREN),
    }


def _child(mode: str, n: int, out: str | None = None, *, session: bool = False) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "benchmarks.sweep", "--mode", mode, "--scenarios", str(n)]
    if out:
        cmd += ["--out", out]
    root = Path(__file__).resolve().parents[1]
    return subprocess.Popen(
        cmd,
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=session,
        env={**os.environ, "PYTHONPATH": str(root)},
    )


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"benchmark child failed ({proc.returncode})")
    return dict(json.loads(stdout.strip().splitlines()[-1]))


def kill_and_resume(n: int) -> dict[str, Any]:
    """Kill a 2-process sweep once about half is journaled; re-run; check only the rest is solved."""
    from autoparallel.sweeps.results import read_rows

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.parquet"
        journal = Path(str(out) + ".journal.jsonl")
        proc = _child("process", n, str(out), session=True)
        while proc.poll() is None:
            if journal.exists() and journal.read_text().count("\n") >= n // 2:
                os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its pool workers, as a hard stop would
                break
            time.sleep(0.05)
        proc.communicate()
        finished = journal.read_text().count("\n") if journal.exists() else 0
        rerun = _result(_child("process", n, str(out)))
        rows = read_rows(out)
        ids = [r["scenario_id"] for r in rows]
        return {
            "killed_after": finished,
            "rerun_skipped": rerun["skipped"],
            "rerun_solved": rerun["solved"],
            "file_rows": len(rows),
            "file_unique": len(set(ids)),
            "only_remainder_solved": rerun["skipped"] == finished and rerun["solved"] == n - finished,
            "rerun_wall_s": rerun["wall_s"],
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", type=int, default=1000)
    ap.add_argument("--mode", choices=("serial", "process", "dask"))
    ap.add_argument("--out")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.scenarios, args.out)))
        return 0
    modes = {m: _result(_child(m, args.scenarios)) for m in ("serial", "process", "dask")}
    serial = modes["serial"]["wall_s"]
    for m in modes.values():
        m["speedup_vs_serial"] = serial / m["wall_s"]
    resume = kill_and_resume(args.scenarios)
    report = {"cores": os.cpu_count(), "modes": modes, "resume": resume}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.scenarios} serving scenarios on {os.cpu_count()} cores")
    print(
        f"{'mode':8} {'wall s':>8} {'scen/s':>7} {'x serial':>8} {'RSS main MiB':>12} "
        f"{'RSS worker MiB':>14}  statuses"
    )
    for m in modes.values():
        extra = f" (cluster start {m['cluster_start_s']:.1f} s)" if m["mode"] == "dask" else ""
        print(
            f"{m['mode']:8} {m['wall_s']:8.1f} {m['scenarios_per_s']:7.2f} {m['speedup_vs_serial']:8.2f} "
            f"{m['peak_rss_main_mib']:12.0f} {m['peak_rss_worker_mib']:14.0f}  {m['statuses']}{extra}"
        )
    r = resume
    print(
        f"resume: killed after {r['killed_after']} rows; re-run skipped {r['rerun_skipped']}, solved "
        f"{r['rerun_solved']} in {r['rerun_wall_s']:.1f} s; file has {r['file_rows']} rows "
        f"({r['file_unique']} unique); only the remainder solved: {r['only_remainder_solved']}"
    )
    return 0 if r["only_remainder_solved"] and r["file_unique"] == r["file_rows"] == args.scenarios else 1


if __name__ == "__main__":
    sys.exit(main())
