"""The shipped model zoo: one JSON card per model under `autoparallel/models/zoo/`.

Each card holds the architecture fields of the model's published `config.json`, its published
parameter counts with their source, and notes on how our exact counts relate to the published
ones. Cards are package data: loading a zoo model never touches the network, transformers or torch.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict

from autoparallel.errors import InternalError
from autoparallel.models.spec import ModelSpec, ParamGroups


class ZooEntry(BaseModel):
    """One model of the zoo."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """Canonical Hugging Face id, e.g. `meta-llama/Llama-3.1-70B`."""
    aliases: tuple[str, ...] = ()
    """Other ids with the same architecture (Instruct/chat/base variants, old names)."""
    family: str
    """Architecture family (the text model's `model_type`, e.g. `llama`, `deepseek_v3`)."""
    published_total_params: int | None = None
    """Total parameters as published (see `source`)."""
    published_active_params: int | None = None
    """Active parameters per token as published (MoE), see `source`."""
    total_excludes: tuple[str, ...] = ()
    """ParamGroups fields the published total leaves out (e.g. `mtp`, `vision`)."""
    active_excludes: tuple[str, ...] = ()
    """ParamGroups fields the published active count leaves out (e.g. `embedding`)."""
    source: str
    """Where the published counts (and the config) come from."""
    notes: str = ""
    """How our counts differ from the published ones, and why."""
    config: dict[str, Any]
    """Architecture fields of the published `config.json` (read-only: the parsed spec is cached; copy it
    before handing it to code that mutates, such as transformers' config classes)."""

    def spec(self) -> ModelSpec:
        """The parsed ModelSpec of this entry (cached per id)."""
        return _spec_for(self.id)

    def comparable_counts(self, spec: ModelSpec | None = None) -> tuple[int, int]:
        """Our (total, active) counts on the same basis as the published ones."""
        s = self.spec() if spec is None else spec
        total = s.total_params - _sum_groups(s.params, self.total_excludes)
        active_groups = ParamGroups(embedding=s.embedding_params, lm_head=s.lm_head_params)
        active = s.active_params - _sum_groups(active_groups, self.active_excludes)
        return total, active

    def deviations(self) -> tuple[float | None, float | None]:
        """Relative deviation of our (total, active) counts from the published ones (None: unpublished)."""
        total, active = self.comparable_counts()
        dt = None if not self.published_total_params else total / self.published_total_params - 1
        da = None if not self.published_active_params else active / self.published_active_params - 1
        return dt, da


def _sum_groups(groups: ParamGroups, names: tuple[str, ...]) -> int:
    return sum(getattr(groups, n) for n in names)


@cache
def list_models() -> tuple[ZooEntry, ...]:
    """Every zoo entry, sorted by id."""
    folder = resources.files("autoparallel.models").joinpath("zoo")
    entries = []
    for item in folder.iterdir():
        if not item.name.endswith(".json"):
            continue
        try:
            data = json.loads(item.read_text(encoding="utf-8"))
            entries.append(ZooEntry(**data))
        except (ValueError, TypeError) as exc:
            raise InternalError(f"zoo card {item.name} is invalid: {exc}") from exc
    return tuple(sorted(entries, key=lambda e: e.id.lower()))


@cache
def _index() -> dict[str, ZooEntry]:
    """Lower-cased id / alias / unambiguous short name -> entry."""
    index: dict[str, ZooEntry] = {}
    short: dict[str, list[ZooEntry]] = {}
    for entry in list_models():
        for key in (entry.id, *entry.aliases):
            index[key.lower()] = entry
            short.setdefault(key.split("/")[-1].lower(), []).append(entry)
    for key, found in short.items():
        if key not in index and len({e.id for e in found}) == 1:
            index[key] = found[0]
    return index


def find_entry(model_id: str) -> ZooEntry | None:
    """The entry for `model_id` (exact id or alias, case-insensitive; or its unique name after `/`)."""
    return _index().get(model_id.strip().lower())


def known_ids() -> tuple[str, ...]:
    """All ids and aliases, for suggestions."""
    return tuple(sorted({k for e in list_models() for k in (e.id, *e.aliases)}, key=str.lower))


@cache
def _spec_for(model_id: str) -> ModelSpec:
    from autoparallel.models.parse import spec_from_config

    entry = _index()[model_id.lower()]
    return spec_from_config(
        entry.config,
        name=entry.id,
        published_total=entry.published_total_params,
        published_active=entry.published_active_params,
        notes=entry.notes,
    )


def nearest_ids(model_id: str, n: int = 3) -> list[str]:
    """The known ids nearest to `model_id` (difflib on the full id, then on the name after `/`)."""
    import difflib

    lower = {i.lower(): i for i in known_ids()}
    key = model_id.strip().lower()
    close = difflib.get_close_matches(key, list(lower), n=n, cutoff=0.5)
    if not close:
        names: dict[str, list[str]] = {}
        for full in lower:
            names.setdefault(full.split("/")[-1], []).append(full)
        short = difflib.get_close_matches(key.split("/")[-1], list(names), n=n, cutoff=0.5)
        close = [full for s in short for full in names[s]][:n]
    return [lower[c] for c in close]


def suggest(model_id: str, n: int = 3) -> str:
    """'did you mean …?' with the nearest ids, else a few known ids."""
    close = nearest_ids(model_id, n)
    if close:
        return "did you mean " + ", ".join(repr(c) for c in close) + "? (`autoparallel models` lists the zoo)"
    return "known ids like " + ", ".join(repr(e.id) for e in list_models()[:4]) + " (`autoparallel models`)"
