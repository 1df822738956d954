"""What every command shares on its way in and out: numeric flags checked against their bounds, the
progress-bar flags, and strict JSON (no NaN / Infinity) on the way out."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import Any

from autoparallel.bounds import check_number, clean_text, json_safe
from autoparallel.errors import InputError


def bounded(field: str, *, integer: bool = True) -> Callable[[str], Any]:
    """An argparse type: a number in `BOUNDS[field]` (the message says the range and why)."""

    def parse(text: str) -> int | float:
        value: int | float
        try:
            if integer:
                if len(text.strip()) > 30:
                    raise ValueError
                value = int(text)
            else:
                value = float(text)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {clean_text(repr(text), 40)}") from None
        try:
            check_number(field, value, integer=integer)
        except InputError as exc:
            raise argparse.ArgumentTypeError(f"got {str(exc).split('=', 1)[1]}") from None
        return value

    parse.__name__ = field  # argparse names the type in its messages
    return parse


def add_progress_flags(parser: argparse.ArgumentParser | Any) -> None:
    """`--progress` / `--no-progress`: a progress bar on stderr (default: when stderr is a terminal)."""
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false")


def strict_object(item: Any, why: Mapping[str, str] | None = None) -> Any:
    """`item` as strict JSON data: a non-finite number becomes null and, when `item` is an object, it
    gets `null_reasons` {dotted path: why}; `why` {key: reason} says why for a null under that key (the
    path's last key) where the generic reason would not (an unbounded TTFT)."""
    safe, reasons = json_safe(item)
    if why:
        reasons = {path: why.get(_last_key(path), text) for path, text in reasons.items()}
    if reasons and isinstance(safe, dict):
        safe["null_reasons"] = reasons
    return safe


def _last_key(path: str) -> str:
    """`ttft_ms` of `points[7].ttft_parts_ms.ttft_ms` (a list index dropped)."""
    return path.rsplit(".", 1)[-1].split("[", 1)[0]


def strict_json(payload: Any, why: Mapping[str, str] | None = None) -> str:
    """Strict JSON text (no NaN / Infinity): a non-finite number becomes null, and the object that held it
    gets `null_reasons` {dotted path: why}; in a list, each object carries its own (`strict_object`)."""
    data = (
        [strict_object(x, why) for x in payload] if isinstance(payload, list) else strict_object(payload, why)
    )
    return json.dumps(data, indent=2, default=str, allow_nan=False)


def quantization_value(text: str) -> str | None:
    """A `--quantization` value: `none` is no weight quantization (None), as every command reads it."""
    return None if text.strip().lower() == "none" else text
