"""autoparallel.frameworks: decided configurations -> ready-to-run artifacts.

Small pure functions, no I/O: vLLM 0.32 engine args / `vllm serve` line / YAML / multi-node launch,
DeepSpeed `ds_config` and launcher line, Megatron-LM arguments and torchrun line.
"""

from autoparallel.frameworks.deepspeed import deepspeed_command, deepspeed_config, deepspeed_notes
from autoparallel.frameworks.megatron import (
    check_megatron_consistency,
    megatron_arg_dict,
    megatron_args,
    megatron_env,
    megatron_notes,
    pipeline_layout,
    torchrun_command,
)
from autoparallel.frameworks.vllm import (
    VLLM_FLAG_DEFAULTS,
    VLLM_TARGET_VERSION,
    VllmLaunch,
    vllm_args,
    vllm_command,
    vllm_launch,
    vllm_yaml,
)

__all__ = [
    "VLLM_FLAG_DEFAULTS",
    "VLLM_TARGET_VERSION",
    "VllmLaunch",
    "check_megatron_consistency",
    "deepspeed_command",
    "deepspeed_config",
    "deepspeed_notes",
    "megatron_arg_dict",
    "megatron_args",
    "megatron_env",
    "megatron_notes",
    "pipeline_layout",
    "torchrun_command",
    "vllm_args",
    "vllm_command",
    "vllm_launch",
    "vllm_yaml",
]
