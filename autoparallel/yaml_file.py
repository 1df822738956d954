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

MAX_EXPANDED_VALUES = 1_000_000
"""Values a document may hold once its aliases are expanded: YAML's `&a` / `*a` share one node, so a
1 KB file of nested aliases stands for 2^30 values, which every reader that walks the document (type
checks, sweep grids) expands; a fleet file of them hung `plan --fleet`."""

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
        doc = yaml.load(data.decode("utf-8"), Loader=SAFE_LOADER)
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
    _check_expansion(doc, name)
    return doc


def _check_expansion(doc: Any, name: str) -> None:
    """Refuse a document whose aliases expand past MAX_EXPANDED_VALUES values, or refer to
    themselves (`&a [*a]` builds a list that contains itself). Each shared node is sized once."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(doc, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        key = id(node)
        children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(c), 1) for c in children)
            if sizes[key] > MAX_EXPANDED_VALUES:
                raise InputError(
                    f"{name} expands (through YAML aliases) to more than {MAX_EXPANDED_VALUES:,} values"
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise InputError(f"{name} refers to itself through a YAML alias")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)) and id(c) not in sizes)
