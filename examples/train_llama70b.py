"""Plan pre-training of Llama-3.1-70B on 64 H100s and print the DeepSpeed and Megatron artifacts.

uv run python examples/train_llama70b.py
"""

import json

import autoparallel as ap

plan = ap.solve("meta-llama/Llama-3.1-70B", "8x8xH100", workload=ap.Training(seq_len=8192, global_batch=512))
print(plan.explain())
print(json.dumps(plan.deepspeed_config, indent=2))
print(" ".join(plan.megatron_args))
