"""Reading a user's YAML (or JSON) file: fleet, GPU and sweep files alike.

One reader, so every such file is bounded in size and fails as one line: unreadable, not YAML,
or nested too deeply (libyaml stops at its nesting limit; PyYAML's pure-Python composer recurses per
level, so a few thousand nested brackets end in RecursionError, which was exit 3, as was a
5,000-digit integer's ValueError).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from autoparallel.errors import InputError
from autoparallel.user_file import read_capped

SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""`yaml.safe_load`'s loader, in libyaml's C where PyYAML was built with it: the same documents, the
same errors, and a nesting limit of its own, 8x faster (a 600 KB JSON list took 7 s in pure Python)."""


def read_yaml(path: Path, what: str, max_bytes: int) -> Any:
    """The document in `path` (`what`: how messages name the file, e.g. "fleet file").

    Raises:
        InputError: larger than `max_bytes`, unreadable, not UTF-8, not YAML, nested too deeply, or
            a scalar its constructor refuses.
    """
    name = f"{what} {str(path)!r}"
    data = read_capped(path, what, max_bytes)
    try:
        return yaml.load(data.decode("utf-8"), Loader=SAFE_LOADER)
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {name}: {exc.__class__.__name__}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        if problem and "nesting depth" in problem:  # libyaml's own limit
            raise InputError(f"{name} nests too deeply to read") from None
        raise InputError(
            f"{name} is not valid YAML or JSON{where}" + (f": {problem}" if problem else "")
        ) from None
    except RecursionError:
        raise InputError(f"{name} nests too deeply to read") from None
    except ValueError as exc:  # a constructor's: a 5,000-digit integer, the date 2026-13-45
        text = str(exc).splitlines()[0]
        if "integer string conversion" in text:
            text = "an integer of more than 4,300 digits"
        raise InputError(f"{name} holds a value that cannot be read: {text[:120]}") from None
