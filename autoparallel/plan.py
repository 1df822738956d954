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
from autoparallel.memory.serving import VllmMemoryReport
from autoparallel.memory.training import TrainingMemoryReport
from autoparallel.models import ModelSpec
from autoparallel.perf.serving import ServingPerf
from autoparallel.perf.serving_load import BenchmarkRun
from autoparallel.perf.training import TrainingCost, TrainingPerf, training_perf_dict
from autoparallel.workload import Serving, Training


def _round(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v, digits) for v in value]
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class SolverReport(_Frozen):
    """How a plan was decided. JSON (`to_dict`) holds only the fields that apply."""

    status: str
    """OPTIMAL (proven), FEASIBLE (time limit: best found, see gap), EVALUATED (a user's config)."""
    wall_s: float | None = None
    """Wall time of the CP-SAT solves behind the plan, seconds."""
    objective_value: float | None = None
    """The primary objective from the float model, in real units (tokens/s, ms, US$/M tokens, GiB)."""
    objective_scaled: float | None = None
    """The primary objective in the solver's scaled integer units (solvers/units.py)."""
    bound_scaled: float | None = None
    """CP-SAT's bound on the primary objective, same units."""
    gap: float | None = None
    """Relative gap between objective and bound (0 when OPTIMAL)."""
    solves: int | None = None
    """CP-SAT calls (lexicographic levels)."""
    seed: int | None = None
    """CP-SAT random seed."""
    workers: int | None = None
    """CP-SAT workers."""
    time_limit_s: float | None = None
    """Time limit per solve, seconds."""
    optimum: dict[str, Any] | None = None
    """EVALUATED: the planner's optimum for the same request (config and headline numbers)."""
    optimum_error: str | None = None
    """EVALUATED: why no optimum could be computed."""
    gap_to_optimum: float | None = None
    """EVALUATED: relative shortfall of the user's configuration against the optimum."""

    @classmethod
    def of(cls, stats: Any, objective_value: float | None = None) -> SolverReport:
        """From `solvers.settings.SolverStats` (scaled objective and bound named as such)."""
        fields: dict[str, Any] = {
            "status": stats.status,
            "wall_s": stats.wall_s,
            "objective_scaled": stats.objective_value,
            "bound_scaled": stats.bound,
            "gap": stats.gap,
            "solves": stats.solves,
            "seed": stats.seed,
            "workers": stats.workers,
            "time_limit_s": stats.time_limit_s,
        }
        if objective_value is not None:
            fields["objective_value"] = objective_value
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields that were set."""
        return self.model_dump(mode="json", exclude_unset=True)


class RunnerUp(_Frozen):
    """The best plan of another shape, and why it lost (serving and training alike)."""

    config: ServingConfig | TrainingConfig
    """Its configuration."""
    why_lost: str
    """One sentence comparing it with the winner, in numbers."""
    perf: ServingPerf | None = None
    """Serving: its predicted speed."""
    step_time_s: float | None = None
    """Training: its step time."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: config, why_lost, and perf (serving) or step_time_s (training)."""
        out: dict[str, Any] = {"config": self.config.model_dump(mode="json"), "why_lost": self.why_lost}
        if self.perf is not None:
            out["perf"] = self.perf.model_dump(mode="json")
        if self.step_time_s is not None:
            out["step_time_s"] = self.step_time_s
        return out


class _PlanBase(_Frozen):
    model: ModelSpec
    """The model planned for."""
    model_id: str = ""
    """The id the engine loads (the zoo id or alias the user named, or a local path); "" = model.name."""
    cluster: Cluster
    """The cluster planned on."""
    objective: str
    """What was optimized."""
    solver: SolverReport
    """Solver status, time, objective, bound, gap and settings (or the comparison with the optimum)."""
    binding: tuple[str, ...] = ()
    """Constraints that are tight at the optimum (what stops a better plan)."""
    runner_up: RunnerUp | None = None
    """The best plan of another shape and why it lost."""
    fits: bool = True
    """The configuration starts (serving) or every stage fits in memory (training)."""
    problems: tuple[str, ...] = ()
    """Why it cannot start, does not fit or misses a service-level limit."""

    @property
    def served_id(self) -> str:
        """The model id or path the launch commands load."""
        return self.model_id or self.model.name

    def _common(self) -> dict[str, Any]:
        return {
            "solver": self.solver.to_dict(),
            "binding": list(self.binding),
            "runner_up": self.runner_up.to_dict() if self.runner_up else None,
        }


class ServingPlan(_PlanBase):
    """A vLLM deployment with its memory, speed, reasons and launch commands."""

    workload: Serving
    """The request shape planned for."""
    config: ServingConfig
    """The decided configuration."""
    memory: VllmMemoryReport
    """Per-GPU memory from the float model: vLLM's accounting on the tightest GPU."""
    perf: ServingPerf
    """Predicted speed from the float model: TTFT, TPOT, tokens/s and $."""
    benchmark: BenchmarkRun | None = None
    """A finite benchmark of N prompts at once (`batch` workloads): what `vllm bench serve` measures."""

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
                "memory": self.memory.to_dict(),
                "perf": {
                    **self.perf.model_dump(mode="json"),
                    **({"benchmark": self.benchmark.model_dump(mode="json")} if self.benchmark else {}),
                },
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
                **self._common(),
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
    memory: TrainingMemoryReport
    """Per-GPU memory by pipeline stage from the float model, with the usable budget."""
    perf: TrainingPerf
    """Step time, tokens/s, TFLOP/s per GPU, MFU, HFU and the time breakdown (float model)."""
    cost: TrainingCost | None = None
    """Time, GPU-hours and US$ to the workload's token budget (None without `tokens`)."""

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
                "memory": self.memory.model_dump(mode="json"),
                "perf": training_perf_dict(self.perf, self.cost),
                "deepspeed": {
                    "config": self._artifact(lambda: self.deepspeed_config),
                    "command": self._artifact(lambda: self.deepspeed_command),
                },
                "megatron": {
                    "args": self._artifact(lambda: self.megatron_args),
                    "command": self._artifact(lambda: self.torchrun_command),
                    "notes": megatron.megatron_notes(self.model, self.config),
                },
                **self._common(),
            }
        )

    def explain(self) -> str:
        """A readable report: layout, per-stage memory, step time and MFU, reasons, artifacts."""
        from autoparallel.explain import explain_training

        return explain_training(self)
