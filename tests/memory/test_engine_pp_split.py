"""Each engine splits an uneven pipeline its own way (memory/vllm_profile.py `pp_partition`), and the
memory model, the engines' KV pools and the solver tables price the stages of that split:

- vLLM `distributed/utils.py::get_pp_indices`: the extra layers to the stages before the last;
- SGLang `python/sglang/srt/distributed/utils.py::get_pp_indices`: to the last stages;
- TensorRT-LLM `tensorrt_llm/mapping.py` `Mapping.pp_layers` (`torch.tensor_split`): to the first.
"""

from __future__ import annotations

import itertools

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.errors import InputError
from autoparallel.hardware import Cluster
from autoparallel.memory.serving import DEFAULT_VLLM_VERSION, serving_memory
from autoparallel.memory.vllm_profile import pp_partition
from autoparallel.memory.vllm_versions import parse_vllm_version, rules_for
from autoparallel.models import load_model
from autoparallel.perf.serving_engines import engine_kv_for
from autoparallel.solvers.serving.memory_terms import MemoryTerms
from autoparallel.workload import Serving

QWEN3_14B = "Qwen/Qwen3-14B"  # 40 layers, 8 KV heads of 128: 4,096 cached bytes a token a layer (BF16)
LAYER_BYTES = 2 * 8 * 128 * 2


def _sizes(num_layers: int, pp: int, engine: str) -> list[int]:
    stages = pp_partition(num_layers, pp, engine=engine)
    assert stages[0].start == 0 and stages[-1].stop == num_layers
    assert all(a.stop == b.start for a, b in itertools.pairwise(stages))
    return [len(r) for r in stages]


@pytest.mark.parametrize(
    ("engine", "forty_by_3", "sixty_one_by_4"),
    [
        ("vllm", [13, 14, 13], [15, 15, 16, 15]),
        ("sglang", [13, 13, 14], [15, 15, 15, 16]),
        ("trtllm", [14, 13, 13], [16, 15, 15, 15]),
    ],
)
def test_each_engine_gives_the_extra_layers_to_its_own_stages(
    engine: str, forty_by_3: list[int], sixty_one_by_4: list[int]
) -> None:
    assert _sizes(40, 3, engine) == forty_by_3
    assert _sizes(61, 4, engine) == sixty_one_by_4
    assert _sizes(62, 4, engine) == {"vllm": [15, 16, 16, 15], "sglang": [15, 15, 16, 16]}.get(
        engine, [16, 16, 15, 15]
    )
    assert _sizes(32, 4, engine) == [8, 8, 8, 8]
    # An explicit partition (VLLM_PP_LAYER_PARTITION / SGLANG_PP_LAYER_PARTITION) wins.
    assert [len(r) for r in pp_partition(40, 3, (10, 15, 15), engine=engine)] == [10, 15, 15]


def test_the_old_signature_is_vllms_split_and_an_unknown_engine_is_refused() -> None:
    assert pp_partition(40, 3) == pp_partition(40, 3, engine="vllm")
    with pytest.raises(InputError, match="engine 'tgi'"):
        pp_partition(40, 3, engine="tgi")


def _pp3(max_num_seqs: int = 4096) -> tuple[Cluster, ServingConfig]:
    """`evaluate Qwen/Qwen3-14B --cluster 1x3xH100 --pp 3 --tp 1`'s deployment (SGLang's default
    max_num_seqs there: 4,096)."""
    return Cluster.parse("1x3xH100"), ServingConfig(tp=1, pp=3, max_model_len=2048, max_num_seqs=max_num_seqs)


def test_memory_report_prices_each_engines_stages() -> None:
    model = load_model(QWEN3_14B)
    cluster, config = _pp3()
    for engine, layers in (("vllm", [13, 14, 13]), ("sglang", [13, 13, 14]), ("trtllm", [14, 13, 13])):
        report = serving_memory(model, cluster.gpu, config, engine=engine)
        assert [s.num_layers for s in report.stages] == layers
        assert [s.kv_bytes_per_token_all_layers_per_gpu for s in report.stages] == [
            n * LAYER_BYTES for n in layers
        ]


def test_sglang_pool_at_pp3_is_the_last_stage_with_the_extra_layer_and_lm_head() -> None:
    # Before: vLLM's 13/14/13 split priced the LM-head stage at 13 layers, 9.457 GiB of weights and
    # 53,248 B a token: 1,134,878 tokens. SGLang's last stage holds 14 layers + the LM head.
    model = load_model(QWEN3_14B)
    cluster, config = _pp3()
    kv, memory = engine_kv_for("sglang", model, cluster, config)
    last = memory.stages[-1]
    assert last.num_layers == 14 and memory.stage == 2
    assert last.weights_gib > max(s.weights_gib for s in memory.stages[:-1])
    assert kv.weights_gib == pytest.approx(last.weights_gib)
    assert kv.kv_bytes_per_token_per_gpu == 14 * LAYER_BYTES
    assert kv.weights_gib == pytest.approx(10.0723, abs=1e-3)
    assert kv.kv_cache_tokens == 1_042_295


def test_trtllm_pool_at_pp3_is_the_first_stage_with_the_extra_layer_and_embedding() -> None:
    # At 96 sequences the last stage's sampler peak is small: the fullest stage is the first, 14
    # layers + the embedding (10.07 GiB). Before: vLLM's split put the 14th layer in the middle stage
    # (8.62 GiB, no embedding) and priced that one: 1,165,280 tokens.
    model = load_model(QWEN3_14B)
    cluster, config = _pp3(96)
    kv, memory = engine_kv_for("trtllm", model, cluster, config)
    first = memory.stages[0]
    assert first.num_layers == 14
    assert kv.weights_gib == pytest.approx(first.weights_gib)
    assert kv.weights_gib == pytest.approx(10.0723, abs=1e-3)
    assert kv.kv_bytes_per_token_per_gpu == 14 * LAYER_BYTES
    assert kv.kv_cache_tokens == 1_140_864


def test_trtllm_pool_reads_its_own_tightest_stage_not_vllms() -> None:
    # The engine's rule over every stage, whichever stage vLLM's accounting limits at.
    model = load_model(QWEN3_14B)
    cluster, config = _pp3(96)
    kv, memory = engine_kv_for("trtllm", model, cluster, config)
    free = [
        0.9 * (cluster.gpu.memory_bytes - (s.weights_gib + s.activation_peak_gib + s.non_torch_gib) * 2**30)
        for s in memory.stages
    ]
    tokens = [
        int(f // (s.kv_bytes_per_token_all_layers_per_gpu * 32)) * 32
        for f, s in zip(free, memory.stages, strict=True)
    ]
    assert kv.kv_cache_tokens == min(tokens)


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_solver_weight_tables_follow_the_engines_split(engine: str) -> None:
    model = load_model(QWEN3_14B)
    cluster, config = _pp3()
    rules = rules_for(parse_vllm_version(DEFAULT_VLLM_VERSION))
    terms = MemoryTerms(model, cluster, rules, Serving(isl=1024, osl=256))
    tables = terms.weights(1, 3, 1, None, engine)
    report = serving_memory(model, cluster.gpu, config, engine=engine)
    assert [len(r) for r in terms.stages(3, engine)] == [s.num_layers for s in report.stages]
    assert tables == pytest.approx([s.weights_gib * 2**30 for s in report.stages], rel=1e-9)
