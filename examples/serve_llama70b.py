"""Plan a vLLM deployment of Llama-3.1-70B-Instruct on one 8×H100 node for a chat workload.

uv run python examples/serve_llama70b.py
"""

import autoparallel as ap

plan = ap.solve("meta-llama/Llama-3.1-70B-Instruct", "1x8xH100", workload="chatbot", objective="throughput")
print(plan.explain())
print()
print("YAML for `vllm serve --config plan.yaml`:")
print(plan.vllm_yaml)
