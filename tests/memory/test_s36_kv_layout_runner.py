"""Every KV plan knows whether the model is MoE: vLLM 0.25-0.28 kept MoE models on the V1 runner
(pp batches in flight), so a sliding-window MoE at pp 2 holds fewer in-flight tokens per request there
than on 0.32 (pp + 1). The planner's and the speed model's layouts passed no `moe` and read every MoE
as dense (V2 from 0.25)."""

from autoparallel.configs import ServingConfig
from autoparallel.hardware import get_gpu
from autoparallel.models import load_model
from autoparallel.perf.serving import kv_layout
from autoparallel.workload import Serving


def test_a_sliding_window_moe_at_pp2_keeps_pp_batches_before_0_29() -> None:
    model, gpu = load_model("openai/gpt-oss-20b"), get_gpu("H100")
    config = ServingConfig(tp=1, pp=2, max_model_len=16384, max_num_batched_tokens=2048)
    work = Serving(isl=8192, osl=1024)
    v1 = kv_layout(model, gpu, config, work, vllm_version="0.26.0").blocks_per_seq
    v2 = kv_layout(model, gpu, config, work, vllm_version="0.32.0").blocks_per_seq
    assert v1 < v2
