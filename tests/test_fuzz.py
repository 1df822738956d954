"""Property tests (Hypothesis, derandomized) over hostile input: config dicts and files, cluster strings,
CLI argv and API arguments. Each answer is a result or one AutoParallelError: never another exception,
never an accepted result that the package's own checks reject. `benchmarks/fuzz.py` runs the same CLI
generator over 10,000 inputs."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autoparallel as ap
from autoparallel.errors import AutoParallelError, InputError
from autoparallel.models import ModelSpec, load_model
from autoparallel.models.config_file import parse_config_text
from autoparallel.models.spec import AttentionKind
from autoparallel.models.zoo import find_entry
from benchmarks import fuzz
from tests.property_examples import examples

FAST = settings(derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
BASE: dict[str, Any] = copy.deepcopy(find_entry("meta-llama/Llama-3.2-1B").config)  # type: ignore[union-attr]
M = "meta-llama/Llama-3.2-1B"

ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
KEYS = st.sampled_from(
    (
        "model_type",
        "num_hidden_layers",
        "hidden_size",
        "num_attention_heads",
        "num_key_value_heads",
        "intermediate_size",
        "vocab_size",
        "head_dim",
        "max_position_embeddings",
        "tie_word_embeddings",
        "num_local_experts",
        "num_experts_per_tok",
        "layer_types",
        "torch_dtype",
        "quantization_config",
        "rope_scaling",
        "text_config",
        "vision_config",
        "sliding_window",
        "_name_or_path",
    )
)
SMALL_INTS = st.integers(min_value=-2, max_value=70)


def _check_spec(spec: ModelSpec) -> None:
    assert spec.active_params <= spec.total_params
    for layer in spec.layers:
        att, mlp = layer.attention, layer.mlp
        if att.kind not in (AttentionKind.MLA, AttentionKind.LINEAR):
            assert att.num_kv_heads <= att.num_heads and att.num_heads % att.num_kv_heads == 0
        assert mlp.experts_per_token <= max(mlp.num_experts, 0) or not mlp.num_experts
    assert "\x1b" not in spec.name


@settings(FAST, max_examples=examples(150))
@given(st.dictionaries(KEYS, ANY_VALUE | SMALL_INTS, max_size=4))
def test_config_dicts_load_or_raise_input_error(update: dict[str, Any]) -> None:
    try:
        spec = load_model({**copy.deepcopy(BASE), **update})
    except InputError:
        return
    _check_spec(spec)


@settings(FAST, max_examples=examples(100))
@given(st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
def test_config_text_parses_or_raises_input_error(text: str) -> None:
    try:
        data = parse_config_text(text, "fuzz.json")
    except InputError:
        return
    assert isinstance(data, dict)


CLUSTER_PIECES = st.sampled_from(
    (
        "1",
        "2",
        "8",
        "0",
        "-1",
        "x",
        "X",
        "×",
        "*",
        "H100",
        "A100",
        "L4",
        ",",
        "ib=",
        "nvlink=",
        "400",
        "1e-300",
        "nan",
        "🚀",
        " ",
        ";",
        "99999",
    )
)


@settings(FAST, max_examples=examples(150))
@given(st.lists(CLUSTER_PIECES, max_size=8).map("".join) | st.text(max_size=20))
def test_cluster_strings_parse_or_raise_input_error(spec: str) -> None:
    try:
        ap.analyze(load_model(M), spec)
    except InputError:
        return


@settings(FAST, max_examples=examples(8))
@given(rng=st.randoms(use_true_random=False))
def test_cli_argv_never_crashes_hangs_or_emits_a_rejected_plan(
    rng: random.Random, tmp_path_factory: Any
) -> None:
    folder = tmp_path_factory.mktemp("configs")
    argv = fuzz.generate(rng, fuzz.hostile_configs(folder))
    outcome, _, detail = fuzz.run_one(argv)
    assert outcome not in ("traceback", "slow", "rejected", "exit 3"), (argv, detail)


NOT_AN_OBJECTIVE = (
    st.integers()
    | st.floats()
    | st.none()
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=4), st.text(max_size=4), min_size=1, max_size=2)
)


@settings(FAST, max_examples=examples(40))
@given(
    objective=NOT_AN_OBJECTIVE,
    objectives=st.text(max_size=20) | st.integers() | st.lists(st.text(max_size=5), min_size=3, max_size=4),
    config=st.dictionaries(st.text(max_size=4), st.integers(), max_size=2) | st.integers() | st.text(),
    models=st.text(min_size=1, max_size=20) | st.integers() | st.none(),
)
def test_api_arguments_of_the_wrong_kind_are_input_errors(
    objective: Any, objectives: Any, config: Any, models: Any
) -> None:
    calls = (
        lambda: ap.solve(M, "1xH100", objective=objective),
        lambda: ap.pareto(M, "1xH100", objectives=objectives),
        lambda: ap.evaluate(M, "1xH100", config),
    )
    for call in calls:
        with pytest.raises(AutoParallelError):
            call()
    if not isinstance(models, str):
        with pytest.raises(AutoParallelError):
            ap.sweep(models=models, clusters=["1xH100"], workloads=["chatbot"])
        return
    # a lone string is one model (a sweep's failures are rows, never exceptions)
    try:
        rows = list(ap.sweep(models=models, clusters=["1xH100"], workloads=["chatbot"], executor="serial"))
    except AutoParallelError:
        return
    assert [r["status"] for r in rows] == ["error"], rows
