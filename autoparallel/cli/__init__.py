"""The `autoparallel` command: a thin dispatcher over the subcommand modules.

Exit codes: 0 ok, 1 infeasible / cannot start, 2 usage or input error (an output that cannot be
written, stdout included), 3 internal error (a bug in autoparallel: please report it with the command
line), 130 interrupted (Ctrl-C). Errors are printed as one `error: ...` line (an infeasible answer adds
one line per binding constraint), never as a traceback; a closed output pipe (`| head -1`) ends the
command quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from autoparallel.bounds import MAX_MESSAGE_CHARS, clean_text, input_error
from autoparallel.errors import AutoParallelError

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line on a usage error, and takes no abbreviated flags: argparse's
    prefix matching read `plan MODEL --tp 2` (a flag of `evaluate`, not `plan`) as `--tpot-ms 2` and
    planned for a 2 ms TPOT limit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {clean_text(message, MAX_MESSAGE_CHARS)}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full command-line grammar; each subcommand's parser carries its handler as `func`."""
    from autoparallel.cli import (
        hardware_cmd,
        memory_cmd,
        model_cmd,
        pareto_cmd,
        plan_cmd,
        profile_cmd,
        sweep_cmd,
    )

    parser = _Parser(
        prog="autoparallel",
        description="Plan how to serve or train an LLM on a GPU cluster: parallelism, engine settings, "
        "memory and the launch commands.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan_cmd.add_plan_parser(sub)
    plan_cmd.add_evaluate_parser(sub)
    pareto_cmd.add_pareto_parser(sub)
    sweep_cmd.add_sweep_parser(sub)
    memory_cmd.add_memory_parser(sub)
    model_cmd.add_model_parser(sub)
    model_cmd.add_models_parser(sub)
    hardware_cmd.add_gpus_parser(sub)
    hardware_cmd.add_detect_parser(sub)
    profile_cmd.add_profile_parser(sub)
    return parser


@functools.cache
def _grammar() -> argparse.ArgumentParser:
    """`build_parser`'s grammar, built once per process for `main`: it took 8-15 ms a call, which a
    notebook or a test run calling `main` hundreds of times paid each time (parsing leaves it as it
    was)."""
    return build_parser()


_EPILOG = """exit codes: 0 ok; 1 infeasible or cannot start (the binding constraints are named, with numbers);
2 usage or input error (one line); 3 internal error (a bug: please report it with the command line);
130 interrupted (Ctrl-C).

network: only a model id that is neither in the zoo nor a local path is fetched from the Hugging Face
hub (its config.json and a ModelOpt hf_quant_config.json, within AUTOPARALLEL_HUB_TIMEOUT s, default
20); HF_HUB_OFFLINE=1 turns
that off (a model in the Hugging Face cache is then read from it alone). Nothing else touches the
network."""

MAX_ERROR_LINES = 40
"""Most lines of one error report (an infeasible answer lists one per binding constraint)."""

REPORT = "please report it (command line and this message) to the autoparallel maintainers"


def _print_error(text: str) -> None:
    lines = [clean_text(line, MAX_MESSAGE_CHARS) for line in str(text).splitlines() or [""]]
    if len(lines) > MAX_ERROR_LINES:
        lines = [*lines[: MAX_ERROR_LINES - 1], f"  ... {len(lines) - MAX_ERROR_LINES + 1} more lines"]
    if sys.stderr is None:  # launched with stderr closed: nowhere to say it (print would use stdout)
        return
    with contextlib.suppress(OSError, ValueError):  # stderr unusable too: the exit code says it
        print("error: " + "\n".join(lines), file=sys.stderr)


class StdoutUnwritable(Exception):
    """The command's output could not be written to stdout (a full disk, an I/O error, a closed
    descriptor): the environment, not a bug in autoparallel (exit 2, as an unwritable --plan-file)."""

    def __init__(self, exc: OSError | None) -> None:
        why = "it is closed" if exc is None else (exc.strerror or type(exc).__name__)
        super().__init__(f"cannot write the output to stdout: {why}")


class _GuardedStdout:
    """sys.stdout while a command runs: what it writes goes to the real stream; an OSError writing or
    flushing it becomes `StdoutUnwritable`, so that `main` tells the environment's failure (`> /dev/full`)
    from an OSError of the command's own (a bug: exit 3). A closed pipe stays a BrokenPipeError (the
    quiet end of `| head -1`). Everything else is the real stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutUnwritable(exc) from exc

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutUnwritable(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout without a descriptor
        pass


def _run(handler: Handler, args: argparse.Namespace) -> int:
    """Run `handler` in a worker thread, so that Ctrl-C reaches the main thread at once even while
    CP-SAT (which runs with the GIL released) is searching."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["rc"] = handler(args)
        except BaseException as exc:  # handed to the main thread below
            outcome["exc"] = exc

    worker = threading.Thread(target=work, name="autoparallel-command", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "exc" in outcome:
        raise outcome["exc"]
    return int(outcome["rc"])


def _stop_sweep_pools() -> None:
    """After a Ctrl-C: end the process pools of a sweep (or a front) the command's thread is running.
    `entry` leaves with `os._exit`, which skips the pools' own shutdown: their workers (which ignore
    SIGINT) would be left behind, re-parented and waiting for ever on the pool's queue."""
    execute = sys.modules.get("autoparallel.sweeps.execute")  # loaded only if the command ran one
    if execute is not None:
        execute.stop_pools()


_EXITING = False
"""`entry` runs the command: after a Ctrl-C the process ends (`os._exit`), so SIGINT stays ignored."""
_INTERRUPT_SAID = False
"""`_interrupted` has printed its line (`entry`'s second chance does not print it again)."""


def _interrupted() -> int:
    """After a Ctrl-C: SIGINT ignored, the sweep pools stopped (`_stop_sweep_pools`), one line, 130. A
    second Ctrl-C (a held key, or two presses 1 ms apart) broke into the pool's joins and printed a
    KeyboardInterrupt traceback instead, exit 1 or killed by SIGINT (-2). One that comes before SIGINT is
    ignored (`signal.signal` itself raises a pending one) stops the pools again: `_SweepPool.stop` ends
    the workers its first call found. SIGINT is restored after, except under `entry`, which exits."""
    global _INTERRUPT_SAID
    import signal

    previous: Any = None
    ignoring = threading.current_thread() is not threading.main_thread()  # signals reach the main only
    while True:
        try:
            if not ignoring:
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
                ignoring = True
            _stop_sweep_pools()
            break
        except KeyboardInterrupt:
            continue
    try:
        if not _INTERRUPT_SAID:
            print("autoparallel: interrupted", file=sys.stderr)
            _INTERRUPT_SAID = _EXITING  # once under `entry`; `main` called again in one process says it again
    finally:
        if previous is not None and not _EXITING:
            signal.signal(signal.SIGINT, previous)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `autoparallel` script: the exit code (see the module doc)."""
    stdout = sys.stdout
    try:
        args = _grammar().parse_args(argv)
        handler: Handler = args.func
        if stdout is None:  # launched with stdout closed (`>&-`): the output has nowhere to go
            raise StdoutUnwritable(None)
        sys.stdout = _GuardedStdout(stdout)
        try:
            rc = _run(handler, args)
            sys.stdout.flush()
        finally:
            if isinstance(sys.stdout, _GuardedStdout):
                sys.stdout = stdout
        return rc
    except StdoutUnwritable as exc:  # the environment's, not a bug: one line, exit 2
        if stdout is not None and stdout is sys.__stdout__:
            _quiet_stdout()  # what is still buffered is dropped, not retried (and failed) at exit
        _print_error(str(exc))
        return 2
    except AutoParallelError as exc:
        _print_error(f"{exc}{f' ({REPORT})' if exc.exit_code == 3 else ''}")
        return exc.exit_code
    except ValidationError as exc:
        _print_error(str(input_error(exc)))
        return 2
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except SystemExit:  # argparse: --help, or a usage error already printed
        raise
    except BaseException as exc:  # a bug: one line and exit 3, never a traceback
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _print_error(f"internal error: {type(exc).__name__}: {message} ({REPORT})")
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def entry() -> None:
    """The `autoparallel` script and `python -m autoparallel`: `main`, then exit with its code. After a
    Ctrl-C the command's thread may still be inside CP-SAT's C++ search; the process ends at once
    (`os._exit`) instead of finalizing the interpreter around it."""
    import os

    # A terminal or pipe that cannot encode the output's few non-ASCII signs (≤, ×, …: an ASCII
    # PYTHONIOENCODING, a legacy Windows code page) shows "?" for them instead of failing the command.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    global _EXITING
    _EXITING = True
    try:
        code = main()
    except KeyboardInterrupt:  # a second Ctrl-C that came before `main`'s handling ignored SIGINT
        code = _interrupted()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)
