"""What every command shares on its way in and out: numeric flags checked against their bounds, the
progress-bar flags, output files that would overwrite an input refused, and strict JSON (no NaN /
Infinity) on the way out."""

from __future__ import annotations

import argparse
import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from autoparallel.bounds import check_number, clean_text, json_safe
from autoparallel.configs import given_quantization
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
    """A `--quantization` value as configurations read it (`configs.given_quantization`): `none` is no
    weight quantization (None)."""
    value: str | None = given_quantization(text)
    return value


Input = tuple[str, str | Path | None]
"""A file a command reads, as (what it is, for the message: `the --fleet file`; its path or None)."""


def _same_file(output: str, source: str | Path) -> bool:
    """`output` names the regular file `source` (a link, `./`, `..` or a hard link to it included;
    `os.path.samefile`): writing it would replace what the command reads. A pipe or a device read
    and written at once (`/dev/stdin` and `/dev/stdout` on one terminal) is not a file to destroy."""
    try:
        if not stat.S_ISREG(os.stat(source).st_mode):
            return False
        return os.path.samefile(output, source)
    except (OSError, ValueError):  # either one missing (nothing to overwrite), an unusable name
        return False


def refuse_overwrite(flag: str, output: str | None, inputs: Iterable[Input]) -> None:
    """Refuse an output path that resolves to a file the command reads, before the command reads or
    plans anything: `profile LOG -o LOG` wrote the workload over the request log, `plan --fleet F
    --plan-file F` the plan over the fleet file, exit 0 (the write itself is `write_plan_file`'s and
    `workload_profile.write_workload_file`'s, whose failures are `InputError.cannot_write`'s; this is
    the check beside them, for every writer of the CLI).

    Raises:
        InputError: `output` is one of `inputs` (exit 2, one line naming both), or an empty path (it
            was taken as no output: `--out ""` exited 0 having written nothing).
    """
    if output is not None and not output.strip():
        raise InputError(f"{flag}: an empty path; name the file to write")
    if not output:
        return
    for what, source in inputs:
        if source is not None and _same_file(output, source):
            shown = clean_text(repr(str(output)), 200)
            named = "" if str(source) == str(output) else f" ({clean_text(repr(str(source)), 200)})"
            raise InputError(
                f"{flag} {shown} is {what}{named} that the command reads: writing it would destroy that "
                "input (name another output file)"
            )


def model_inputs(model: str | None, what: str = "the model's") -> list[Input]:
    """The local files a MODEL argument reads (`models.loader.load_model`): a folder's config.json and
    the ModelOpt hf_quant_config.json beside it, or a named config file and the one beside it; none
    for a zoo or hub id."""
    if not model or not isinstance(model, str) or "\0" in model or len(model) > 4096:
        return []
    from autoparallel.models.hub import QUANT_CONFIG_FILE

    path = Path(model.strip()).expanduser()
    try:
        if path.is_dir():
            return [
                (f"{what} config.json", path / "config.json"),
                (f"{what} {QUANT_CONFIG_FILE}", path / QUANT_CONFIG_FILE),
            ]
        if path.exists():
            return [
                (f"{what} config file", path),
                (f"{what} {QUANT_CONFIG_FILE}", path.parent / QUANT_CONFIG_FILE),
            ]
    except (OSError, ValueError):
        return []
    return []
