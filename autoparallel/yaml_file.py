"""Reading a user's YAML (or JSON) file: fleet, GPU and sweep files alike.

One reader, so every such file is bounded in size and fails as one line: unreadable, not YAML,
or nested too deeply (libyaml stops at its nesting limit; PyYAML's pure-Python composer recurses per
level, so a few thousand nested brackets end in RecursionError, which was exit 3, as was a
5,000-digit integer's ValueError). A key repeated in one mapping is refused too: PyYAML keeps the last
value silently, so a fleet file with two `models:` lists planned only the second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode

from autoparallel.errors import InputError
from autoparallel.user_file import read_capped

MAX_EXPANDED_VALUES = 1_000_000
"""Values a document may hold once its aliases are expanded: YAML's `&a` / `*a` share one node, so a
1 KB file of nested aliases stands for 2^30 values, which every reader that walks the document (type
checks, sweep grids) expands; a fleet file of them hung `plan --fleet`."""

SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""`yaml.safe_load`'s loader, in libyaml's C where PyYAML was built with it: the same documents, the
same errors, and a nesting limit of its own, 8x faster (a 600 KB JSON list took 7 s in pure Python)."""


MERGE_TAGS = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")
"""Keys that are not keys of the mapping they sit in: YAML's `<<` merge (whose merged keys an explicit key
may override, as the merge key type says) and the `=` default-value key."""


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key repeated in one mapping (`key`, at 1-based `line`, first written at `first`)."""

    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(problem=f"repeated key {key!r}")
        self.key, self.line, self.first = key, line, first


class _UniqueKeys:
    """Mixin for a PyYAML SafeLoader (pure Python or libyaml's): refuse a mapping that repeats a key.

    `SafeConstructor.flatten_mapping` (PyYAML's constructor.py) runs first on every mapping node, before
    any key is stored, and is the only step that rewrites a node's pairs (merge keys expand into it), so
    each node's own pairs are checked the first time it is flattened."""

    _unique_checked: set[int]

    def flatten_mapping(self, node: MappingNode) -> None:
        checked = self.__dict__.setdefault("_unique_checked", set())
        if id(node) not in checked:
            checked.add(id(node))
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag in MERGE_TAGS:
                    continue  # a complex key (`? [a, b]`) is compared by PyYAML's own rules, if at all
                key = self.construct_object(key_node)  # type: ignore[attr-defined]
                line = key_node.start_mark.line + 1
                try:
                    if key in first:
                        raise DuplicateKeyError(key, line, first[key])
                    first[key] = line
                except TypeError:  # unhashable: PyYAML refuses it itself
                    continue
        super().flatten_mapping(node)  # type: ignore[misc]


_LOADERS: dict[type[yaml.SafeLoader], type[yaml.SafeLoader]] = {}


def unique_key_loader(base: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    """`base` (a SafeLoader class: libyaml's or the pure-Python one) refusing repeated mapping keys."""
    if base not in _LOADERS:
        _LOADERS[base] = type(f"UniqueKey{base.__name__}", (_UniqueKeys, base), {})
    return _LOADERS[base]


def read_yaml(path: Path, what: str, max_bytes: int) -> Any:
    """The document in `path` (`what`: how messages name the file, e.g. "fleet file").

    Raises:
        InputError: larger than `max_bytes`, unreadable, not UTF-8, not YAML, nested too deeply, a
            scalar its constructor refuses, or a mapping that repeats a key.
    """
    name = f"{what} {str(path)!r}"
    data = read_capped(path, what, max_bytes)
    try:
        doc = yaml.load(data.decode("utf-8"), Loader=unique_key_loader(SAFE_LOADER))
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {name}: {exc.__class__.__name__}") from None
    except DuplicateKeyError as exc:
        key = repr(exc.key)
        key = key if len(key) <= 60 else key[:57] + "..."
        raise InputError(
            f"{name} repeats key {key} at line {exc.line} (first at line {exc.first}): YAML keeps only "
            "the last value, so remove or rename one"
        ) from None
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
