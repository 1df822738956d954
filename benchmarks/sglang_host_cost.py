"""SGLang's scheduler host time per running request and decode step, measured with SGLang's own code.

    SGLANG_CHECK_PYTHON=/path/to/sglang-env/bin/python uv run python benchmarks/sglang_host_cost.py

Runs in the SGLang checker's environment (SGLang 0.5.6 on a CPU, the one `SGLANG_CHECK_PYTHON` names for
`tests/frameworks/check_sglang_args.py`; the scheduler's modules also need `msgspec` there). The
compiled-kernel packages SGLang imports at module level (`sgl_kernel`, ...) are stood in for by empty
modules: nothing here calls a kernel.

Times SGLang's `process_batch_result_decode` (the scheduler's pass over a decode step's sampled tokens:
append, finish check) with its `stream_output_generation` (the batch of token ids it sends to the
detokenizer every step), over N streaming requests of a 219-token prompt, one token each per step,
none finishing. `serving_efficiency.SGLANG_SCHEDULER_S_PER_REQUEST` quotes it.

A lower bound of SGLang's per-request host work: the next batch's preparation (`prepare_for_decode`,
mostly tensor operations) and the pickling of the message to the detokenizer are not in it; the
detokenizer and the tokenizer manager run in their own processes, pipelined with the scheduler.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root
from benchmarks.checker_env import rerun_in_checker

RUNNING = (64, 256, 1024)
STEPS = 40
KERNEL_PACKAGES = {"sgl_kernel", "compressed_tensors", "gguf", "aiter", "vllm", "flashinfer", "deep_gemm"}
"""Compiled-kernel packages (or their optional helpers) SGLang's scheduler modules import at module level."""


class _Stub(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return MagicMock(name=f"{self.__name__}.{name}")


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name.split(".")[0] in KERNEL_PACKAGES:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _Stub(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class _Detokenizer:
    """Stands in for the ZMQ socket to the detokenizer; keeps the last message."""

    def __init__(self) -> None:
        self.sent: Any = None

    def send_output(self, output: Any, *args: Any, **kwargs: Any) -> None:
        self.sent = output


def measure(running: int) -> float:
    """Seconds of `process_batch_result_decode` per all-decode step at `running` streaming requests."""
    import torch
    from sglang.srt.disaggregation.utils import DisaggregationMode
    from sglang.srt.managers.schedule_batch import Req
    from sglang.srt.managers.scheduler_output_processor_mixin import SchedulerOutputProcessorMixin
    from sglang.srt.sampling.sampling_params import SamplingParams

    class Scheduler(SchedulerOutputProcessorMixin):
        """The attributes the decode-result pass reads, at a plain server's values."""

        is_generation = True
        enable_overlap = True
        num_generated_tokens = 0
        forward_ct_decode = 0
        stream_interval = 1
        attn_tp_rank = 0
        disaggregation_mode = DisaggregationMode.NULL

        def current_scheduler_metrics_enabled(self) -> bool:
            return False

    scheduler = Scheduler()
    scheduler.token_to_kv_pool_allocator = types.SimpleNamespace(  # type: ignore[attr-defined]
        free_group_begin=lambda: None, free_group_end=lambda: None
    )
    scheduler.server_args = types.SimpleNamespace(  # type: ignore[attr-defined]
        disaggregation_decode_enable_offload_kvcache=False, decode_log_interval=40
    )
    scheduler.model_config = types.SimpleNamespace(is_multimodal_gen=False, vocab_size=32000)  # type: ignore[attr-defined]
    scheduler.spec_algorithm = types.SimpleNamespace(is_none=lambda: True)  # type: ignore[attr-defined]
    detokenizer = _Detokenizer()
    scheduler.send_to_detokenizer = detokenizer  # type: ignore[attr-defined]
    reqs = []
    for i in range(running):
        params = SamplingParams(max_new_tokens=1000, temperature=0)
        params.normalize(None)
        reqs.append(
            Req(f"r{i}", "", list(range(1, 220)), params, stream=True, eos_token_ids={2}, vocab_size=32000)
        )
    batch = types.SimpleNamespace(
        reqs=reqs,
        spec_algorithm=scheduler.spec_algorithm,  # type: ignore[attr-defined]
        return_logprob=False,
        is_v2_eagle=False,
        batch_size=lambda: running,
    )
    times = []
    for step in range(STEPS):
        result = types.SimpleNamespace(
            copy_done=None,
            logits_output=None,
            next_token_ids=torch.full((running,), 7 + step % 50, dtype=torch.int64),
            can_run_cuda_graph=True,
        )
        start = time.perf_counter()
        scheduler.process_batch_result_decode(batch, result)  # type: ignore[arg-type]
        times.append(time.perf_counter() - start)
        if len(detokenizer.sent.rids) != running:
            raise RuntimeError(f"step {step} streamed {len(detokenizer.sent.rids)} of {running} requests")
    return statistics.median(times[5:])


def main() -> int:
    rerun = rerun_in_checker("sglang", "SGLANG_CHECK_PYTHON", __file__)
    if rerun is not None:
        return rerun
    sys.meta_path.insert(0, _StubFinder())
    import torch

    torch.library.register_fake = lambda *a, **k: lambda f: f  # type: ignore[assignment]
    try:
        import msgspec  # noqa: F401
    except ImportError:
        print(
            "SGLang's scheduler modules need msgspec in that environment (pip install msgspec)",
            file=sys.stderr,
        )
        return 2
    print("running  step ms  per request µs")
    for n in RUNNING:
        step_s = measure(n)
        print(f"{n:7d}  {step_s * 1e3:7.2f}  {step_s / n * 1e6:14.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
