"""`load_model`: a ModelSpec from a zoo id, a local config, a dict, a PretrainedConfig or a hub id.

Zoo ids, local files and dicts never import transformers; only a hub id that the zoo does not know
is fetched through `transformers.AutoConfig` (without `trust_remote_code`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from autoparallel.errors import InputError
from autoparallel.models.parse import spec_from_config
from autoparallel.models.spec import ModelSpec
from autoparallel.models.zoo import ZooEntry, find_entry, list_models, nearest_ids

__all__ = ["ZooEntry", "list_models", "load_model"]


@runtime_checkable
class _HasToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def load_model(source: str | Path | dict[str, Any] | ModelSpec | _HasToDict) -> ModelSpec:
    """Parse a model from any supported source.

    Args:
        source: a zoo id or alias (case-insensitive), a directory holding `config.json`, a path to a
            `config.json`, a config dict, a transformers `PretrainedConfig`, a ModelSpec (returned as is),
            or a Hugging Face hub id that the zoo does not hold (fetched with transformers).

    Raises:
        InputError: unknown id that cannot be fetched, missing or malformed file, invalid config.

    Usage:
        >>> load_model("meta-llama/Llama-3.1-70B").num_layers
        80
    """
    if isinstance(source, ModelSpec):
        return source
    if isinstance(source, dict):
        name = str(source.get("_name_or_path") or source.get("model_type") or "custom-model")
        return spec_from_config(source, name=name)
    if isinstance(source, Path):
        return _load_path(source, str(source))
    if isinstance(source, str):
        return _load_str(source)
    if isinstance(source, _HasToDict):
        cfg = source.to_dict()
        name = str(getattr(source, "name_or_path", "") or cfg.get("_name_or_path") or cfg.get("model_type")
                   or "custom-model")
        return spec_from_config(cfg, name=name)
    raise InputError(f"cannot load a model from a {type(source).__name__}; pass an id, a path, a dict "
                     "or a PretrainedConfig")


def _load_str(source: str) -> ModelSpec:
    text = source.strip()
    if not text:
        raise InputError("empty model id")
    entry = find_entry(text)
    if entry is not None:
        return entry.spec()
    path = Path(text).expanduser()
    if path.exists():
        return _load_path(path, text)
    if _looks_like_path(text):
        raise InputError(f"no such file or directory: {text}")
    return _load_hub(text)


def _looks_like_path(text: str) -> bool:
    return (text.startswith(("/", "./", "../", "~", "\\")) or text.endswith(".json") or "\\" in text
            or text.count("/") > 1)


def _load_path(path: Path, shown: str) -> ModelSpec:
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.is_file():
            raise InputError(f"{shown}: directory has no config.json")
        cfg = _read_json(config_path)
        quant_path = path / "hf_quant_config.json"
        if "quantization_config" not in cfg and quant_path.is_file():
            cfg = {**cfg, "quantization_config": _modelopt_quant(_read_json(quant_path), quant_path)}
        name = str(cfg.get("_name_or_path") or path.resolve().name)
        return spec_from_config(cfg, name=name)
    if not path.is_file():
        raise InputError(f"no such file or directory: {shown}")
    cfg = _read_json(path)
    default_name = path.resolve().parent.name if path.name == "config.json" else path.stem
    name = str(cfg.get("_name_or_path") or default_name)
    return spec_from_config(cfg, name=name)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _modelopt_quant(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """NVIDIA ModelOpt `hf_quant_config.json` -> a `quantization_config` dict (quant_method modelopt)."""
    q = data.get("quantization")
    if not isinstance(q, dict):
        raise InputError(f"{path}: expected a `quantization` object")
    return {"quant_method": "modelopt", "quant_algo": q.get("quant_algo"),
            "kv_cache_quant_algo": q.get("kv_cache_quant_algo"),
            "exclude_modules": q.get("exclude_modules", [])}


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the hub endpoint answers a TCP connect (skipped, i.e. True, behind a proxy or when the user
    forces offline mode, where transformers itself decides)."""
    import os
    import socket
    from urllib.parse import urlparse

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _fetch_hub_config(model_id: str) -> dict[str, Any]:
    """The config of a hub model, through transformers (never trusting remote code).

    When the hub cannot be reached, only the local Hugging Face cache is consulted (no retries).
    """
    from transformers import AutoConfig

    local_only = not _hub_reachable()
    config = AutoConfig.from_pretrained(model_id, trust_remote_code=False, local_files_only=local_only)
    return dict(config.to_dict())


def _not_found(model_id: str, reason: str) -> InputError:
    near = nearest_ids(model_id) or [e.id for e in list_models()[:4]]
    known = ", ".join(repr(i) for i in near)
    return InputError(f"{model_id!r} {reason}; known ids like {known} (`autoparallel models`)")


def _load_hub(model_id: str) -> ModelSpec:
    import os

    if "/" not in model_id.strip("/"):
        raise _not_found(model_id, "is not in the zoo (a hub id has the form owner/name)")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise _not_found(model_id, "is not in the zoo, and HF_HUB_OFFLINE is set so it was not fetched")
    try:
        cfg = _fetch_hub_config(model_id)
    except Exception as exc:  # OSError, ValueError, HTTP errors...: all mean "not fetched"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"is not in the zoo and could not be fetched (offline?): {reason}"
        raise _not_found(model_id, message) from exc
    return spec_from_config(cfg, name=model_id)
