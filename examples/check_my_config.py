"""Is the configuration I run today any good? Memory, speed, and the distance to the optimum.

uv run python examples/check_my_config.py
"""

import autoparallel as ap


def distance_to_best(ev: ap.ServingPlan) -> str | None:
    """How far an evaluated configuration is from the planner's best plan, in `explain()`'s words
    (None: no optimum to compare with). A configuration that misses the workload's SLOs has a gap of
    1 (it serves none of it): that is "short of the workload", not "100% below"."""
    solver = ev.solver
    if solver.optimum is None or solver.gap_to_optimum is None:
        return None
    gap, best = solver.gap_to_optimum, solver.optimum["command"]
    if gap >= 1.0 - 5e-4:
        problems = "; ".join(ev.problems) or "it misses the workload's SLOs"
        return f"This configuration is short of the workload ({problems}), which the best plan serves: {best}"
    if gap > 5e-4:
        return f"This configuration is {100 * gap:.1f}% below the best plan: {best}"
    if gap < -5e-4:
        return f"This configuration is {-100 * gap:.1f}% above the planner's optimum (off its grid): {best}"
    return f"This configuration is at the best plan: {best}"


mine = ap.ServingConfig(tp=8, max_num_seqs=256, max_model_len=8192)
ev = ap.evaluate("meta-llama/Llama-3.1-70B-Instruct", "1x8xH100", mine, workload="chatbot")
print(ev.explain())
if (distance := distance_to_best(ev)) is not None:
    print(f"\n{distance}")

# The same configuration on SGLang: its pool, speed and launch line, against SGLang's best plan.
on_sglang = ap.evaluate("meta-llama/Llama-3.1-70B-Instruct", "1x8xH100", mine, "chatbot", engine="sglang")
print(f"\n{on_sglang.command}\n{on_sglang.perf.output_tokens_per_s:,.0f} output tokens/s")
if (distance := distance_to_best(on_sglang)) is not None:
    print(distance)

# Memory only, as vLLM accounts it at start-up:
report = ap.vllm_memory("meta-llama/Llama-3.1-70B-Instruct", "H100", tp=4, max_model_len=32768)
print(report.to_dict())
