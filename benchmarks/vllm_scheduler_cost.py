"""vLLM's engine-core host time per running request and decode step, measured with vLLM's own code.

    VLLM_CHECK_PYTHON=~/.vllmcheck/bin/python uv run python benchmarks/vllm_scheduler_cost.py

Runs in the vLLM checker's environment (`../shared/tools/README.md`; vLLM 0.32's CPU build): builds
vLLM's `VllmConfig` for Qwen3-8B's config.json (no weights, no tokenizer), a synthetic KV cache large
enough for every request, and vLLM's V1 `Scheduler`; admits N requests of a 219-token prompt, runs
their prefill, then times 50 all-decode steps of `Scheduler.schedule` and
`Scheduler.update_from_output` (one sampled token per request, no stop). Prints the time per step
and per running request. `serving_efficiency.VLLM_SCHEDULER_S_PER_REQUEST` quotes it.

The scheduler is pure Python: the figure is the host CPU's, not the GPU's. It leaves out the model
runner's input preparation and the output serialization, so it is a lower bound of the host work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = (
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "model_configs" / "Qwen__Qwen3-8B.json"
)
RUNNING = (64, 256, 1024)
STEPS = 50


def measure(running: int, model_dir: str) -> tuple[float, float]:
    """(schedule, update_from_output) seconds per all-decode step at `running` requests."""
    import torch
    from vllm.engine.arg_utils import EngineArgs
    from vllm.sampling_params import SamplingParams
    from vllm.v1.core.sched.scheduler import Scheduler
    from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
    from vllm.v1.outputs import ModelRunnerOutput
    from vllm.v1.request import Request
    from vllm.v1.structured_output import StructuredOutputManager

    args = EngineArgs(
        model=model_dir,
        skip_tokenizer_init=True,
        max_num_seqs=running,
        max_num_batched_tokens=max(8192, running),
        max_model_len=4096,
        enable_prefix_caching=False,
    )
    config = args.create_engine_config()
    block = 16
    spec = FullAttentionSpec(block_size=block, num_kv_heads=8, head_size=128, dtype=torch.bfloat16)
    blocks = running * 64 + 10
    config.cache_config.num_gpu_blocks = blocks
    kv = KVCacheConfig(
        num_blocks=blocks, kv_cache_tensors=[], kv_cache_groups=[KVCacheGroupSpec(["l0"], spec)]
    )
    scheduler = Scheduler(config, kv, StructuredOutputManager(config), block_size=block)
    params = SamplingParams(max_tokens=1000, ignore_eos=True)
    for i in range(running):
        scheduler.add_request(Request(f"r{i}", list(range(1, 220)), params, None))

    def step() -> tuple[float, float]:
        a = time.perf_counter()
        out = scheduler.schedule()
        b = time.perf_counter()
        ids = list(out.num_scheduled_tokens)
        sampled = ModelRunnerOutput(
            req_ids=ids,
            req_id_to_index={r: k for k, r in enumerate(ids)},
            sampled_token_ids=[[7] for _ in ids],
        )
        c = time.perf_counter()
        scheduler.update_from_output(out, sampled)
        return b - a, time.perf_counter() - c

    while not (
        len(scheduler.running) == running
        and all(r.num_computed_tokens >= r.num_prompt_tokens for r in scheduler.running)
    ):
        step()
    totals = [step() for _ in range(STEPS)]
    return sum(t[0] for t in totals) / STEPS, sum(t[1] for t in totals) / STEPS


def main() -> int:
    try:
        import vllm  # noqa: F401
    except ImportError:
        python = os.environ.get("VLLM_CHECK_PYTHON")
        if not python:
            print("needs vLLM: set VLLM_CHECK_PYTHON to the vLLM checker's Python", file=sys.stderr)
            return 2
        return subprocess.run([python, __file__, *sys.argv[1:]], check=False).returncode
    if not CONFIG.is_file():
        print(f"model config not found: {CONFIG}", file=sys.stderr)
        return 2
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    with tempfile.TemporaryDirectory() as model_dir:
        (Path(model_dir) / "config.json").write_text(CONFIG.read_text())
        print("running  schedule ms  update ms  per request µs")
        for n in RUNNING:
            schedule_s, update_s = measure(n, model_dir)
            per_request_us = (schedule_s + update_s) / n * 1e6
            print(f"{n:7d}  {schedule_s * 1e3:11.2f}  {update_s * 1e3:9.2f}  {per_request_us:14.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
