"""The command-line surface is frozen: a new or renamed option must update this list on purpose."""

from __future__ import annotations

import argparse

import pytest

from autoparallel.cli import build_parser

_SERVING = {
    "--cluster",
    "--concurrency",
    "--isl",
    "--json",
    "--osl",
    "--request-rate",
    "--tpot-ms",
    "--ttft-ms",
    "--workload",
    "--workload-file",
}
_REPLAY = {"--num-prompts", "--burstiness"}
"""Flags of the finite-benchmark replay: `plan` and `evaluate` run it, `pareto` does not."""
_TRAINING = {"--global-batch", "--precision", "--seq-len", "--tokens", "--train"}

FROZEN: dict[str, set[str]] = {
    "plan": _SERVING
    | _REPLAY
    | _TRAINING
    | {
        "--gpu-memory-utilization",
        "--kv-cache-dtype",
        "--max-model-len",
        "--objective",
        "--quantization",
        "--seed",
        "--time-limit",
        "--top",
        "--workers",
        "--fleet",
        "--price",
        "--gpus-file",
        "--plan-file",
        "--disagg",
        "--engine",
        "--grad-reduce-in-bf16",
        "--world-sizes",
        "--mem-fraction-static",
        "--free-gpu-memory-fraction",
    },
    "evaluate": _SERVING
    | _REPLAY
    | _TRAINING
    | {
        "--cp",
        "--cp-comm-type",
        "--dp",
        "--enable-expert-parallel",
        "--enforce-eager",
        "--engine",
        "--ep",
        "--etp",
        "--gpus-file",
        "--layers-per-stage",
        "--gpu-memory-utilization",
        "--mem-fraction-static",
        "--free-gpu-memory-fraction",
        "--kv-cache-dtype",
        "--max-model-len",
        "--max-num-batched-tokens",
        "--max-num-seqs",
        "--micro-batch",
        "--nsa-decode-backend",
        "--nsa-prefill-backend",
        "--pp",
        "--price",
        "--quantization",
        "--recompute",
        "--sequence-parallel",
        "--tp",
        "--vp",
        "--zero",
    },
    "pareto": _SERVING
    | _TRAINING
    | {
        "--disagg",
        "--engine",
        "--gpus-file",
        "--grad-reduce-in-bf16",
        "--no-progress",
        "--normalize",
        "--objectives",
        "--out",
        "--plot",
        "--points",
        "--price",
        "--progress",
        "--time-limit",
        "--weights",
        "--world-sizes",
    },
    "sweep": _TRAINING
    | {
        "--clusters",
        "--concurrency",
        "--disagg",
        "--engines",
        "--executor",
        "--gpus-file",
        "--grad-reduce-in-bf16",
        "--isl",
        "--json",
        "--max-model-len",
        "--models",
        "--no-progress",
        "--objective",
        "--objectives",
        "--osl",
        "--out",
        "--price",
        "--progress",
        "--request-rate",
        "--time-limit",
        "--tpot-ms",
        "--ttft-ms",
        "--workers",
        "--workload-file",
        "--workloads",
    },
    "memory": {
        "--data-parallel-size",
        "--dp",
        "--dtype",
        "--enable-expert-parallel",
        "--enforce-eager",
        "--gpu",
        "--gpu-memory-utilization",
        "--gpus-file",
        "--json",
        "--kv-cache-dtype",
        "--max-model-len",
        "--max-num-batched-tokens",
        "--max-num-seqs",
        "--pipeline-parallel-size",
        "--pp",
        "--quantization",
        "--tensor-parallel-size",
        "--tp",
        "--vllm-version",
    },
    "model": {"--json"},
    "models": {"--json"},
    "gpus": {"--json"},
    "detect": {"--json"},
    "profile": {"--json", "--name", "--output"},
}


def test_cli_options_are_frozen() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = {
        name: {o for a in p._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
        for name, p in sub.choices.items()
    }
    assert found == FROZEN
    assert all(callable(p.get_default("func")) for p in sub.choices.values())


@pytest.mark.parametrize("command", ["plan", "evaluate", "pareto"])
def test_every_mode_specific_flag_defaults_to_none(command: str) -> None:
    """`check_mode` tells a given flag by its value not being None: a mode-specific flag with a
    default (as --disagg had, "auto") is never seen as given, and is dropped in silence in the
    other mode."""
    from autoparallel.cli.plan_cmd import _SERVING_ONLY, _TRAINING_ONLY

    args = vars(build_parser().parse_args([command, "m", "--cluster", "1xH100"]))
    for dest in (*_SERVING_ONLY[command], *_TRAINING_ONLY[command]):
        assert dest in args and args[dest] is None, dest


def test_no_flag_is_taken_by_a_prefix_of_another(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's abbreviations once read `plan MODEL --tp 2` (an `evaluate` flag) as `--tpot-ms 2`
    and planned for a 2 ms TPOT limit; no parser takes a prefix of a flag now."""
    from autoparallel.cli import main

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert not parser.allow_abbrev and not any(p.allow_abbrev for p in subs.values())
    with pytest.raises(SystemExit) as exit_:
        main(["plan", "meta-llama/Llama-3.2-1B", "--cluster", "1x8xH100", "--tp", "2"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --tp 2" in capsys.readouterr().err
