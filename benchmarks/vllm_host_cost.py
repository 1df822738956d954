"""vLLM's host time per running request and decode step, measured with vLLM's own code.

    VLLM_CHECK_PYTHON=~/.vllmcheck/bin/python uv run python benchmarks/vllm_host_cost.py

Runs in the vLLM checker's environment (`../shared/tools/README.md`; vLLM 0.32's CPU build). Two
host stages every output token passes, each pure Python, so the figures are this machine's CPU's:

- The engine core's scheduler. Builds vLLM's `VllmConfig` for Qwen3-8B's config.json (no weights,
  no tokenizer), a synthetic KV cache large enough for every request, and vLLM's V1 `Scheduler`;
  admits N requests of a 219-token prompt, runs their prefill, then times 50 all-decode steps of
  `Scheduler.schedule` and `Scheduler.update_from_output` (one sampled token per request, no stop).
  `serving_efficiency.VLLM_SCHEDULER_S_PER_REQUEST` quotes it. It leaves out the model runner's
  input preparation, so it is a lower bound of the engine core's host work.
- The API server's output processing, a separate process from the engine core (so pipelined with
  it, not added to the step). Times vLLM's `OutputProcessor.process_outputs` over N streaming
  (DELTA) requests, one new token each per step, with incremental detokenization by a byte-level BPE
  tokenizer of 32,000 tokens trained here on vLLM's own source files (no tokenizer is fetched), each
  request's collector drained every step; and, per streamed chunk, building vLLM's
  `CompletionStreamResponse` and its JSON line. A lagging stream merges its pending outputs into one
  chunk (`RequestOutputCollector`), so only the first part is paid per token whatever the load;
  HTTP framing is not in either.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root
from benchmarks.checker_env import rerun_in_checker

CONFIG = (
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "model_configs" / "Qwen__Qwen3-8B.json"
)
RUNNING = (64, 256, 1024)
STEPS = 50


def measure_scheduler(running: int, model_dir: str) -> tuple[float, float]:
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


def train_tokenizer(directory: str) -> str:
    """A byte-level BPE tokenizer of 32,000 tokens trained on vLLM's own source files, saved in
    `directory` for `AutoTokenizer` (detokenization then does real incremental decoding)."""
    import vllm
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    files = sorted(str(p) for p in Path(vllm.__file__).parent.rglob("*.py"))[:1500]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=32000,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train(files, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>").save_pretrained(
        directory
    )
    return directory


def measure_output_processor(running: int, tokenizer_dir: str) -> float:
    """Seconds of `OutputProcessor.process_outputs` per all-decode step at `running` streaming requests."""
    import vllm
    from transformers import AutoTokenizer
    from vllm.sampling_params import RequestOutputKind, SamplingParams
    from vllm.v1.engine import EngineCoreOutput, EngineCoreRequest
    from vllm.v1.engine.output_processor import OutputProcessor, RequestOutputCollector
    from vllm.v1.metrics.stats import IterationStats

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = (Path(vllm.__file__).parent / "v1" / "engine" / "output_processor.py").read_text()
    ids = tokenizer(text)["input_ids"]
    processor = OutputProcessor(tokenizer, log_stats=True)
    collectors = []
    for i in range(running):
        params = SamplingParams(max_tokens=1000, output_kind=RequestOutputKind.DELTA)
        request = EngineCoreRequest(
            request_id=f"r{i}",
            prompt_token_ids=ids[:219],
            mm_features=None,
            sampling_params=params,
            pooling_params=None,
            arrival_time=time.time(),
            lora_request=None,
            cache_salt=None,
            data_parallel_rank=None,
            external_req_id=f"r{i}",
        )
        collector = RequestOutputCollector(RequestOutputKind.DELTA, f"r{i}")
        processor.add_request(request, prompt=None, queue=collector)
        collectors.append(collector)
    times = []
    for step in range(STEPS):
        outputs = [
            EngineCoreOutput(request_id=f"r{i}", new_token_ids=[ids[(300 + step + 7 * i) % len(ids)]])
            for i in range(running)
        ]
        start = time.perf_counter()
        processor.process_outputs(
            outputs, engine_core_timestamp=time.monotonic(), iteration_stats=IterationStats()
        )
        times.append(time.perf_counter() - start)
        for collector in collectors:
            collector.get_nowait()
    return sorted(times)[len(times) // 2]


def measure_chunk() -> float:
    """Seconds to build one streamed completion chunk and its `data:` line."""
    from vllm.entrypoints.openai.completion.protocol import (
        CompletionResponseStreamChoice,
        CompletionStreamResponse,
    )

    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        chunk = CompletionStreamResponse(
            id="cmpl-0123456789abcdef",
            object="text_completion",
            created=1700000000,
            model="Qwen/Qwen3-8B",
            choices=[
                CompletionResponseStreamChoice(index=0, text=" token", logprobs=None, finish_reason=None)
            ],
        )
        _ = f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n"
    return (time.perf_counter() - start) / n


def main() -> int:
    rerun = rerun_in_checker("vllm", "VLLM_CHECK_PYTHON", __file__)
    if rerun is not None:
        return rerun
    if not CONFIG.is_file():
        print(f"model config not found: {CONFIG}", file=sys.stderr)
        return 2
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    with tempfile.TemporaryDirectory() as model_dir:
        (Path(model_dir) / "config.json").write_text(CONFIG.read_text())
        print("engine core: the scheduler")
        print("running  schedule ms  update ms  per request µs")
        for n in RUNNING:
            schedule_s, update_s = measure_scheduler(n, model_dir)
            per_request_us = (schedule_s + update_s) / n * 1e6
            print(f"{n:7d}  {schedule_s * 1e3:11.2f}  {update_s * 1e3:9.2f}  {per_request_us:14.1f}")
    with tempfile.TemporaryDirectory() as tokenizer_dir:
        train_tokenizer(tokenizer_dir)
        print("API server: output processing (detokenize, RequestOutput, collector)")
        print("running  step ms  per request µs")
        for n in RUNNING:
            step_s = measure_output_processor(n, tokenizer_dir)
            print(f"{n:7d}  {step_s * 1e3:7.2f}  {step_s / n * 1e6:14.1f}")
    chunk_us = measure_chunk() * 1e6
    print(f"API server: one streamed chunk (CompletionStreamResponse + JSON line) {chunk_us:.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
