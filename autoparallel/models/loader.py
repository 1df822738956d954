"""`load_model`: a ModelSpec from a zoo id, a local config, a dict, a PretrainedConfig or a hub id.

Zoo ids, local files, dicts and hub ids never import transformers (a hub id outside the zoo has its
config.json fetched by `models.hub`, under a total time limit, or read from the hub client's local
cache alone with `HF_HUB_OFFLINE=1`); nothing ever runs a model's code. A
config without `quantization_config` takes the NVIDIA ModelOpt `hf_quant_config.json` beside it, in a
folder, beside a named config.json, or in the hub repository, as vLLM 0.32 does
(`transformers_utils/config.py` `get_config`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from autoparallel.bounds import clean_text
from autoparallel.errors import InputError
from autoparallel.models.config_file import read_config
from autoparallel.models.hub import (
    QUANT_CONFIG_FILE,
    cached_config_files,
    fetch_config_files,
    hub_cache_dir,
    offline,
    offline_variable,
)
from autoparallel.models.parse import spec_from_config
from autoparallel.models.spec import ModelSpec
from autoparallel.models.zoo import ZooEntry, find_entry, list_models, nearest_ids

__all__ = ["NO_MODEL_ID", "ZooEntry", "list_models", "load_model"]

NO_MODEL_ID = "<path-to-model>"
"""What the launch lines load for a model given as an in-memory config (a dict or a PretrainedConfig)
without `_name_or_path`: it names no checkpoint, and its `model_type` (`gpt2`, `llama`) is another
model's hub id that `vllm serve` would download. The emitters shell-quote the id (so `${MODEL_PATH}`
would not expand); the user replaces this placeholder, and the plan's notes say so
(`plan.ServingPlan.engine_notes`). The spec keeps it as its `source`, so a ModelSpec loaded from such
a config and passed on serves it too."""


def _no_id(spec: ModelSpec) -> ModelSpec:
    """`spec`, parsed from an in-memory config that names no checkpoint, serving `NO_MODEL_ID`."""
    return spec.model_copy(update={"source": NO_MODEL_ID})


@runtime_checkable
class _HasToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def load_model(source: str | Path | dict[str, Any] | ModelSpec | _HasToDict) -> ModelSpec:
    """Parse a model from any supported source.

    Args:
        source: a zoo id or alias (case-insensitive), a directory holding `config.json`, a path to a
            `config.json`, a config dict, a transformers `PretrainedConfig`, a ModelSpec (returned as is),
            or a Hugging Face hub id that the zoo does not hold (its config.json, and hf_quant_config.json
            where the repository has one, downloaded with huggingface_hub; transformers is not imported).

    Raises:
        InputError: unknown id that cannot be fetched, missing or malformed file, invalid config.

    Usage:
        >>> load_model("meta-llama/Llama-3.1-70B").num_layers
        80
    """
    if isinstance(source, ModelSpec):
        return source
    if isinstance(source, dict):
        given = source.get("_name_or_path")
        if given:
            return spec_from_config(source, name=str(given))
        return _no_id(spec_from_config(source, name=str(source.get("model_type") or "custom-model")))
    if isinstance(source, Path):
        return _load_path(source, str(source))
    if isinstance(source, str):
        return _load_str(source)
    if isinstance(source, _HasToDict):
        cfg = source.to_dict()
        if not isinstance(cfg, dict):  # a PretrainedConfig's is a dict; another object's may be anything
            raise InputError(
                f"{clean_text(type(source).__name__, 80)}.to_dict() returned a {type(cfg).__name__}, "
                "not a config dict"
            )
        given = getattr(source, "name_or_path", "") or cfg.get("_name_or_path")
        if given:
            return spec_from_config(cfg, name=str(given))
        return _no_id(spec_from_config(cfg, name=str(cfg.get("model_type") or "custom-model")))
    raise InputError(
        f"cannot load a model from a {type(source).__name__}; pass an id, a path, a dict "
        "or a PretrainedConfig"
    )


def _load_str(source: str) -> ModelSpec:
    """A local path that exists wins over a zoo entry of the same name (as it does for transformers and
    vLLM, which would load that folder too); the spec's notes say so. Then the zoo, then the hub."""
    text = source.strip()
    if not text:
        raise InputError("empty model id")
    if len(text) > 4096 or "\0" in text:
        raise InputError(f"model id {clean_text(repr(text), 80)} is not a zoo id, a path or a hub id")
    entry = find_entry(text)
    path = Path(text).expanduser()
    try:
        exists = path.exists()
    except (OSError, ValueError):
        exists = False
    if exists:
        spec = _load_path(path, text)
        if entry is None:
            return spec
        note = (
            f"Loaded from the local path {clean_text(text, 200)!r}, which exists; the zoo entry "
            f"{entry.id!r} of the same name was not used."
        )
        return spec.model_copy(update={"notes": f"{note} {spec.notes}".strip()})
    if entry is not None:
        return entry.spec()
    if _looks_like_path(text):
        raise InputError(f"no such file or directory: {clean_text(text, 200)}")
    return _load_hub(text)


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith(("/", "./", "../", "~", "\\"))
        or text.endswith(".json")
        or "\\" in text
        or text.count("/") > 1
    )


def _load_path(path: Path, shown: str) -> ModelSpec:
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.is_file():
            raise InputError(f"{shown}: directory has no config.json")
        cfg = _with_quant_file(_read_json(config_path), path / QUANT_CONFIG_FILE)
        name = str(cfg.get("_name_or_path") or path.resolve().name)
        return spec_from_config(cfg, name=name).model_copy(update={"source": shown})
    if not path.exists():
        raise InputError(f"no such file or directory: {shown}")
    cfg = _read_json(path)  # a file, a pipe or a device: the read is bounded (user_file.read_capped)
    cfg = _with_quant_file(cfg, path.parent / QUANT_CONFIG_FILE)
    default_name = path.resolve().parent.name if path.name == "config.json" else path.stem
    name = str(cfg.get("_name_or_path") or default_name)
    folder = str(Path(shown.strip()).parent)  # the engines load the file's folder
    return spec_from_config(cfg, name=name).model_copy(update={"source": folder})


def _read_json(path: Path) -> dict[str, Any]:
    return read_config(path)


def _with_quant_file(cfg: dict[str, Any], quant_path: Path | None) -> dict[str, Any]:
    """`cfg` with the ModelOpt `hf_quant_config.json` at `quant_path` as its `quantization_config`, where
    it has none (absent or null) and that file exists: vLLM 0.32 `transformers_utils/config.py`
    `get_config` ("ModelOpt 0.29.0 and before saves the quantization config in a separate
    hf_quant_config.json in the same directory as the model config file")."""
    if cfg.get("quantization_config") is not None or quant_path is None or not quant_path.is_file():
        return cfg
    return {**cfg, "quantization_config": _modelopt_quant(_read_json(quant_path), quant_path)}


def _modelopt_quant(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """NVIDIA ModelOpt `hf_quant_config.json` -> a `quantization_config` dict (quant_method modelopt)."""
    q = data.get("quantization")
    if not isinstance(q, dict):
        raise InputError(f"{path}: expected a `quantization` object")
    return {
        "quant_method": "modelopt",
        "quant_algo": q.get("quant_algo"),
        "kv_cache_quant_algo": q.get("kv_cache_quant_algo"),
        "exclude_modules": q.get("exclude_modules", []),
        **({"group_size": q["group_size"]} if "group_size" in q else {}),
    }


def _not_found(model_id: str, reason: str) -> InputError:
    near = nearest_ids(model_id) or [e.id for e in list_models()[:4]]
    known = ", ".join(repr(i) for i in near)
    shown = clean_text(repr(model_id), 200)
    return InputError(f"{shown} {reason}; known ids like {known} (`autoparallel models`)")


@functools.cache
def _load_hub(model_id: str) -> ModelSpec:
    """A hub id's config, fetched once per process (a command that reads the model twice, as
    `evaluate` does to build the configuration and then to plan it, touches the network once; a
    failed fetch is not kept). With `HF_HUB_OFFLINE=1`, the hub client's local cache alone (no request),
    planned as the same files fetched online: how an air-gapped node reads a pre-downloaded model."""
    if "/" not in model_id.strip("/"):
        raise _not_found(model_id, "is not in the zoo (a hub id has the form owner/name)")
    if offline():
        try:
            cached = cached_config_files(model_id)
        except InputError as exc:  # the cache unreadable
            raise _not_found(model_id, f"is not in the zoo and {exc}") from None
        if cached is None:
            raise _not_found(
                model_id,
                f"is not in the zoo nor in the local hub cache ({hub_cache_dir()}), and "
                f"{offline_variable()} is set so it was not fetched",
            )
        files = cached
    else:
        try:
            files = fetch_config_files(model_id)
        except InputError as exc:
            raise _not_found(model_id, f"is not in the zoo and {exc}") from None
    return spec_from_config(_with_quant_file(read_config(files.config), files.quant_config), name=model_id)


def served_id(source: Any, model: ModelSpec) -> str:
    """The id to hand to the engine: the zoo id or alias the user named (its published spelling, so
    `...-Instruct` stays instruct), a local folder as given, the folder of a local file (a path to a
    `config.json`: `vllm serve` and SGLang's `--model-path` load a folder, not a file), the
    `NO_MODEL_ID` placeholder for an in-memory config without `_name_or_path`, else the model's
    canonical id."""
    if isinstance(source, Path):
        return _served_path(source, str(source))
    if not isinstance(source, str):
        return model.source or model.name  # a spec read from a local folder serves that folder
    entry = find_entry(source)
    if entry is None:
        return _served_path(Path(source.strip()).expanduser(), source)
    # The id or alias named, or the one whose name after `/` was typed (`llama-3.1-8b-instruct` is the
    # Instruct alias, not the base id the entry is filed under).
    typed = source.strip().lower()
    names = (entry.id, *entry.aliases)
    return next(
        (n for n in names if n.lower() == typed),
        next((n for n in names if n.split("/")[-1].lower() == typed), entry.id),
    )


def _served_path(path: Path, shown: str) -> str:
    """`shown` for a folder, a hub id or a path that does not exist; for a file, its folder as the user
    spelled it (`/m/config.json` -> `/m`, `config.json` -> `.`)."""
    try:
        is_file = path.exists() and not path.is_dir()
    except (OSError, ValueError):
        is_file = False
    return str(Path(shown.strip()).parent) if is_file else shown
