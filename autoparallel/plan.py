"""Plans: a decided configuration with its numbers, provenance and deployment artifacts.

The plan is the intermediate form between the solvers and the emitters: it holds what the solver
decided (config, binding constraints, runner-up, solver statistics) and what the float cost model
says about it (memory, performance). Artifacts (`vllm serve` line, ds_config, Megatron arguments)
are computed from it on demand by `autoparallel.frameworks`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from autoparallel.configs import ServingConfig, TrainingConfig, config_dict
from autoparallel.errors import InputError
from autoparallel.frameworks import deepspeed, megatron, sglang, trtllm, vllm
from autoparallel.frameworks._common import precision_note
from autoparallel.frameworks._megatron_model import position_table_note
from autoparallel.hardware import Cluster
from autoparallel.memo import drop_cached_properties
from autoparallel.memory.serving import VllmMemoryReport
from autoparallel.memory.training import TrainingMemoryReport
from autoparallel.models import ModelSpec
from autoparallel.models.loader import NO_MODEL_ID
from autoparallel.perf.engine_support import ENGINE_NAMES, unverified_architecture_note
from autoparallel.perf.serving import OfferedLoad, ServingPerf
from autoparallel.perf.serving_engines import EngineEvaluation
from autoparallel.perf.serving_load import BenchmarkRun
from autoparallel.perf.training import TrainingCost, TrainingPerf, training_perf_dict
from autoparallel.validation import TrainingFramework
from autoparallel.workload import Serving, Training

ROUNDED_DOWN = ("capacity_rps", "load_rps", "served_rps")
"""JSON keys whose floats `round_floats` rounds down, not to nearest: a capacity is the most a plan
carries within its limits, and fed back as a request rate a capacity rounded up broke them (a
deployment engine's TTFT 0.03-0.08 ms over its limit); the loads and the served rate it bounds go
down with it, so that none reads above it (a prefill engine at full load showed capacity 3.8251 and
load 3.82511)."""


def round_floats(value: Any, digits: int = 4, significant: int = 6, *, down: bool = False) -> Any:
    """`value` with each float rounded to `digits` decimals or `significant` significant digits,
    whichever keeps more (1e-9 stays 1e-9, 12418.34567 stays 12418.3457); ints stay ints; the floats
    under a key of `ROUNDED_DOWN` (`down`) rounded down at that precision."""
    if isinstance(value, float):
        if not math.isfinite(value) or value == 0:
            return value
        places = max(digits, significant - 1 - math.floor(math.log10(abs(value))))
        near = round(value, places)
        return round(near - 10.0**-places, places) if down and near > value else near
    if isinstance(value, dict):
        return {
            k: round_floats(v, digits, significant, down=down or k in ROUNDED_DOWN) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [round_floats(v, digits, significant, down=down) for v in value]
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose cached properties are computed afresh (`memo.drop_cached_properties`)."""
        copy = super().model_copy(update=update, deep=deep)
        drop_cached_properties(copy)
        return copy


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
    rank: int | None = None
    """`solve_top`: the plan's place in the list when not first (2, 3, ...): its status is its own
    solve's, the optimum once each shape ranked above is excluded by a no-good cut."""
    top_cut: bool | None = None
    """`solve_top`: True on every plan of a list the time limit cut short (fewer than `top` plans
    found before it, more shapes may fit); unset when the list is complete or every shape that fits
    is in it."""

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
    engine: str | None = None
    """Serving: its engine."""
    perf: ServingPerf | None = None
    """Serving: its predicted speed."""
    step_time_s: float | None = None
    """Training: its step time."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: config (`config_dict`), why_lost, and perf (serving) or step_time_s (training)."""
        out: dict[str, Any] = {"config": config_dict(self.config, self.engine), "why_lost": self.why_lost}
        if self.engine is not None:
            out["engine"] = self.engine
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
        """The model id or path the launch commands load (`models.loader.NO_MODEL_ID` for a model given
        as an in-memory config that names no checkpoint)."""
        return self.model_id or self.model.source or self.model.name

    @property
    def launch_notes(self) -> tuple[str, ...]:
        """What the user must know before running the launch lines, shown beside even a one-line launch:
        the checkpoint of a model given as a config alone, and an architecture no family or zoo card
        of ours knows (`engine_support.unverified_architecture_note`)."""
        notes: list[str] = []
        if self.served_id == NO_MODEL_ID:
            notes.append(
                f"the model was given as a config without `_name_or_path`, so no checkpoint is known: "
                f"replace {NO_MODEL_ID} in the launch lines with its folder or hub id (its model_type "
                f"{self.model.model_type!r} would load another model)"
            )
        if (arch := unverified_architecture_note(self.model)) is not None:
            notes.append(arch)
        return tuple(notes)

    def _common(self) -> dict[str, Any]:
        return {
            "solver": self.solver.to_dict(),
            "binding": list(self.binding),
            "runner_up": self.runner_up.to_dict() if self.runner_up else None,
        }


class ServingPlan(_PlanBase):
    """A serving deployment (vLLM, SGLang or TensorRT-LLM) with its memory, speed, reasons and launch
    commands."""

    workload: Serving
    """The request shape planned for."""
    config: ServingConfig
    """The decided configuration."""
    memory: VllmMemoryReport
    """Per-GPU memory from the float model: vLLM's accounting on the tightest GPU (for SGLang and
    TensorRT-LLM the weights, activations and non-torch memory of the same tensors; their KV pool is
    `engine_eval.memory`)."""
    perf: ServingPerf
    """Predicted speed from the float model: TTFT, TPOT, tokens/s and $."""
    benchmark: BenchmarkRun | None = None
    """A finite benchmark of N prompts at once (`batch` workloads): what `vllm bench serve` measures."""
    at_request_rate: OfferedLoad | None = None
    """The steady state at the workload's arrival rate (`perf` is full load, where limits are checked)."""
    engine: str = "vllm"
    """The serving engine that runs the plan: vllm, sglang or trtllm."""
    engine_eval: EngineEvaluation | None = None
    """SGLang / TensorRT-LLM: the engine's own evaluation (KV pool under its memory rule, resolved
    `--mem-fraction-static`)."""
    engines: tuple[EngineBest, ...] = ()
    """`--engine auto`: the best plan of each engine, in the order vllm, sglang, trtllm."""

    @property
    def kv_cache_tokens(self) -> int:
        """Tokens the KV cache of one replica holds, under the plan's engine's memory rule."""
        return self.engine_eval.memory.kv_cache_tokens if self.engine_eval else self.memory.kv_cache_tokens

    @property
    def memory_rule(self) -> str:
        """The engine setting that sizes the KV cache, with its value."""
        if self.engine_eval is not None:
            return self.engine_eval.memory.rule
        return f"--gpu-memory-utilization {self.config.gpu_memory_utilization:g}"

    @cached_property
    def sglang_launch(self) -> sglang.SglangLaunch:
        """SGLang's servers for this plan, their per-node lines and notes (frameworks/sglang.py)."""
        launch = sglang.sglang_launch(
            self.served_id,
            self.config,
            self.cluster.gpus_per_node,
            mem_fraction_static=self._fraction,
            nsa_backends=self._nsa_backends,
            model=self.model,
            gpu=self.cluster.gpu,
        )
        return dataclasses.replace(launch, notes=(*self.launch_notes, *launch.notes))

    @property
    def command(self) -> str:
        """The engine's launch line (`vllm serve`, `python -m sglang.launch_server`, `trtllm-serve`;
        node 0's line when the server spans nodes)."""
        if self.engine == "sglang":
            return self.sglang_launch.lines[0]
        if self.engine == "trtllm":
            return self.trtllm_launch.line
        return vllm.vllm_command(self.served_id, self.config, cluster=self.cluster, model=self.model)

    @cached_property
    def trtllm_launch(self) -> trtllm.TrtllmLaunch:
        """TensorRT-LLM's engines for this plan, their line and notes (frameworks/trtllm.py)."""
        launch = trtllm.trtllm_launch(
            self.served_id, self.config, self.cluster.gpus_per_node, gpu=self.cluster.gpu
        )
        return dataclasses.replace(launch, notes=(*self.launch_notes, *launch.notes))

    @property
    def _nsa_backends(self) -> tuple[str | None, str | None]:
        """SGLang's DeepSeek Sparse Attention kernels the pool was priced with, as passed (the planner
        leaves them to SGLang: (None, None))."""
        return self.engine_eval.memory.nsa_backends if self.engine_eval is not None else (None, None)

    @property
    def _fraction(self) -> float:
        ev = self.engine_eval
        return ev.mem_fraction_static if ev is not None and ev.mem_fraction_static is not None else 0.0

    def engine_artifacts(self) -> dict[str, Any]:
        """The launch artifacts of an SGLang or TensorRT-LLM plan (vLLM's are `vllm_*`)."""
        if self.engine == "sglang":
            launch = self.sglang_launch
            return {
                "command": launch.lines[0],
                "node_commands": list(launch.lines),
                "servers": launch.servers,
                "args": sglang.sglang_args(
                    self.served_id,
                    launch.server,
                    mem_fraction_static=self._fraction,
                    nsa_backends=self._nsa_backends,
                    model=self.model,
                    gpu=self.cluster.gpu,
                ),
                "notes": list(launch.notes),
            }
        return {
            "command": self.command,
            "extra_options_file": trtllm.EXTRA_OPTIONS_FILE,
            "extra_options_yaml": trtllm.trtllm_yaml(self.config, model=self.model),
            "options": trtllm.trtllm_options(self.config, model=self.model),
            "notes": self.engine_notes,
        }

    @property
    def engine_notes(self) -> list[str]:
        """How to run the engine's line for this plan."""
        if self.engine == "sglang":
            return list(self.sglang_launch.notes)
        if self.engine == "trtllm":
            return list(self.trtllm_launch.notes)
        return list(self.launch_notes)

    def _require_vllm(self, name: str) -> None:
        """InputError unless the plan runs on vLLM: `name`, a vLLM artifact, would launch a
        deployment that was never priced (another engine's pool, batch cap and speed)."""
        if self.engine != "vllm":
            raise InputError(
                f"this plan runs on {ENGINE_NAMES[self.engine]} (engine={self.engine!r}): its "
                f"{name} would start a vLLM deployment that was not planned; use .command, "
                ".engine_artifacts() and .engine_notes for its own launch"
            )

    @property
    def vllm_args(self) -> dict[str, object]:
        """Engine arguments with vLLM's names.

        Raises:
            InputError: the plan runs on another engine (`command`, `engine_artifacts`)."""
        self._require_vllm("vllm_args")
        return vllm.vllm_args(self.served_id, self.config, cluster=self.cluster, model=self.model)

    @property
    def vllm_command(self) -> str:
        """The `vllm serve` line (node 0's line for multi-node plans).

        Raises:
            InputError: the plan runs on another engine (`command`, `engine_artifacts`)."""
        self._require_vllm("vllm_command")
        return self.command

    @property
    def vllm_yaml(self) -> str:
        """A file for `vllm serve --config`.

        Raises:
            InputError: the plan runs on another engine (`command`, `engine_artifacts`)."""
        self._require_vllm("vllm_yaml")
        return vllm.vllm_yaml(self.served_id, self.config, cluster=self.cluster, model=self.model)

    @cached_property
    def vllm_launch(self) -> vllm.VllmLaunch:
        """Per-node launch lines, environment and notes.

        Raises:
            InputError: the plan runs on another engine (`command`, `engine_artifacts`)."""
        self._require_vllm("vllm_launch")
        launch = vllm.vllm_launch(self.served_id, self.config, cluster=self.cluster, model=self.model)
        return launch.model_copy(update={"notes": (*self.launch_notes, *launch.notes)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: engine, config, memory, perf, the engine's artifacts (vllm {command, args, yaml,
        launch}, sglang {command, args} or trtllm {command, extra_options_yaml, options}), solver,
        reasons; with several engines compared, comparison.engines."""
        # the other engines' pool knobs mean nothing here (`config_dict`)
        config = {**config_dict(self.config, self.engine), "gpus": self.config.gpus}
        memory = self.memory.to_dict()
        if self.engine_eval is not None:  # vLLM's KV accounting does not apply
            memory = {**self.engine_eval.memory.model_dump(mode="json"), "vllm_accounting": memory}
            if self.engine_eval.mem_fraction_static is not None:
                memory["mem_fraction_static"] = self.engine_eval.mem_fraction_static
        out: dict[str, Any] = {
            "model": self.served_id,
            "cluster": self.cluster.spec,
            "workload": self.workload.model_dump(),
            "objective": self.objective,
            "engine": self.engine,
            "fits": self.fits,
            "problems": list(self.problems),
            "config": config,
            "memory": memory,
            "perf": {
                **self.perf.model_dump(mode="json"),
                **({"benchmark": self.benchmark.model_dump(mode="json")} if self.benchmark else {}),
                **(
                    {"at_request_rate": self.at_request_rate.model_dump(mode="json")}
                    if self.at_request_rate
                    else {}
                ),
            },
        }
        if self.engine == "vllm":
            launch = self.vllm_launch
            out["vllm"] = {
                "command": self.vllm_command,
                "args": self.vllm_args,
                "yaml": self.vllm_yaml,
                "launch": {
                    "commands": [list(c) for c in launch.commands],
                    "env": launch.env,
                    "notes": list(launch.notes),
                },
            }
        else:
            out[self.engine] = self.engine_artifacts()
        if self.engines:
            from autoparallel.engine_compare import comparison_dict

            out["comparison"] = comparison_dict(self)
        return round_floats({**out, **self._common()})

    def explain(self) -> str:
        """A readable report: configuration, memory breakdown, speed, reasons, command."""
        from autoparallel.explain import explain_serving

        return explain_serving(self)


class EngineBest(_Frozen):
    """One engine's best plan in an `--engine auto` comparison."""

    engine: str
    """vllm, sglang or trtllm."""
    plan: ServingPlan | None
    """Its best plan under the same request (None: none is admissible)."""
    note: str = ""
    """Why there is none."""

    @property
    def name(self) -> str:
        """The engine's display name."""
        return ENGINE_NAMES[self.engine]


ServingPlan.model_rebuild()


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
    framework: TrainingFramework = "megatron"
    """The framework the plan keeps to (`TrainingOptions.framework`). The other framework's artifact is
    emitted where that framework can express the layout; where it cannot (DeepSpeed and ring-attention
    context parallelism, a Megatron ZeRO mode DeepSpeed lacks), reading it raises InputError saying why."""

    @property
    def deepspeed_config(self) -> dict[str, object]:
        """The `ds_config` dict.

        Raises:
            InputError: DeepSpeed cannot express the layout (a Megatron plan's ring cp, its `dist`)."""
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
    def deepspeed_notes(self) -> list[str]:
        """What the training script must build beside the ds_config (groups, experts, FP8 layers);
        none when DeepSpeed cannot express the plan (the ds_config's refusal says why)."""
        if not self._expressible(lambda: self.deepspeed_config):
            return []
        notes = deepspeed.deepspeed_notes(self.model, self.config, cluster=self.cluster)
        return [*notes, *self._precision_notes()]

    @property
    def megatron_notes(self) -> list[str]:
        """Where the Megatron arguments only approximate the plan, or what the user must add; none when
        Megatron cannot express it."""
        if not self._expressible(lambda: self.megatron_args):
            return []
        table = position_table_note(self.model, self.config.seq_len)  # a learned table the run outgrows
        return [
            *megatron.megatron_notes(self.model, self.config),
            *([table] if table else []),
            *self._precision_notes(),
        ]

    def _precision_notes(self) -> list[str]:
        """The precision the job asked for, where the GPUs run another (`_common.precision_note`)."""
        note = precision_note(self.workload.precision, self.config.precision, self.cluster)
        return [] if note is None else [note]

    @property
    def torchrun_command(self) -> str:
        """The `torchrun ... pretrain_gpt.py ARGS` line (one line for every node)."""
        return megatron.torchrun_command(self.model, self.config, cluster=self.cluster)

    @staticmethod
    def _expressible(build: Any) -> bool:
        """Whether the framework's emitter accepts the plan (`_artifact` says why not)."""
        try:
            build()
        except ValueError:
            return False
        return True

    def _artifact(self, build: Any) -> Any:
        try:
            return build()
        except ValueError as exc:  # e.g. DeepSpeed cannot express this layout (ZeRO-2/3 with pp > 1)
            return {"unavailable": str(exc)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: config, memory, perf, deepspeed {config, command}, megatron {args, command}."""
        return round_floats(
            {
                "model": self.served_id,
                "cluster": self.cluster.spec,
                "workload": self.workload.model_dump(),
                "objective": self.objective,
                "framework": self.framework,
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
                    "notes": self.deepspeed_notes,
                },
                "megatron": {
                    "args": self._artifact(lambda: self.megatron_args),
                    "command": self._artifact(lambda: self.torchrun_command),
                    "notes": self.megatron_notes,
                },
                **self._common(),
            }
        )

    def explain(self) -> str:
        """A readable report: layout, per-stage memory, step time and MFU, reasons, artifacts."""
        from autoparallel.explain import explain_training

        return explain_training(self)
