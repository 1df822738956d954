"""The `autoparallel` command: a thin dispatcher over the subcommand modules.

Exit codes: 0 ok, 1 infeasible / cannot start, 2 usage or input error. Every error autoparallel
raises on purpose is printed as one line (`error: ...`), never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from autoparallel.errors import AutoParallelError

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line on a usage error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


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

    parser = _Parser(prog="autoparallel", description=__doc__.splitlines()[0])
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `autoparallel` script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except AutoParallelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
