"""stdout that cannot be written is the environment, not a bug: one line on stderr and exit 2, where
`plan ... > /dev/full` (OSError ENOSPC) and `models >&-` (sys.stdout None) said "internal error ...
please report" and exited 3; an OSError of the command's own stays an internal error (s35 bug 2)."""

from __future__ import annotations

import argparse
import errno
import io
import os
import subprocess
import sys

import pytest

from autoparallel import cli
from autoparallel.cli import main, model_cmd


class _FullDisk(io.StringIO):
    """A stdout on a full disk: writes are buffered, the flush fails (as `> /dev/full` does); with
    `at_write`, the write itself fails (an output larger than the buffer)."""

    def __init__(self, at_write: bool = False) -> None:
        super().__init__()
        self.at_write = at_write

    def write(self, text: str) -> int:
        if self.at_write:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(text)

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("at_write", [False, True])
def test_a_full_stdout_is_exit_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], at_write: bool
) -> None:
    full = _FullDisk(at_write)
    monkeypatch.setattr(sys, "stdout", full)
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: cannot write the output to stdout: No space left on device"
    assert sys.stdout is full  # the guard is gone once the command ends


def test_a_closed_stdout_is_exit_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["models"]) == 2
    assert capsys.readouterr().err.strip() == "error: cannot write the output to stdout: it is closed"


def test_a_closed_pipe_still_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class _Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", _Closed())
    assert main(["models"]) == 0
    assert capsys.readouterr().err == ""


def test_an_oserror_of_the_command_itself_is_still_internal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model_cmd, "cmd_models", broken)
    monkeypatch.setattr(cli, "_grammar", cli.build_parser)  # a grammar that holds the patched handler
    assert main(["models"]) == 3
    err = capsys.readouterr().err
    assert "internal error: OSError" in err and cli.REPORT in err


def test_output_still_reaches_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    assert "Qwen/Qwen3-8B" in capsys.readouterr().out


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_the_script_on_dev_full_exits_2_without_a_second_error() -> None:
    """The real stream: what stays buffered after the failed flush is not retried at the interpreter's
    exit (which would add "Exception ignored" and exit 120)."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "autoparallel", "models"], stdout=full, stderr=subprocess.PIPE, text=True
        )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: cannot write the output to stdout: No space left on device"
