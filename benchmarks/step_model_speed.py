"""Wall time of the serving oracle's enumerations, most of it the float step model (perf/serving_steps.py).

    uv run python benchmarks/step_model_speed.py

`enumerate_serving` over vLLM, SGLang and TensorRT-LLM on five instances (dense GQA with spread
prompts, MoE at an arrival rate, MoE over pipeline stages across nodes, sparse attention, linear
attention), every memo cache emptied before each repeat so that every step is priced afresh. Prints
seconds per instance (best of three) and their sum.
"""

from __future__ import annotations

import math
import time

from autoparallel.hardware import Cluster
from autoparallel.memo import clear_memos
from autoparallel.models import load_model
from autoparallel.solvers.oracle.serving import enumerate_serving
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.workload import Serving

REPEATS = 3
ENGINES = ServingOptions(engines=("vllm", "sglang", "trtllm"))
SPREAD = math.sqrt(1.37)  # the isl_cv whose prompt_spread is ShareGPT's 1.37
CASES: tuple[tuple[str, str, Serving], ...] = (
    ("meta-llama/Llama-3.1-70B", "1x8xH100", Serving(isl=2048, osl=256, concurrency=64, isl_cv=SPREAD)),
    ("Qwen/Qwen3-30B-A3B", "1x4xH100", Serving(isl=1024, osl=256, request_rate=40.0, isl_cv=SPREAD)),
    ("mistralai/Mixtral-8x7B-v0.1", "2x4xA100-SXM-80G", Serving(isl=512, osl=512, concurrency=16)),
    ("deepseek-ai/DeepSeek-V3.2", "1x8xH200", Serving(isl=8192, osl=256, request_rate=3.0)),
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", "1x4xH100", Serving(isl=1024, osl=256)),
)


def main() -> None:
    total = 0.0
    for model_name, spec, workload in CASES:
        model, cluster = load_model(model_name), Cluster.parse(spec)
        best = math.inf
        for _ in range(REPEATS):
            clear_memos()
            start = time.perf_counter()
            enumerate_serving(model, cluster, workload, options=ENGINES)
            best = min(best, time.perf_counter() - start)
        total += best
        print(f"{model_name:36s} {spec:18s} {best:7.2f} s")
    print(f"{'total':55s} {total:7.2f} s")


if __name__ == "__main__":
    main()
