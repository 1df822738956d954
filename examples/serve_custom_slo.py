"""A custom workload with latency limits: long prompts, short answers, TTFT ≤ 1.5 s, TPOT ≤ 30 ms.

uv run python examples/serve_custom_slo.py
"""

import autoparallel as ap

workload = ap.Serving(isl=8192, osl=512, ttft_ms=1500, tpot_ms=30)
try:
    plan = ap.solve("Qwen/Qwen3-32B", "1x8xH100", workload=workload, objective="cost")
except ap.InfeasibleError as exc:  # the message names the conflicting constraints, with numbers
    print(exc)
else:
    print(plan.explain())
