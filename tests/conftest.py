"""Test-wide settings: no test may reach a model hub. `run_cli` runs the command line as a user does."""

from __future__ import annotations

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
def silent_port() -> Iterator[int]:
    """A local server that accepts every connection and never answers (`local_server.silent_server`)."""
    from tests.local_server import silent_server

    with silent_server() as port:
        yield port
