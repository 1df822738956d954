"""TensorRT-LLM replicas that span nodes: each `mpirun` reads a hostfile of its own.

`mpirun --hostfile` (Open MPI) starts the world on the hosts the file lists; two replicas of one
engine on different nodes sharing one `hostfile` name would both start on the first one's nodes.
The fleet names each replica's `trtllm.hostfile_for(engine, replica)` and says so in a note, as the
single-engine launch (`trtllm.trtllm_launch`) says of its copies ("a hostfile of its own").
"""

from __future__ import annotations

import functools
import shlex
from typing import Any

import yaml

from autoparallel.fleet import FleetPlan, solve_fleet
from autoparallel.frameworks.trtllm import trtllm_launch
from autoparallel.solvers.serving.space import ServingOptions

MODEL = "meta-llama/Llama-3.1-405B-Instruct"


@functools.cache
def plan() -> FleetPlan:
    options = ServingOptions(engines=("trtllm",))
    entry = {"model": MODEL, "isl": 1024, "osl": 256, "ttft_ms": 2000, "tpot_ms": 50}  # plan's chatbot
    return solve_fleet([entry], "4x8xH100", objective="throughput", options=options)


def _hostfile(line: str) -> str:
    words = shlex.split(line)
    return words[words.index("--hostfile") + 1]


def test_fleet_trtllm_replicas_have_their_own_hostfiles() -> None:
    fp = plan()
    (engine,) = fp.to_dict()["deployment"]["engines"]
    launch: dict[str, Any] = engine["trtllm"]
    assert engine["replicas"] == 2 and all(len(n) == 2 for n in engine["nodes"])
    names = [_hostfile(replica[0][0]) for replica in launch["commands"]]
    assert len(set(names)) == len(names) == 2, names
    assert [h["file"] for h in launch["hostfiles"]] == names
    for h, nodes in zip(launch["hostfiles"], engine["nodes"], strict=True):
        assert h["text"].splitlines() == [f"${{POOL0_NODE{n}_IP}} slots=8" for n in nodes]
    assert any("a hostfile of its own" in n for n in launch["notes"])
    assert "a hostfile of its own" in fp.explain()
    doc = yaml.safe_load(fp.to_yaml())
    (planned,) = doc["engines"]
    assert [r["hostfile"]["file"] for r in planned["replicas"]] == names


def test_trtllm_launch_names_the_hostfile_it_is_given() -> None:
    from autoparallel.configs import ServingConfig

    config = ServingConfig(tp=8, pp=2)
    assert _hostfile(trtllm_launch(MODEL, config, 8).line) == "hostfile"
    launch = trtllm_launch(MODEL, config, 8, hostfile="hostfile-3-1")
    assert _hostfile(launch.line) == "hostfile-3-1"
    assert any("`hostfile-3-1`" in n for n in launch.notes)
