"""Strict reading of a `config.json` (and of the other JSON files autoparallel reads: workload files):
bounded size and nesting, a known encoding, no NaN / Infinity, no integers too long to be a size, and
(`unique_keys`, for the files a user writes) no key repeated in one object, which `json.loads` would
settle silently for the last value, as `yaml_file.read_yaml` refuses it in YAML and JSON fleet files.
Whatever the bytes, the answer is a dict or one InputError line."""

from __future__ import annotations

import codecs
import json
import math
import re
from pathlib import Path
from typing import Any

from autoparallel.bounds import clean_text
from autoparallel.errors import InputError
from autoparallel.user_file import read_capped

MAX_CONFIG_BYTES = 8 << 20
"""8 MiB: published config.json files are a few KiB (the largest, with label maps, well under 1 MiB);
a workload file with its 101-point length percentiles is a few KiB."""
MAX_DEPTH = 64
"""Deepest nesting of objects and arrays (published configs nest 3 or 4 levels)."""
MAX_INT_DIGITS = 20
"""Longest integer literal: 20 digits hold every 64-bit integer."""

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)
"""A JSON text's strings, brackets and commas (`_locate_repeat`)."""


def _encoding(data: bytes) -> tuple[str, int]:
    """(codec, bytes to skip): from a byte-order mark, else from where the NULs of UTF-16/32 sit
    (RFC 4627 §3: the first two characters of JSON text are ASCII), else UTF-8."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    head = data[:4]
    if len(head) == 4:
        if head[:3] == b"\0\0\0":
            return "utf-32-be", 0
        if head[1:] == b"\0\0\0":
            return "utf-32-le", 0
        if head[0] == 0 and head[2] == 0:
            return "utf-16-be", 0
        if head[1] == 0 and head[3] == 0:
            return "utf-16-le", 0
    return "utf-8", 0


def decode_lenient(data: bytes) -> str:
    """The text of a JSON Lines file in UTF-8, UTF-16 or UTF-32, bytes that do not decode replaced by
    U+FFFD: a log line holding one no longer parses and is counted malformed; the others are read."""
    codec, skip = _encoding(data)
    return data[skip:].decode(codec, errors="replace")


def decode_config(data: bytes, shown: str) -> str:
    """The text of a JSON file in UTF-8, UTF-16 or UTF-32 (with or without a byte-order mark)."""
    codec, skip = _encoding(data)
    try:
        return data[skip:].decode(codec)
    except UnicodeDecodeError as exc:
        bad = data[skip + exc.start : skip + exc.start + 1].hex()
        raise InputError(
            f"{shown}: not valid {codec.upper()} (byte 0x{bad} at offset {skip + exc.start}); JSON files "
            "must be UTF-8 (or UTF-16/32): re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def _depth(text: str) -> int:
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    depth = deepest = 0
    for ch in brackets:
        depth += 1 if ch in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _refuse_constant(name: str) -> Any:
    raise InputError(f"{name} is not a JSON number (configs must hold finite numbers)")


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise InputError(f"an integer with {digits} digits (at most {MAX_INT_DIGITS} are read)")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InputError(f"the number {clean_text(text, 40)} is not finite as a float")
    return value


class _RepeatedKey(Exception):
    """A key repeated in one JSON object (`at`, `first`: offsets of its two spellings, where known)."""

    def __init__(self, key: str, at: int = -1, first: int = -1) -> None:
        super().__init__(key)
        self.key, self.at, self.first = key, at, first


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`'s object_pairs_hook: the object, or _RepeatedKey for its first repeated key."""
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return out


def _locate_repeat(text: str) -> _RepeatedKey | None:
    """The first key repeated in one object of `text`, in document order, with the offsets of both of
    its spellings (`json.loads`'s hook sees no offsets): a walk over the text's strings and brackets
    that tells keys from values by where they sit. Run only once a repeat is known (the text parsed
    up to it), so its speed is moot; None where no repeat is found (it cannot be)."""
    frames: list[dict[str, int] | None] = []  # an open object's keys and their offsets; None: an array
    expect_key = False
    for m in _TOKENS.finditer(text):
        token = m.group()
        if token[0] == '"':
            keys = frames[-1] if frames else None
            if expect_key and keys is not None:
                try:
                    key = json.loads(token)
                except ValueError:
                    return None
                if key in keys:
                    return _RepeatedKey(key, m.start(), keys[key])
                keys[key] = m.start()
            expect_key = False
        elif token in "{[":
            frames.append({} if token == "{" else None)
            expect_key = token == "{"
        elif token == ",":
            expect_key = bool(frames) and frames[-1] is not None
        else:
            if frames:
                frames.pop()
            expect_key = False
    return None


def _repeat_error(text: str, shown: str, exc: _RepeatedKey) -> InputError:
    found = _locate_repeat(text) or exc
    key = repr(found.key)
    key = key if len(key) <= 60 else key[:57] + "..."
    if found.at < 0:
        where = "in one object"
    else:
        line, first = (text.count("\n", 0, at) + 1 for at in (found.at, found.first))
        where = f"at line {line} (first at line {first})"
    return InputError(
        f"{shown} repeats key {key} {where}: JSON keeps only the last value, so remove or rename one"
    )


def parse_config_text(text: str, shown: str, *, unique_keys: bool = False) -> dict[str, Any]:
    """A JSON object from `text`, strictly (see the module doc). With `unique_keys`, an object that
    repeats a key is refused (a file the user wrote: which value was meant is unknown); without, the
    last value stands, as the engines read a model's `config.json` (transformers
    `PretrainedConfig._dict_from_json_file`: `json.loads`), so the planner sees the model they load."""
    if len(text) > MAX_CONFIG_BYTES:
        raise InputError(f"{shown}: {len(text):,} characters; JSON files are read up to {MAX_CONFIG_BYTES:,}")
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise InputError(f"{shown}: JSON nested {depth} levels deep; at most {MAX_DEPTH} are read")
    try:
        data = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
            object_pairs_hook=_unique_object if unique_keys else None,
        )
    except _RepeatedKey as exc:
        raise _repeat_error(text, shown, exc) from None
    except InputError as exc:
        raise InputError(f"{shown}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{shown}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:  # float overflow etc.
        raise InputError(f"{shown}: unreadable JSON: {clean_text(str(exc), 120)}") from None
    if not isinstance(data, dict):
        raise InputError(f"{shown}: expected a JSON object, got {type(data).__name__}")
    return data


def read_config(path: Path, *, unique_keys: bool = False) -> dict[str, Any]:
    """The JSON object in the file at `path`, strictly (`unique_keys`: see `parse_config_text`)."""
    shown = clean_text(str(path), 200)
    data = read_capped(path, "JSON file", MAX_CONFIG_BYTES)
    return parse_config_text(decode_config(data, shown), shown, unique_keys=unique_keys)
