"""A training job given bf16 on GPUs without BF16 tensor cores runs as fp16 (`validation.job_precision`):
the plan's arguments said `--fp16` / `"fp16"` with no word of the swap; both notes now say it."""

from __future__ import annotations

import autoparallel as ap


def test_bf16_on_v100_says_it_runs_as_fp16() -> None:
    plan = ap.solve("meta-llama/Llama-3.2-1B", "8xV100", ap.Training(seq_len=2048, global_batch=64))
    assert plan.config.precision == "fp16" and plan.workload.precision == "bf16"
    for notes in (plan.megatron_notes, plan.deepspeed_notes):
        assert any("precision bf16 runs as fp16" in n for n in notes)
    h100 = ap.solve("meta-llama/Llama-3.2-1B", "8xH100", ap.Training(seq_len=2048, global_batch=64))
    assert not any("runs as" in n for n in h100.megatron_notes)
