"""TensorRT-LLM's own defaults price its pool.

- Its KV pool subtracts the activation peak of a warm-up forward at `max_num_tokens`
  (`tensorrt_llm/_torch/pyexecutor/_util.py` `KvCacheCreator`), 8192 by default and what the options
  file writes (frameworks/trtllm.py), not vLLM's GPU-dependent step budget (2048 on an A100).
- A bare `trtllm-serve` runs `max_batch_size` 2048 per micro-batch (`commands/serve.py`:
  `default=BuildConfig.model_fields["max_batch_size"].default`; `BuildConfig.max_batch_size` 2048).
"""

from __future__ import annotations

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.frameworks.trtllm import trtllm_options
from autoparallel.hardware import Cluster
from autoparallel.memory import trtllm
from autoparallel.memory.serving import serving_memory
from autoparallel.memory.trtllm import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_NUM_TOKENS, trtllm_kv
from autoparallel.models import load_model
from autoparallel.perf.serving_engines import engine_estimate, engine_kv_for
from autoparallel.workload import Serving

MODEL = "meta-llama/Llama-3.1-70B"


def test_the_trtllm_pool_is_profiled_at_its_own_max_num_tokens_on_a100() -> None:
    model = load_model(MODEL)
    cluster = Cluster.parse("4xA100-80G")
    config = ServingConfig(tp=4, max_num_seqs=256, max_model_len=4096)
    emitted = trtllm_options(config, model=model)["max_num_tokens"]
    assert emitted == DEFAULT_MAX_NUM_TOKENS
    kv, memory = engine_kv_for("trtllm", model, cluster, config)
    assert memory.max_num_batched_tokens == emitted  # vLLM's A100 default would be 2048
    assert kv.step_tokens == emitted
    vllm_default = serving_memory(model, cluster.gpu, config)
    assert vllm_default.max_num_batched_tokens == 2048
    assert memory.activation_peak_gib > vllm_default.activation_peak_gib
    want = trtllm_kv(memory, cluster.gpu, max_batch_size=256, max_num_tokens=emitted)
    assert kv.kv_cache_gib == pytest.approx(want.kv_cache_gib)
    # the report shown beside the plan is the one the pool read
    est, _ = engine_estimate(model, cluster, config, Serving(isl=1000, osl=200), "trtllm", MODEL)
    assert est.memory.max_num_batched_tokens == emitted
    # a step budget the config sets is kept
    given = config.model_copy(update={"max_num_batched_tokens": 4096})
    assert engine_kv_for("trtllm", model, cluster, given)[1].max_num_batched_tokens == 4096


def test_sglang_pool_reads_no_vllm_step_budget() -> None:
    # SGLang's pool reads weights, non-torch memory and KV bytes per token, none of which the step
    # budget moves: the same pool whatever vLLM's max_num_batched_tokens
    model = load_model(MODEL)
    cluster = Cluster.parse("4xA100-80G")
    config = ServingConfig(tp=4, max_num_seqs=256, max_model_len=4096)
    a = engine_kv_for("sglang", model, cluster, config)[0]
    b = engine_kv_for("sglang", model, cluster, config.model_copy(update={"max_num_batched_tokens": 8192}))[0]
    assert a.kv_cache_gib == b.kv_cache_gib


def test_a_bare_trtllm_serve_runs_2048_requests_per_micro_batch() -> None:
    assert DEFAULT_MAX_BATCH_SIZE == 2048
    for pp in (1, 2, 4):
        total = trtllm.trtllm_default_max_num_seqs(pp)
        assert total == DEFAULT_MAX_BATCH_SIZE * pp
        # the options file writes the bare server's own max_batch_size back
        opts = trtllm_options(ServingConfig(tp=1, pp=pp, max_num_seqs=total))
        assert opts["max_batch_size"] == DEFAULT_MAX_BATCH_SIZE
