"""Test-wide settings: no test may reach a model hub. `run_cli` runs the command line as a user does."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

# pytest caches its rewritten test modules (and Python the package's modules) as bytecode only where
# bytecode may be written; a machine-wide PYTHONDONTWRITEBYTECODE made each worker of each run rewrite
# and compile all of them again (about 5 s of collection per worker). The caches are gitignored.
sys.dont_write_bytecode = False
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """After each full collection, what survived it (modules, test items, the package's caches of
    models and tables) moves to the permanent generation (`gc.freeze`), so that the next full
    collections, and pytest's two at the end of each worker, walk only what came after. The heap
    grows to about a million such objects over tests/cli alone: each full collection walked them all
    again, and the end of each worker of the whole suite waited 4-7 s on pytest's two. What becomes
    garbage is still collected, except a cycle among objects that had survived a full collection: that
    is left to the process's exit."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


gc.callbacks.append(_freeze_survivors)


def pytest_configure(config: pytest.Config) -> None:
    # `gc.get_referrers` does not see frozen objects: Hypothesis's check of its own thread-local random
    # (`register_random`, once a process) then warns that nothing refers to it. It registers it all
    # the same; no test registers a random of its own.
    message = "It looks like `register_random` was passed an object"
    config.addinivalue_line("filterwarnings", f"ignore:{message}:hypothesis.errors.HypothesisWarning")


CliRun = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_cli() -> CliRun:
    """`autoparallel ARGS...` in a fresh process, as a user runs it: its exit code, stdout, stderr."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "autoparallel", *args], capture_output=True, text=True, timeout=timeout
        )

    return run


@pytest.fixture
def run_main(capsys: pytest.CaptureFixture[str]) -> CliRun:
    """`run_cli` in this process (`autoparallel.cli.main`): the same exit code, stdout and stderr without
    the second or so of a fresh interpreter's start-up, for tests about a command's output, not about
    the process (its signals, streams or exit). A SystemExit (argparse's usage error) is its exit code,
    as the interpreter makes it."""
    from autoparallel.cli import main

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["autoparallel", *args], code, out, err)

    return run


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local server that accepts every connection and never answers (`local_server.silent_server`)."""
    from tests.local_server import silent_server

    with silent_server() as port:
        yield port
