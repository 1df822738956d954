"""DeepSeek-V3.2 on 8×H200: published fixed-length bursts that nothing in the model was fitted to.

    uv run python benchmarks/fixed_length_checks.py

The figures are the mean lines of `vllm bench serve` (random prompts of a fixed length, all sent at
once) that gpustack's performance page for DeepSeek-V3.2 on H200 prints in its "Other Benchmark
Cases" section (github.com/gpustack/gpustack, docs/performance-lab/deepseek-v3.2/h200.md): the
baseline `vllm serve deepseek-ai/DeepSeek-V3.2 -tp 8` (vLLM 0.13) and the optimized SGLang 0.5.6
server (`--tp-size 8 --dp-size 8 --enable-dp-attention --context-length 32768 --nsa-prefill-backend
fa3 --nsa-decode-backend fa3`). They are not in the reference CSV. Fixed lengths leave no length
distribution to guess, so the replay's step model is checked on its own: prompt-heavy runs test
the admission, the 1,000 / 2,000 run the decode.

Prints predicted / measured for output tokens/s, mean TTFT, mean TPOT and mean ITL.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from autoparallel.configs import ServingConfig
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.memory.serving import serving_memory
from autoparallel.memory.sglang import sglang_server_kv
from autoparallel.models import load_model
from autoparallel.perf.serving_load import BenchmarkRun, run_benchmark
from autoparallel.workload import Serving


@dataclass(frozen=True)
class Run:
    engine: str
    isl: int
    osl: int
    prompts: int
    tokens_per_s: float
    ttft_ms: float
    tpot_ms: float
    itl_ms: float


RUNS = (
    Run("vllm", 128, 4, 1000, 305.20, 5786.15, 781.80, 586.79),
    Run("vllm", 2000, 100, 500, 520.27, 45667.57, 354.59, 353.26),
    Run("vllm", 4000, 200, 500, 474.96, 103386.88, 226.74, 228.79),
    Run("vllm", 32000, 100, 100, 30.25, 164003.81, 472.52, 477.69),
    Run("vllm", 1000, 2000, 100, 2075.01, 4789.20, 45.72, 46.34),
    Run("sglang", 128, 4, 984, 552.34, 4441.81, 776.55, 465.93),
    Run("sglang", 2000, 100, 500, 1319.64, 18696.78, 192.24, 189.18),
    Run("sglang", 4000, 200, 500, 978.37, 44019.81, 177.95, 177.57),
    Run("sglang", 32000, 100, 100, 62.45, 83964.72, 246.26, 244.63),
    Run("sglang", 1000, 2000, 100, 2469.32, 2103.54, 39.45, 40.56),
)
"""(engine, prompt / output tokens, prompts, measured output tokens/s, mean TTFT / TPOT / ITL ms)."""
VLLM_VERSION = "0.13"
"""The vLLM release the page's vLLM runs used (its serving section's image, as in the reference CSV's
rows from the same page): its synchronous scheduler and its sparse-MLA kernels."""


def predict(run: Run) -> BenchmarkRun:
    """The replay of `run` as each server was launched."""
    model, gpu = load_model("deepseek-ai/DeepSeek-V3.2"), get_gpu("H200")
    cluster = Cluster.from_shape(nodes=1, gpus_per_node=8, gpu=gpu)
    workload = Serving(isl=run.isl, osl=run.osl, num_prompts=run.prompts)
    if run.engine == "vllm":
        config = ServingConfig(tp=8, max_num_seqs=1024, max_model_len=163840, gpu_memory_utilization=0.9)
        memory = serving_memory(model, gpu, config)
        return run_benchmark(model, cluster, config, workload, memory=memory, vllm_version=VLLM_VERSION)
    config = ServingConfig(
        tp=1, replicas=8, enable_expert_parallel=True, max_num_seqs=1024, max_model_len=32768
    )
    memory = serving_memory(model, gpu, config)
    kv = sglang_server_kv(model, memory, gpu, config, nsa_backends=("fa3", "fa3"))
    return run_benchmark(model, cluster, config, workload, memory=memory, engine="sglang", engine_kv=kv)


def main() -> int:
    print("engine  prompts × in / out       tokens/s   TTFT   TPOT    ITL   (predicted / measured)")
    for run in RUNS:
        got = predict(run)
        ratios = (
            got.output_tokens_per_s / run.tokens_per_s,
            got.mean_ttft_ms / run.ttft_ms,
            got.mean_tpot_ms / run.tpot_ms,
            got.mean_itl_ms / run.itl_ms,
        )
        shape = f"{run.prompts:>5} × {run.isl:>6,} / {run.osl:>5,}"
        print(f"{run.engine:<7} {shape}   " + "  ".join(f"{r:5.2f}" for r in ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
