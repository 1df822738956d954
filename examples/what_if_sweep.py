"""Batch what-if: which GPUs serve which models, and how fast.

uv run python examples/what_if_sweep.py
"""

import autoparallel as ap
from autoparallel.api import format_sweep

rows = ap.sweep(
    models=["meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen3-30B-A3B"],
    clusters=["1x8xH100", "1x8xA100-80G", "1x4xL40S"],
    workloads=["chatbot", "rag"],
)
print(format_sweep(rows))
