"""autoparallel.models: what is parallelized.

`load_model` parses a model from the zoo, a local `config.json`, a dict, a transformers config or a
hub id into a frozen `ModelSpec` (exact per-layer parameter groups, KV bytes, FLOPs, limits).
"""

from autoparallel.models.loader import load_model
from autoparallel.models.parse import spec_from_config
from autoparallel.models.quant import QuantMethod, QuantSpec
from autoparallel.models.spec import (
    AttentionKind,
    AttentionSpec,
    LayerSpec,
    LimitRule,
    MlpKind,
    MlpSpec,
    ModelSpec,
    ParamGroups,
)
from autoparallel.models.zoo import ZooEntry, list_models

__all__ = [
    "AttentionKind",
    "AttentionSpec",
    "LayerSpec",
    "LimitRule",
    "MlpKind",
    "MlpSpec",
    "ModelSpec",
    "ParamGroups",
    "QuantMethod",
    "QuantSpec",
    "ZooEntry",
    "list_models",
    "load_model",
    "spec_from_config",
]
