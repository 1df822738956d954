"""The engine comparison names the schedulers where they differ: at the same pure decode step, SGLang's
prefill-only steps lengthen its TPOT (SGLang `Scheduler.get_next_batch_to_run`), which the 'why' had put
on a request-step overhead that favours SGLang. Qwen3-235B-A22B on 1x8xH100: identical decode_step_ms and
prefill_ms for vLLM and SGLang, TPOT 37.4 vs 51.2 ms."""

from __future__ import annotations

import autoparallel as ap
from autoparallel.engine_compare import why


def _plans(*engines: str) -> dict[str, ap.ServingPlan]:
    """Qwen3-8B on one H100, planned for each of `engines` alone."""
    return {
        e: ap.solve(
            "Qwen/Qwen3-8B",
            "1xH100",
            settings=ap.SolverSettings(time_limit_s=30),
            options=ap.ServingOptions(engines=(e,)),
        )
        for e in engines
    }


def test_the_why_names_the_schedulers() -> None:
    plans = _plans("vllm", "sglang")
    text = why(plans["vllm"], plans["sglang"])
    assert "schedulers: SGLang runs each prefill batch as a step of its own" in text
    assert "vLLM mixes prompt chunks into the decode steps" in text
    same = why(plans["vllm"], plans["vllm"])
    assert "schedulers" not in same


def test_vllm_and_trtllm_differ_by_their_factors_not_their_schedulers() -> None:
    """Both run prompt work inside the decodes' steps: the why names the efficiency factors alone."""
    plans = _plans("vllm", "trtllm")
    text = why(plans["trtllm"], plans["vllm"])
    assert "schedulers" not in text and "efficiency factors" in text
