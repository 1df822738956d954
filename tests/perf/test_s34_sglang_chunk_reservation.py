"""SGLang's default --mem-fraction-static reserves 1.5 MiB per chunked-prefill token: a 65,536-token
chunk on an 80 GB GPU leaves a negative fraction, which the problem blamed on the weights."""

from __future__ import annotations

import autoparallel as ap


def test_a_huge_chunk_is_named_as_what_leaves_no_pool() -> None:
    config = ap.ServingConfig(tp=1, max_num_seqs=64, max_num_batched_tokens=65536)
    plan = ap.evaluate("Qwen/Qwen3-8B", "1x1xH100", config, engine="sglang")
    assert not plan.fits
    (problem,) = [p for p in plan.problems if "mem-fraction-static" in p]
    assert "65,536-token chunked prefill" in problem and "--max-num-batched-tokens" in problem
    smaller = config.model_copy(update={"max_num_batched_tokens": 8192})
    assert ap.evaluate("Qwen/Qwen3-8B", "1x1xH100", smaller, engine="sglang").fits
