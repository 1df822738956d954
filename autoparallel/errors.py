"""The exceptions autoparallel raises.

AutoParallelError            base; the CLI prints it as one line, never a traceback
├── InputError               bad user input: unknown id, malformed config or option (exit 2)
├── InfeasibleError          the request cannot be met; says which constraint and by how much (exit 1)
├── SolverTimeoutError       no solution within the time limit (exit 1)
└── InternalError            our own bug: solver and float model disagree, invalid CP-SAT model
"""

from __future__ import annotations


class AutoParallelError(Exception):
    """Base class of every error autoparallel raises on purpose."""

    exit_code: int = 1


class InputError(AutoParallelError, ValueError):
    """The input is wrong: an unknown model or GPU, a malformed config, an invalid option."""

    exit_code = 2

    @classmethod
    def cannot_write(cls, what: str, path: object, exc: OSError) -> InputError:
        """A file the user named could not be written: a directory of that name, a missing folder,
        no permission, a full disk."""
        return cls(f"cannot write {what} {str(path)!r}: {exc.strerror or exc.__class__.__name__}")


class InfeasibleError(AutoParallelError):
    """No configuration satisfies the request.

    `reasons` lists one human sentence per conflicting constraint family, with the numbers.
    """

    exit_code = 1

    def __init__(self, message: str, reasons: tuple[str, ...] = (), fixes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.fixes = fixes
        """The nearest changes that make the request feasible, each with the plan it gives."""

    def __str__(self) -> str:
        lines = [super().__str__(), *(f"  - {r}" for r in self.reasons)]
        if self.fixes:
            lines += ["  nearest feasible changes:", *(f"  + {f}" for f in self.fixes)]
        return "\n".join(lines)


class SolverTimeoutError(AutoParallelError):
    """The solver hit its time limit before finding any feasible configuration."""

    exit_code = 1


class InternalError(AutoParallelError):
    """An inconsistency inside autoparallel (a bug): please report it."""

    exit_code = 3
