"""The throughput / latency trade-off of Qwen3-30B-A3B on 8×H100.

uv run python examples/pareto_front.py
"""

import autoparallel as ap

front = ap.pareto("Qwen/Qwen3-30B-A3B", "1x8xH100", objectives=("throughput", "tpot"), workload="chatbot")
for plan in front:
    c, p = plan.config, plan.perf
    print(
        f"tp={c.tp} pp={c.pp} x{c.replicas} max_num_seqs={c.max_num_seqs:4d}  "
        f"{p['output_tokens_per_s']:9.0f} tok/s  TPOT {p['tpot_ms']:6.1f} ms"
    )
