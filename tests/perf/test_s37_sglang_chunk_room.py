"""SGLang's no-pool message said how much a smaller --chunked-prefill-size gives back from a literal
(1.5 MiB a token above 8,192, "SGLang's H100-class default"), not from the reservation rule the pool is
sized by: on a B200 (default chunk 16,384, a 10 GiB floor) it counted 12 GiB. The figure is now
`default_mem_fraction_static` at the 2,048 tokens the reservation counts at least, less the default.
And the step budget it points to was then refused by vLLM's rule (max_num_batched_tokens >=
max_num_seqs), which SGLang does not have: its chunk bounds a step's prompt tokens only."""

from __future__ import annotations

import pytest

import autoparallel as ap
from autoparallel.errors import InputError

MODEL, CLUSTER, WORKLOAD = "deepseek-ai/DeepSeek-V3", "1x4xB200", ap.Serving(isl=1024, osl=256)


def test_the_no_pool_message_gives_back_what_the_rule_frees() -> None:
    ev = ap.evaluate(MODEL, CLUSTER, ap.ServingConfig(tp=4), WORKLOAD, engine="sglang").engine_eval
    assert ev is not None and ev.memory.kv_cache_gib < 0
    # reservation 26,624 MiB at the 16,384-token default, 10,240 (the floor) at 2,048: 16 GiB
    assert abs(ev.memory.chunk_room_gib - 16.0) < 0.1
    assert any("gives back 16.1 GiB" in p for p in ev.problems)
    small = ap.ServingConfig(tp=4, max_num_batched_tokens=2048)
    fits = ap.evaluate(MODEL, CLUSTER, small, WORKLOAD, engine="sglang").engine_eval
    assert fits is not None and fits.memory.kv_cache_gib > 0 and fits.memory.chunk_room_gib == 0.0


def test_the_step_budget_rule_is_each_engines() -> None:
    config = ap.ServingConfig(max_num_seqs=2048, max_num_batched_tokens=1024, max_model_len=2048)
    ok = ap.evaluate("Qwen/Qwen3-8B", "1xH100", config, ap.Serving(isl=512, osl=256), engine="sglang")
    assert ok.engine_eval is not None
    # TensorRT-LLM starts; its micro-batch scheduler decodes at most max_num_tokens requests a step
    trt = ap.evaluate("Qwen/Qwen3-8B", "1xH100", config, ap.Serving(isl=512, osl=256), engine="trtllm")
    assert trt.engine_eval is not None and trt.engine_eval.memory.max_running == 1024
    with pytest.raises(InputError, match="vLLM requires max_num_batched_tokens >= max_num_seqs"):
        ap.evaluate("Qwen/Qwen3-8B", "1xH100", config, ap.Serving(isl=512, osl=256), engine="vllm")
