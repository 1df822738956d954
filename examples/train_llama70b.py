"""Plan pre-training of Llama-3.1-70B on 64 H100s and print the DeepSpeed and Megatron artifacts.

uv run python examples/train_llama70b.py

`grad_reduce_in_bf16` lets the plan use ZeRO 0-3 with gradients reduced in bf16, as DeepSpeed runs them
(Megatron with `--grad-reduce-in-bf16`, which its arguments then carry). Without it the plan here is
`dist` at tp 8, cp 2 with ring attention (p2p), which no ds_config runs (`plan.deepspeed_config` raises
InputError).
"""

import json

import autoparallel as ap

plan = ap.solve(
    "meta-llama/Llama-3.1-70B",
    "8x8xH100",
    workload=ap.Training(seq_len=8192, global_batch=512),
    options=ap.TrainingOptions(grad_reduce_in_bf16=True),
)
print(plan.explain())
print(json.dumps(plan.deepspeed_config, indent=2))
print(" ".join(plan.megatron_args))
