"""TensorRT-LLM with pipeline stages runs max_batch_size × pp_size requests
(`_torch/pyexecutor/_util.py` create_py_executor_instance: the capacity scheduler and SeqSlotManager
get `max_num_sequences = max_batch_size * mapping.pp_size`, the micro-batch scheduler max_batch_size;
`mamba_cache_manager.py` MambaCacheManager holds max_batch_size * pp_size state slots). A plan's
max_num_seqs is that total: the options file writes max_num_seqs / pp and the pool is priced for the
engine's total."""

from __future__ import annotations

import pytest

from autoparallel.configs import ServingConfig
from autoparallel.frameworks.trtllm import trtllm_options
from autoparallel.hardware import Cluster
from autoparallel.memory.trtllm import mamba_state_bytes
from autoparallel.models import load_model
from autoparallel.perf.serving_engines import engine_kv_for, evaluate_engine
from autoparallel.workload import Serving

GIB = float(2**30)


def test_the_options_file_writes_one_micro_batchs_share_of_max_num_seqs() -> None:
    # the hunter's Yi-1.5-34B plan on 1x8xH100: tp2 pp4 max_num_seqs 384
    opts = trtllm_options(ServingConfig(tp=2, pp=4, max_num_seqs=384))
    assert opts["pipeline_parallel_size"] == 4
    assert opts["max_batch_size"] == 96  # the engine runs 96 × 4 = 384, not 1,536
    assert opts["cuda_graph_config"] == {"max_batch_size": 96, "enable_padding": True}
    assert trtllm_options(ServingConfig(tp=8, max_num_seqs=384))["max_batch_size"] == 384


def test_the_pool_holds_states_for_the_engines_total_and_the_emitted_value_agrees() -> None:
    model = load_model("Qwen/Qwen3-Next-80B-A3B-Instruct")
    cluster = Cluster.parse("2x8xH200")
    config = ServingConfig(tp=4, pp=2, max_num_seqs=512, max_model_len=2048)
    kv, memory = engine_kv_for("trtllm", model, cluster, config)
    emitted = trtllm_options(config, model=model)["max_batch_size"]
    assert isinstance(emitted, int)
    # what the engine allocates (max_batch_size × pp slots) is what was priced, and the plan's total
    assert emitted * config.pp == kv.max_running == 512
    per_slot = mamba_state_bytes(model, memory, cluster.gpu)
    assert per_slot > 0
    assert kv.states_gib == pytest.approx(512 * per_slot / GIB)
    assert kv.cuda_graph_max_batch == 256  # graphs capture one micro-batch's decode batch


def test_a_max_num_seqs_the_stages_do_not_divide_is_a_named_problem() -> None:
    model = load_model("01-ai/Yi-1.5-34B-Chat")
    cluster = Cluster.parse("1x8xH100")
    work = Serving(isl=1024, osl=256)
    odd_config = ServingConfig(tp=2, pp=4, max_num_seqs=6, max_model_len=2048)
    odd = evaluate_engine(model, cluster, odd_config, work, "trtllm", "m")
    assert not odd.fits
    assert "max_num_seqs 6 is not a multiple of pp 4 (max_batch_size 2 runs 8)" in odd.problems[0]
    even_config = odd_config.model_copy(update={"max_num_seqs": 8})
    even = evaluate_engine(model, cluster, even_config, work, "trtllm", "m")
    assert even.fits and even.memory.max_running == 8
