"""The range of every number a user can give, and terminal-safe text: the bottom of the validation layer.

`BOUNDS` maps a field name (the CLI flag's name with `_` for `-`) to its closed range; the workload and
configuration models, the CLI's argument types and the API check numbers against it, so one place holds
each limit. `UserInput` is the base of every model a user fills in: no boolean is read as a number.
`first_error` / `input_error` put a pydantic error on one line. `clean_text` makes strings from configs
and error messages safe to print.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError, model_validator

from autoparallel.errors import InputError

__all__ = [
    "BOUNDS",
    "MAX_MESSAGE_CHARS",
    "Bound",
    "UserInput",
    "check_choices",
    "check_number",
    "clean_text",
    "cpu_cores",
    "first_error",
    "input_error",
    "json_safe",
    "revalidated",
]


@dataclass(frozen=True)
class Bound:
    """The closed range [lo, hi] a number must lie in, and why hi is where it is."""

    lo: float
    hi: float
    why: str


_TOKENS = 1 << 24
"""16,777,216 tokens: above every published context window (Llama 4 Scout: 10M) and any request."""

BOUNDS: dict[str, Bound] = {
    "isl": Bound(1, _TOKENS, "at most 2^24 tokens per request"),
    "osl": Bound(1, _TOKENS, "at most 2^24 tokens per request"),
    "max_model_len": Bound(1, _TOKENS, "at most 2^24 tokens of context"),
    "concurrency": Bound(1, 1 << 24, "at most 2^24 requests in flight"),
    "num_prompts": Bound(1, 1_000_000, "at most 10^6 prompts (the replay steps through each)"),
    "request_rate": Bound(1e-9, 1e7, "at most 10^7 requests per second"),
    "burstiness": Bound(0.01, 1000, "a gamma shape from 0.01 (bursty) to 1000 (near-even gaps)"),
    "length_cv": Bound(0, 100, "a spread (std / mean) of lengths up to 100"),
    "ttft_ms": Bound(1e-6, 8.64e7, "at most one day, in ms"),
    "tpot_ms": Bound(1e-6, 8.64e7, "at most one day, in ms"),
    "seq_len": Bound(1, _TOKENS, "at most 2^24 tokens per training sequence"),
    "global_batch": Bound(1, 1 << 24, "at most 2^24 sequences per optimizer step"),
    "tokens": Bound(1, 1e16, "at most 10^16 training tokens"),
    "seed": Bound(0, 2**31 - 1, "CP-SAT's random_seed is a 32-bit signed integer"),
    "time_limit_s": Bound(1e-3, 86400, "at most one day, in s"),
    "workers": Bound(1, 4096, "at most the machine's cores"),
    "top": Bound(1, 64, "at most 64 plans"),
    "points": Bound(1, 1_000_000, "at most 10^6 points on a front"),
    "tp": Bound(1, 4096, "at most 4096 GPUs"),
    "pp": Bound(1, 4096, "at most 4096 stages"),
    "dp": Bound(1, 1 << 20, "at most 2^20 replicas"),
    "cp": Bound(1, 4096, "at most 4096 GPUs"),
    "ep": Bound(1, 1 << 16, "at most 2^16 GPUs"),
    "vp": Bound(1, 1024, "at most 1024 virtual stages"),
    "micro_batch": Bound(1, 1 << 20, "at most 2^20 sequences"),
    "max_num_seqs": Bound(1, 1 << 20, "at most 2^20 sequences"),
    "max_num_batched_tokens": Bound(1, 1 << 26, "at most 2^26 tokens per step"),
    "gpu_memory_utilization": Bound(1e-6, 1.0, "a fraction of GPU memory in (0, 1]"),
}
"""The range of every number a user can give, by field name (CLI flags use the same names)."""


def check_number(field: str, value: Any, *, integer: bool = True) -> Any:
    """`value` as a Python int (when `integer`) or float, once it is a finite number in BOUNDS[field]; any
    integral or real type passes (numpy's included, as from a pandas sweep), a bool does not.

    Raises:
        InputError: not such a number, or out of the bound.
    """
    bound = BOUNDS[field]
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and not isinstance(value, numbers.Integral):
        value = float(value)
        ok = math.isfinite(value) and (not integer or value.is_integer())
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise InputError(f"{field}={clean_text(repr(value), 40)}: must be {kind} ({bound.why})")
    if isinstance(value, numbers.Integral):
        value = int(value)  # compared as an int: 10**400 is out of bounds, not a float overflow
    if not bound.lo <= value <= bound.hi:
        lo = f"{bound.lo:g}" if not integer else str(int(bound.lo))
        hi = f"{bound.hi:g}" if not integer or bound.hi >= 1e15 else f"{int(bound.hi):,}"
        shown = f"{value:g}" if isinstance(value, float) else clean_text(str(value), 40)
        raise InputError(f"{field}={shown}: must be in [{lo}, {hi}] ({bound.why})")
    return int(value) if integer else float(value)


def check_choices(
    name: str, values: tuple[Any, ...] | None, field: str | None, noun: str = "value"
) -> tuple[Any, ...] | None:
    """A planner knob's allowed values (`ServingOptions`, `TrainingOptions`): None (the default
    domain), or at least one `noun`, each a number in BOUNDS[field] when `field` is given.

    Raises:
        InputError: no value, or one out of range.
    """
    if values is None:
        return None
    if not values:
        raise InputError(f"{name} allows no {noun}; give at least one (or leave the default)")
    if field is not None:
        bound = BOUNDS[field]
        bad = [
            v
            for v in values
            if isinstance(v, bool) or not (isinstance(v, int | float) and bound.lo <= v <= bound.hi)
        ]
        if bad:
            raise InputError(f"{name}: {bad[0]!r} is out of range (at least {bound.lo:g}; {bound.why})")
    return values


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


# ----- text -----------------------------------------------------------------------------------------
MAX_MESSAGE_CHARS = 600
"""Longest one-line error message the CLI prints (longer ones are cut with an ellipsis)."""


def clean_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` safe for a terminal: control characters (escape sequences, carriage returns, NUL) become
    `?` (newlines too, except in multi-line text where they are kept), and at most `limit` characters."""
    out = "".join(
        ch if ch == "\n" or (ch.isprintable() and ch not in "\x1b\x9b") else "?" for ch in str(text)
    )
    if len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


def _mentions(annotation: Any, kinds: tuple[type, ...]) -> bool:
    """Whether a field's type annotation admits one of `kinds` (through unions, optionals, tuples)."""
    if annotation in kinds:
        return True
    if typing.get_origin(annotation) is typing.Literal:
        return any(isinstance(arg, kinds) for arg in typing.get_args(annotation))
    return any(_mentions(arg, kinds) for arg in typing.get_args(annotation))


@functools.cache
def _numeric_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of `model` that hold numbers and never a boolean."""
    return frozenset(
        name
        for name, field in model.model_fields.items()
        if _mentions(field.annotation, (int, float)) and not _mentions(field.annotation, (bool,))
    )


class UserInput(BaseModel):
    """Base of the models a user fills in (workloads, configurations, options, scenarios, GPUs):
    a boolean given for a number is refused. Pydantic reads True as 1, and YAML reads yes, no, on,
    off, true and false as booleans, so `isl: yes` in a scenario file was a 1-token prompt."""

    @model_validator(mode="before")
    @classmethod
    def _no_boolean_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key, value in data.items():
            if type(value) not in _PLAIN and _boolean(value) and key in _numeric_fields(cls):
                raise ValueError(
                    f"{key}={clean_text(repr(value), 40)}: a boolean is not a number here "
                    "(YAML reads yes, no, on, off, true and false as booleans)"
                )
        return data


_PLAIN = frozenset({int, float, str, type(None)})
"""Value types that are never a boolean (the common case, checked first)."""


def _boolean(value: Any) -> bool:
    """A boolean, Python's or numpy's (a pandas column of flags), or a sequence or mapping holding one."""
    if isinstance(value, (list, tuple)):
        return any(_boolean(v) for v in value)
    if isinstance(value, dict):
        return any(_boolean(v) for v in value.values())
    return isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b"


def _where(loc: tuple[Any, ...], at: str = "") -> str:
    """A pydantic error location as a field path: `models[0].request_rate`, under `at` when given."""
    path = at
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _rule(err: Any) -> str:
    """A pydantic error's message without pydantic's "Value error, " prefix."""
    return str(err.get("msg", "")).removeprefix("Value error, ")


def first_error(exc: ValidationError, at: str = "") -> str:
    """The first error of a pydantic ValidationError on one line, `where: rule` (only the rule where it
    spans several fields and names them), then how many more there are."""
    err = exc.errors()[0]
    where = _where(tuple(err.get("loc", ())), at)
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return (f"{where}: " if where else "") + _rule(err) + more


def input_error(exc: ValidationError, subject: str = "") -> InputError:
    """A pydantic ValidationError as one InputError naming each field, its value and the rule (a rule
    over a nested object's fields, the pool of a cluster, names its place alone: its message names the
    fields). A collection found too short only because an item of it failed is not counted twice."""
    errors = exc.errors()
    failed = [tuple(e.get("loc", ())) for e in errors]
    parts = []
    for err in [e for e in errors if not _consequential(e, failed)][:3]:
        field = _where(tuple(err.get("loc", ())))
        if not field:  # a rule over several fields: its message names them
            parts.append(_rule(err))
            continue
        given = err.get("input")
        if isinstance(given, dict | BaseModel):
            parts.append(f"{field}: {_rule(err)}")
            continue
        value = clean_text(repr(given), 60)
        parts.append(f"{field}={value}: {_rule(err)}")
    prefix = f"{subject}: " if subject else ""
    return InputError(prefix + "; ".join(parts))


def _consequential(err: Any, failed: list[tuple[Any, ...]]) -> bool:
    """`err` is a length error of a collection one of whose items failed (pydantic counts the items
    left after validation: a cluster whose only pool is wrong was also "at least 1 item, not 0")."""
    loc = tuple(err.get("loc", ()))
    return err.get("type") == "too_short" and any(
        len(other) > len(loc) and other[: len(loc)] == loc for other in failed
    )


_Model = TypeVar("_Model", bound=BaseModel)


def revalidated(value: _Model, subject: str) -> _Model:
    """`value` validated again, as the API takes every model a user passes it (workloads,
    configurations, options, settings, clusters with their pools and GPUs, fleet entries):
    `model_copy(update=...)`, the documented way to override a preset's or a configuration's field,
    skips pydantic's validators, so a max_model_len below isl + osl, a micro_batch of 0, a pool of 9
    H100s per node, a GPU of 0 TFLOP/s or NaN GiB, a numpy integer where an int belongs reached the
    planners. The fields the caller set stay the ones marked set (`evaluate` and `ServingOptions` read
    `model_fields_set`); `value` itself comes back where validation changes nothing, so that the float
    model's memos, keyed by the objects (`memo.py`), keep serving a cluster passed again.

    Raises:
        InputError: the first broken rule, naming `subject` and the field.
    """
    cls = type(value)
    try:
        checked = cls.model_validate(value.model_dump(warnings=False))
    except ValidationError as exc:
        raise input_error(exc, subject) from None
    fields = {name: getattr(checked, name) for name in cls.model_fields}
    if all(_identical(getattr(value, name), field) for name, field in fields.items()):
        return value
    return cls.model_construct(_fields_set=set(value.model_fields_set), **fields)


def _identical(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (np.int64(4) == 4, but only the int is planned)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, BaseModel):
        return all(_identical(getattr(a, name), getattr(b, name)) for name in type(a).model_fields)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(map(_identical, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # an object whose == is not a truth value
        return False


def json_safe(value: Any, path: str = "") -> tuple[Any, dict[str, str]]:
    """`value` with every non-finite float replaced by None, and why each null is there (by dotted path),
    so that `json.dumps(..., allow_nan=False)` accepts it."""
    reasons: dict[str, str] = {}

    def walk(v: Any, at: str) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            reasons[at or "value"] = f"not a finite number ({v}): e.g. a rate of zero or an unbounded cost"
            return None
        if isinstance(v, dict):
            return {k: walk(x, f"{at}.{k}" if at else str(k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, f"{at}[{i}]") for i, x in enumerate(v)]
        return v

    return walk(value, path), reasons
