"""Plans: a decided configuration with its numbers, provenance and deployment artifacts.

The plan is the intermediate form between the solvers and the emitters: it holds what the solver
decided (config, binding constraints, runner-up, solver statistics) and what the float cost model
says about it (memory, performance). Artifacts (`vllm serve` line, ds_config, Megatron arguments)
are computed from it on demand by `autoparallel.frameworks`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import ServingConfig, TrainingConfig
from autoparallel.frameworks import deepspeed, megatron, vllm
from autoparallel.hardware import Cluster
from autoparallel.models import ModelSpec
from autoparallel.workload import Serving, Training

_GIB = 2**30


def _round(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v, digits) for v in value]
    return value


class _PlanBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    model: ModelSpec
    """The model planned for."""
    model_id: str = ""
    """The id the engine loads (the zoo id or alias the user named, or a local path); "" = model.name."""
    cluster: Cluster
    """The cluster planned on."""
    objective: str
    """What was optimized."""
    solver: dict[str, Any]
    """Solver statistics: status (OPTIMAL / FEASIBLE / EVALUATED), wall_s, objective, bound, gap,
    seed, workers."""
    binding: tuple[str, ...] = ()
    """Constraints that are tight at the optimum (what stops a better plan)."""
    runner_up: dict[str, Any] | None = None
    """The best plan of another shape and why it lost."""
    memory: dict[str, Any]
    """Per-GPU memory from the float model: serving, vLLM's accounting on the tightest GPU;
    training, peak_gib, usable_gib and the stages."""
    perf: dict[str, Any]
    """Predicted speed from the float model: serving, TTFT, TPOT, tokens/s and $; training, step
    time, tokens/s, TFLOP/s per GPU, MFU, HFU and the communication breakdown."""
    fits: bool = True
    """The configuration starts (serving) or every stage fits in memory (training)."""
    problems: tuple[str, ...] = ()
    """Why it cannot start, does not fit or misses a service-level limit."""

    @property
    def served_id(self) -> str:
        """The model id or path the launch commands load."""
        return self.model_id or self.model.name


class ServingPlan(_PlanBase):
    """A vLLM deployment with its memory, speed, reasons and launch commands."""

    workload: Serving
    """The request shape planned for."""
    config: ServingConfig
    """The decided configuration."""

    @property
    def vllm_args(self) -> dict[str, object]:
        """Engine arguments with vLLM's names."""
        return vllm.vllm_args(self.served_id, self.config, cluster=self.cluster, model=self.model)

    @property
    def vllm_command(self) -> str:
        """The `vllm serve` line (node 0's line for multi-node plans)."""
        return vllm.vllm_command(self.served_id, self.config, cluster=self.cluster, model=self.model)

    @property
    def vllm_yaml(self) -> str:
        """A file for `vllm serve --config`."""
        return vllm.vllm_yaml(self.served_id, self.config, cluster=self.cluster, model=self.model)

    @cached_property
    def vllm_launch(self) -> vllm.VllmLaunch:
        """Per-node launch lines and environment."""
        return vllm.vllm_launch(self.served_id, self.config, cluster=self.cluster, model=self.model)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: config, memory, perf, vllm {command, args, yaml, launch}, solver, reasons."""
        launch = self.vllm_launch
        return _round(
            {
                "model": self.served_id,
                "cluster": self.cluster.spec,
                "workload": self.workload.model_dump(),
                "objective": self.objective,
                "fits": self.fits,
                "problems": list(self.problems),
                "config": {**self.config.model_dump(), "gpus": self.config.gpus},
                "memory": self.memory,
                "perf": self.perf,
                "vllm": {
                    "command": self.vllm_command,
                    "args": self.vllm_args,
                    "yaml": self.vllm_yaml,
                    "launch": {
                        "commands": [list(c) for c in launch.commands],
                        "env": launch.env,
                        "notes": list(launch.notes),
                    },
                },
                "solver": self.solver,
                "binding": list(self.binding),
                "runner_up": self.runner_up,
            }
        )

    def explain(self) -> str:
        """A readable report: configuration, memory breakdown, speed, reasons, command."""
        from autoparallel.explain import explain_serving

        return explain_serving(self)


class TrainingPlan(_PlanBase):
    """A training layout with per-stage memory, step time, MFU and DeepSpeed / Megatron artifacts."""

    workload: Training
    """The job planned for."""
    config: TrainingConfig
    """The decided configuration."""

    @property
    def deepspeed_config(self) -> dict[str, object]:
        """The `ds_config` dict."""
        return deepspeed.deepspeed_config(self.model, self.config, cluster=self.cluster)

    @property
    def deepspeed_command(self) -> str:
        """The `deepspeed` launcher line."""
        return deepspeed.deepspeed_command(self.model, self.config, cluster=self.cluster)

    @property
    def megatron_args(self) -> list[str]:
        """Megatron-LM / Megatron-Core command-line arguments."""
        return megatron.megatron_args(self.model, self.config, cluster=self.cluster)

    @property
    def torchrun_command(self) -> str:
        """The `torchrun ... pretrain_gpt.py ARGS` line (one line for every node)."""
        return megatron.torchrun_command(self.model, self.config, cluster=self.cluster)

    def _artifact(self, build: Any) -> Any:
        try:
            return build()
        except ValueError as exc:  # e.g. DeepSpeed cannot express this layout (ZeRO-2/3 with pp > 1)
            return {"unavailable": str(exc)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: config, memory, perf, deepspeed {config, command}, megatron {args, command}."""
        return _round(
            {
                "model": self.served_id,
                "cluster": self.cluster.spec,
                "workload": self.workload.model_dump(),
                "objective": self.objective,
                "fits": self.fits,
                "problems": list(self.problems),
                "config": {
                    **self.config.model_dump(mode="json"),
                    "grad_accum": self.config.grad_accum,
                    "world_size": self.config.world_size,
                    "layers_per_stage": list(self.config.stage_layers(self.model.num_layers)),
                },
                "memory": self.memory,
                "perf": self.perf,
                "deepspeed": {
                    "config": self._artifact(lambda: self.deepspeed_config),
                    "command": self._artifact(lambda: self.deepspeed_command),
                },
                "megatron": {
                    "args": self._artifact(lambda: self.megatron_args),
                    "command": self._artifact(lambda: self.torchrun_command),
                    "notes": megatron.megatron_notes(self.model, self.config),
                },
                "solver": self.solver,
                "binding": list(self.binding),
                "runner_up": self.runner_up,
            }
        )

    def explain(self) -> str:
        """A readable report: layout, per-stage memory, step time and MFU, reasons, artifacts."""
        from autoparallel.explain import explain_training

        return explain_training(self)
