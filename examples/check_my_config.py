"""Is the configuration I run today any good? Memory, speed, and the distance to the optimum.

uv run python examples/check_my_config.py
"""

import autoparallel as ap

mine = ap.ServingConfig(tp=8, max_num_seqs=256, max_model_len=8192)
ev = ap.evaluate("meta-llama/Llama-3.1-70B-Instruct", "1x8xH100", mine, workload="chatbot")
print(ev.explain())
if ev.solver.optimum is not None and ev.solver.gap_to_optimum is not None:
    best = ev.solver.optimum["command"]
    print(f"\n{100 * ev.solver.gap_to_optimum:.0f}% below the best plan: {best}")

# The same configuration on SGLang: its pool, speed and launch line, against SGLang's best plan.
on_sglang = ap.evaluate("meta-llama/Llama-3.1-70B-Instruct", "1x8xH100", mine, "chatbot", engine="sglang")
print(on_sglang.command, on_sglang.perf.output_tokens_per_s, on_sglang.solver.gap_to_optimum)

# Memory only, as vLLM accounts it at start-up:
report = ap.vllm_memory("meta-llama/Llama-3.1-70B-Instruct", "H100", tp=4, max_model_len=32768)
print(report.to_dict())
