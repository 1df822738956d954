"""Identity memoization for the float cost model's per-model sums.

The sums over a model's layers (parameters per rank, KV bytes per token, FLOPs) depend only on the
model object and a few plain values (degrees, dtypes), while the planners and their oracles ask for
them at thousands of points. `memoized` caches them per model object.
"""

from __future__ import annotations

import functools
import operator
import sys
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")

Memo = dict[tuple[object, ...], tuple[tuple[object, ...], _T]]
"""A cache keyed by the ids of its owner objects and plain values; each entry holds its owners."""

MAX_ENTRIES = 65_536
"""A cache at this size drops its oldest entry for each new one (long sweeps over many models stay
bounded)."""


def memoized(
    cache: Memo[_T],
    owners: tuple[object, ...],
    key: tuple[object, ...],
    compute: Callable[[], _T],
    *,
    max_entries: int = MAX_ENTRIES,
) -> _T:
    """`compute()`, cached in `cache` under the ids of `owners` followed by `key`.

    An entry keeps its owners and is used only while they are the very same objects, which rules out
    a reused id returning another object's value. A full cache (`max_entries`; a cache of large values
    passes a smaller one) drops its oldest entry: emptied whole, a sweep over 17 requests lost every
    reused serving space at the 17th.
    """
    if len(owners) == 1:  # the common case, without the general one's iterators
        (owner,) = owners
        full_key: tuple[object, ...] = (id(owner), *key)
        hit = cache.get(full_key)
        if hit is not None and hit[0][0] is owner:
            return hit[1]
    else:
        full_key = (*map(id, owners), *key)
        hit = cache.get(full_key)
        if hit is not None and all(map(operator.is_, hit[0], owners)):
            return hit[1]
    value = compute()
    while len(cache) >= max_entries:
        del cache[next(iter(cache))]
    cache[full_key] = (owners, value)
    return value


def clear_memos() -> None:
    """Empty every `Memo` cache of the loaded autoparallel modules (their annotations name them): after
    a change the memoized values do not see, such as a refit of the engines' factors
    (`benchmarks/serving_fit.py`), or to time the float model afresh."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("autoparallel"):
            continue
        for attr, annotation in getattr(module, "__annotations__", {}).items():
            cache = getattr(module, attr, None)
            if str(annotation).startswith("Memo[") and isinstance(cache, dict):
                cache.clear()


_CACHED_NAMES: dict[type, tuple[str, ...]] = {}


def drop_cached_properties(obj: object) -> None:
    """Remove the `functools.cached_property` values a copy carried over in its `__dict__`: pydantic's
    `model_copy` copies the instance dict, so a model cut to 16 layers by `model_copy(update=...)`
    kept the 32-layer original's parameter count once it had been read."""
    kind = type(obj)
    names = _CACHED_NAMES.get(kind)
    if names is None:
        names = _CACHED_NAMES[kind] = tuple(
            name
            for klass in kind.__mro__
            for name, attr in vars(klass).items()
            if isinstance(attr, functools.cached_property)
        )
    for name in names:
        obj.__dict__.pop(name, None)
