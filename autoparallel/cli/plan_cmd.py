"""`autoparallel plan | evaluate | pareto | sweep`: the planner on the command line."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from pydantic import ValidationError

from autoparallel import objectives
from autoparallel.bounds import cpu_cores, first_error, input_error
from autoparallel.cli import disagg_cmd, fleet_cmd
from autoparallel.cli._output import bounded, quantization_value, refuse_overwrite, strict_json
from autoparallel.configs import TRAINING_PRECISIONS
from autoparallel.errors import InfeasibleError, InputError, SolverTimeoutError
from autoparallel.perf.sparse_attention import SGLANG_NSA_BACKENDS
from autoparallel.workload import rps_text


def _add_common(p: argparse.ArgumentParser, *, model_optional: bool = False) -> None:
    p.add_argument(
        "model",
        nargs="?" if model_optional else None,
        help="zoo id (see `autoparallel models`), a config.json or a folder holding one",
    )
    p.add_argument(
        "--cluster",
        required=not model_optional,  # plan: a --fleet file's `cluster:` may give it
        help="e.g. 2x8xH100, 8xA100-80G, 16xH200,ib=400, 2x8xH100+4x8xA100-80G; ib= is the network per "
        "GPU in Gbit/s (as NICs are sold), nvlink= the scale-up bandwidth per GPU in GB/s",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _add_serving_workload(p: argparse.ArgumentParser, replay: bool = True) -> None:
    """The serving workload's flags; `replay`: the command replays a finite benchmark (--num-prompts)."""
    p.add_argument(
        "--workload",
        default=None,
        help="serving preset: chatbot, batch, rag, long-context, reasoning, sharegpt (default chatbot)",
    )
    p.add_argument("--workload-file", help="a workload file written by `autoparallel profile`")
    p.add_argument("--isl", type=bounded("isl"), help="input tokens per request")
    p.add_argument("--osl", type=bounded("osl"), help="output tokens per request")
    p.add_argument(
        "--concurrency", type=bounded("concurrency"), help="requests in flight over the deployment"
    )
    p.add_argument("--request-rate", type=bounded("request_rate", integer=False), help="arriving requests/s")
    if not replay:
        _add_slos(p)
        return
    p.add_argument(
        "--num-prompts",
        type=bounded("num_prompts"),
        help="a finite benchmark of this many prompts, replayed as `vllm bench serve` runs it: all at "
        "once, or at --request-rate (Poisson), at most --concurrency in flight",
    )
    p.add_argument(
        "--burstiness",
        type=bounded("burstiness", integer=False),
        help="with --request-rate: the gamma shape of the gaps between arrivals (vllm bench serve's; "
        "default 1, Poisson; below 1 burstier)",
    )
    _add_slos(p)


def _add_slos(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ttft-ms", type=bounded("ttft_ms", integer=False), help="limit on time to first token, ms"
    )
    p.add_argument(
        "--tpot-ms", type=bounded("tpot_ms", integer=False), help="limit on time per output token, ms"
    )


def _add_training_workload(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", action="store_true", help="plan a training job instead of serving")
    p.add_argument("--seq-len", type=bounded("seq_len"), help="training sequence length (tokens)")
    p.add_argument("--global-batch", type=bounded("global_batch"), help="sequences per optimizer step")
    p.add_argument(
        "--tokens", type=bounded("tokens", integer=False), help="training token budget (time, cost)"
    )
    p.add_argument(
        "--precision",
        choices=TRAINING_PRECISIONS,
        default=None,
        help="training precision (default bf16; fp16: Megatron --fp16, DeepSpeed fp16)",
    )


def add_grad_reduce_flag(p: argparse.ArgumentParser) -> None:
    """`--grad-reduce-in-bf16` for the training planners (plan, pareto)."""
    p.add_argument(
        "--grad-reduce-in-bf16",
        action="store_true",
        default=None,
        help="training, Megatron: also plan ZeRO 0-3 (2/3: Megatron-FSDP) with bf16 gradient reduction "
        "(2 bytes per parameter less than Megatron's fp32 gradients, at lower gradient precision)",
    )


def add_world_sizes_flag(p: argparse.ArgumentParser) -> None:
    """`--world-sizes` for the training planners (plan, pareto), read by `training_options`."""
    p.add_argument(
        "--world-sizes",
        default=None,
        help="training: GPU counts the plan may use, e.g. 8,16,64 (default: the whole cluster); with "
        "cost or mfu (--objective, or among pareto's --objectives) it weighs GPUs x step time over them",
    )


def add_plan_parser(sub: Any) -> None:
    """`autoparallel plan MODEL --cluster C [...]`."""
    p = sub.add_parser("plan", help="best serving or training configuration, with deployment files")
    _add_common(p, model_optional=True)
    _add_serving_workload(p)
    _add_training_workload(p)
    add_grad_reduce_flag(p)
    p.set_defaults(func=cmd_plan)
    p.add_argument(
        "--objective",
        choices=objectives.choices(),
        default=None,
        help=objectives.help_text() + ". Default: throughput (a deployment with a --request-rate: goodput). "
        "cost with a request rate is the $/hour that sustains it, planned by the deployment planner. "
        "With --train, mfu and cost (GPUs x step time) rank the step time on the whole cluster unless "
        "--world-sizes allows fewer GPUs",
    )
    add_world_sizes_flag(p)
    fleet_cmd.add_fleet_arguments(p)
    disagg_cmd.add_disagg_arguments(p)
    p.add_argument(
        "--top", type=bounded("top"), default=None, help="show the K best configurations (at most 64)"
    )
    add_engine_argument(p)
    allowed = p.add_argument_group("serving knobs the planner may choose (comma-separated vLLM values)")
    allowed.add_argument("--kv-cache-dtype", default=None, help="allowed KV-cache dtypes, e.g. auto,fp8")
    allowed.add_argument("--quantization", default=None, help="allowed weight quantizations, e.g. none,fp8")
    allowed.add_argument("--gpu-memory-utilization", default=None, help="allowed values, e.g. 0.9,0.92,0.95")
    add_engine_memory_flags(allowed, planned=True)
    allowed.add_argument(
        "--max-model-len", type=bounded("max_model_len"), default=None, help="context to serve"
    )
    p.add_argument(
        "--time-limit",
        type=bounded("time_limit_s", integer=False),
        default=None,
        help="limit on the whole command, s (default 10 per serving engine planned: 30 with --engine "
        "auto): the plan first, then the whole-cluster deployment and the disaggregation comparison in "
        "what it leaves",
    )
    p.add_argument(
        "--workers", type=bounded("workers"), default=None, help="CP-SAT threads (capped at the cores)"
    )
    p.add_argument("--seed", type=bounded("seed"), default=0, help="CP-SAT random seed, 0 to 2^31-1")


SERVING_ENGINES = ("vllm", "sglang", "trtllm", "auto")
TRAINING_ENGINES = ("megatron", "deepspeed")


def add_engine_memory_flags(p: Any, *, planned: bool = False) -> None:
    """`--mem-fraction-static` (SGLang) and `--free-gpu-memory-fraction` (TensorRT-LLM), the engines' own
    KV-pool knobs (`perf.serving_engines.ENGINE_MEMORY_KNOBS`); `planned`: on `plan`, which refuses them
    (`refuse_engine_memory_flags`)."""
    fraction = bounded("gpu_memory_utilization", integer=False)
    planner = " evaluate prices another value; plan takes the default (refused here)." if planned else ""
    p.add_argument(
        "--mem-fraction-static",
        type=fraction,
        default=None,
        help="SGLang: (weights + KV pool) / GPU memory (default: SGLang's own by GPU and layout)." + planner,
    )
    p.add_argument(
        "--free-gpu-memory-fraction",
        type=fraction,
        default=None,
        help="TensorRT-LLM: kv_cache_config.free_gpu_memory_fraction, the KV pool's share of the memory "
        "free after loading (default 0.9)." + planner,
    )


def refuse_engine_memory_flags(args: argparse.Namespace) -> None:
    """`plan` sizes SGLang's and TensorRT-LLM's pools at their defaults: the serving planner's tables
    take no fixed value of their knobs (the solvers' ServingOptions has vLLM's
    gpu_memory_utilizations only), so a given one is refused, not silently dropped; `evaluate` prices it.

    Raises:
        InputError: --mem-fraction-static or --free-gpu-memory-fraction given.
    """
    from autoparallel.perf.engine_support import ENGINE_NAMES
    from autoparallel.perf.serving_engines import ENGINE_MEMORY_KNOBS

    for engine in ("sglang", "trtllm"):
        field, flag, _ = ENGINE_MEMORY_KNOBS[engine]
        if getattr(args, field, None) is not None:
            raise InputError(
                f"{flag}: the planner sizes {ENGINE_NAMES[engine]}'s KV pool at its default (its tables "
                f"take no fixed value); price a plan at {flag} {getattr(args, field):g} with "
                f"`autoparallel evaluate MODEL --engine {engine} ... {flag} {getattr(args, field):g}`"
            )


def refuse_foreign_memory_flags(args: argparse.Namespace) -> None:
    """`evaluate --engine E` with another engine's KV-pool flag (`ENGINE_MEMORY_KNOBS`), which E would
    silently ignore: refused, pointing to E's own.

    Raises:
        InputError: such a flag given.
    """
    from autoparallel.perf.serving_engines import ENGINE_MEMORY_KNOBS, memory_knob_text

    for owner, (field, _, _) in ENGINE_MEMORY_KNOBS.items():
        if owner != args.engine and getattr(args, field, None) is not None:
            raise InputError(memory_knob_text(owner, args.engine, flags=True))


def add_engine_argument(p: argparse.ArgumentParser) -> None:
    """--engine for the planners (plan, pareto): a serving engine, or with --train a framework."""
    p.add_argument(
        "--engine",
        choices=(*SERVING_ENGINES, *TRAINING_ENGINES),
        default=None,
        help="serving engine to plan for (default vllm); auto: all three in the space, compared side by "
        "side. With --train, the framework (default megatron; deepspeed keeps to what DeepSpeed runs: no "
        "ZeRO-3 with MoE layers, even pipeline stages, one recompute mode)",
    )


def check_engine(args: argparse.Namespace) -> None:
    """`--engine` names a serving engine without --train and a training framework with it."""
    engine, train = getattr(args, "engine", None), bool(getattr(args, "train", False))
    if engine is None:
        return
    if train and engine not in TRAINING_ENGINES:
        raise InputError(
            f"--engine {engine} is a serving engine; a training job (--train) takes --engine megatron or "
            "deepspeed"
        )
    if not train and engine in TRAINING_ENGINES:
        raise InputError(f"--engine {engine} is a training framework: add --train, or name a serving engine")


def training_options(args: argparse.Namespace) -> Any:
    """TrainingOptions for `--engine deepspeed` or `--grad-reduce-in-bf16` (None: the planner's
    defaults, Megatron)."""
    bf16_grads = bool(getattr(args, "grad_reduce_in_bf16", None))
    deepspeed = getattr(args, "engine", None) == "deepspeed"
    if deepspeed and bf16_grads:
        raise InputError("--grad-reduce-in-bf16 is Megatron's flag: DeepSpeed reduces bf16 gradients already")
    worlds = _world_sizes(getattr(args, "world_sizes", None))
    if not (deepspeed or bf16_grads or worlds):
        return None
    from autoparallel.solvers.training.space import TrainingOptions

    return TrainingOptions(
        **({"framework": "deepspeed"} if deepspeed else {}),
        **({"grad_reduce_in_bf16": True} if bf16_grads else {}),
        **({"world_sizes": worlds} if worlds else {}),
    )


def _world_sizes(text: str | None) -> tuple[int, ...] | None:
    """--world-sizes as GPU counts (None: not given)."""
    if text is None:
        return None
    values: list[int] = []
    for item in text.split(","):
        try:
            values.append(int(item.strip()))
        except ValueError:
            raise InputError(f"--world-sizes {text[:60]!r}: give GPU counts like 8,16,64") from None
    if not values or min(values) < 1:
        raise InputError(f"--world-sizes {text[:60]!r}: give GPU counts of 1 or more, like 8,16,64")
    return tuple(sorted(set(values)))


def add_evaluate_parser(sub: Any) -> None:
    """`autoparallel evaluate MODEL --cluster C --tp N ...`: the cost model's verdict on one config."""
    p = sub.add_parser("evaluate", help="memory, throughput and latency of a configuration you run today")
    p.set_defaults(func=cmd_evaluate)
    _add_common(p)
    _add_serving_workload(p)
    _add_training_workload(p)
    g = p.add_argument_group("hardware")
    g.add_argument("--price", default=None, help="US$ per GPU-hour, e.g. H100=2.49 (as plan takes it)")
    g.add_argument("--gpus-file", default=None, help="YAML/JSON file of custom GPU types (as plan takes it)")
    p.add_argument("--tp", type=bounded("tp"), default=1)
    p.add_argument("--pp", type=bounded("pp"), default=1)
    p.add_argument(
        "--dp",
        type=bounded("dp"),
        default=None,
        help="data-parallel replicas (evaluate's default: as many as the cluster holds; a plan's "
        "'N replica(s)' is its --dp)",
    )
    p.add_argument("--cp", type=bounded("cp"), default=None, help="training: context-parallel degree")
    p.add_argument(
        "--cp-comm-type",
        choices=("p2p", "a2a"),
        default=None,
        help="training: how context-parallel ranks exchange, as Megatron-Core's flag: p2p (ring attention, "
        "default) or a2a (all-to-all over heads, DeepSpeed-Ulysses; the only one DeepSpeed runs)",
    )
    p.add_argument("--ep", type=bounded("ep"), default=None, help="training: expert-parallel degree")
    p.add_argument(
        "--etp",
        type=bounded("tp"),
        default=None,
        help="training, MoE models: expert tensor-parallel degree (Megatron-Core's "
        "--expert-tensor-parallel-size; default: --tp)",
    )
    p.add_argument("--vp", type=bounded("vp"), default=None, help="training: virtual pipeline stages")
    p.add_argument(
        "--layers-per-stage",
        default=None,
        help="training: decoder layers on each pipeline stage, e.g. 12,13,13,10 (or 12/13/13/10, as a "
        "front labels it); default: as even as possible, the remainder on the first stages",
    )
    p.add_argument(
        "--sequence-parallel",
        choices=("on", "off"),
        default=None,
        help="training: Megatron sequence parallelism over the tp ranks (default on; always off at tp 1, "
        "as Megatron turns it off there); off lifts its rule that the sequence length be a multiple of "
        "tp, as a plan with `sequence_parallel: false` runs",
    )
    p.add_argument("--micro-batch", type=bounded("micro_batch"), default=None, help="training (default 1)")
    p.add_argument(
        "--zero",
        choices=("0", "1", "2", "3", "dist"),
        default=None,
        help="training (default dist; 1 with --engine deepspeed)",
    )
    p.add_argument(
        "--recompute",
        choices=("none", "selective", "full"),
        default=None,
        help="training (default selective)",
    )
    p.add_argument("--enable-expert-parallel", action="store_true", default=None)
    p.add_argument(
        "--max-num-seqs",
        type=bounded("max_num_seqs"),
        default=None,
        help="default: the engine's own: vLLM's for the GPU (1024 on GPUs of 70 GiB+ but A100, else "
        "256), SGLang's from its pool (2048-4096); TensorRT-LLM's max_batch_size 2048 per pipeline stage",
    )
    p.add_argument("--max-model-len", type=bounded("max_model_len"), default=None)
    p.add_argument("--max-num-batched-tokens", type=bounded("max_num_batched_tokens"), default=None)
    p.add_argument(
        "--gpu-memory-utilization",
        type=bounded("gpu_memory_utilization", integer=False),
        default=None,
        help="vLLM: the share of GPU memory it may use (default 0.92)",
    )
    add_engine_memory_flags(p)
    p.add_argument(
        "--quantization", type=quantization_value, default=None, help="none, fp8 or the checkpoint's"
    )
    p.add_argument("--kv-cache-dtype", default=None, help="default auto")
    p.add_argument("--enforce-eager", action="store_true", default=None)
    p.add_argument(
        "--engine",
        choices=("vllm", "sglang", "trtllm", *TRAINING_ENGINES),
        default=None,
        help="default vllm; with --train, the framework whose rules the layout meets (default megatron)",
    )
    nsa = p.add_argument_group(
        "SGLang, DeepSeek Sparse Attention models (default: SGLang's own by KV dtype and GPU)"
    )
    nsa.add_argument("--nsa-prefill-backend", choices=SGLANG_NSA_BACKENDS, default=None)
    nsa.add_argument(
        "--nsa-decode-backend", choices=[b for b in SGLANG_NSA_BACKENDS if b != "flashmla_auto"], default=None
    )


_WORKLOAD_FLAGS = ("workload", "isl", "osl", "concurrency", "request_rate", "ttft_ms", "tpot_ms")
_REPLAY_FLAGS = ("num_prompts", "burstiness")
"""The finite-benchmark replay's flags (`plan` and `evaluate` replay, `pareto` does not)."""
_TRAINING_FLAGS = ("seq_len", "global_batch", "tokens", "precision")
_SERVING_ONLY: dict[str, tuple[str, ...]] = {
    "plan": (
        *_WORKLOAD_FLAGS,
        *_REPLAY_FLAGS,
        "kv_cache_dtype",
        "quantization",
        "gpu_memory_utilization",
        "mem_fraction_static",
        "free_gpu_memory_fraction",
        "max_model_len",
        "top",
        "workload_file",
        "disagg",
        "fleet",
        "plan_file",
    ),
    "evaluate": (
        *_WORKLOAD_FLAGS,
        *_REPLAY_FLAGS,
        "workload_file",
        "enable_expert_parallel",
        "max_num_seqs",
        "max_model_len",
        "max_num_batched_tokens",
        "gpu_memory_utilization",
        "mem_fraction_static",
        "free_gpu_memory_fraction",
        "quantization",
        "kv_cache_dtype",
        "enforce_eager",
        "nsa_prefill_backend",
        "nsa_decode_backend",
    ),
    "pareto": (*_WORKLOAD_FLAGS, "workload_file", "disagg"),
}
"""Options that only a serving request uses: given with --train they are an error, not ignored."""
_TRAINING_ONLY: dict[str, tuple[str, ...]] = {
    "plan": (*_TRAINING_FLAGS, "grad_reduce_in_bf16", "world_sizes"),
    "evaluate": (
        *_TRAINING_FLAGS,
        *("cp", "cp_comm_type", "ep", "etp", "vp", "micro_batch", "zero", "recompute", "layers_per_stage"),
        "sequence_parallel",
    ),
    "pareto": (*_TRAINING_FLAGS, "grad_reduce_in_bf16", "world_sizes"),
}
"""Options that only a training job uses: given without --train they are an error."""
_ENGINE_MAX_NUM_SEQS = 256
"""`evaluate --engine sglang` without `--max-num-seqs`, until `_sglang_default_running` sets SGLang's
own from its pool (vLLM's and TensorRT-LLM's own defaults apply on those engines,
`_default_max_num_seqs`)."""
_DEFAULTS: dict[str, Any] = {
    "precision": "bf16",
    "top": 1,
    "cp": 1,
    "cp_comm_type": "p2p",
    "ep": 1,
    "vp": 1,
    "micro_batch": 1,
    "zero": "dist",
    "recompute": "selective",
    "sequence_parallel": "on",
    "enable_expert_parallel": False,
    "kv_cache_dtype": "auto",
    "enforce_eager": False,
    "engine": "vllm",
}
"""Defaults of the mode-specific options (argparse keeps None, so that "given" can be told apart)."""


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_mode(args: argparse.Namespace, command: str) -> None:
    """Refuse options that do not apply to the chosen mode, then fill the defaults of the others."""
    train = bool(getattr(args, "train", False))
    wrong = _SERVING_ONLY[command] if train else _TRAINING_ONLY[command]
    given = [_flag(d) for d in wrong if getattr(args, d, None) is not None]
    defaults_given = {d for d in _DEFAULTS if getattr(args, d, None) is not None}
    if given:
        mode = "a training job (--train)" if train else "serving (add --train to plan training)"
        raise InputError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to {mode}")
    check_engine(args)
    for dest, default in _DEFAULTS.items():
        if hasattr(args, dest) and getattr(args, dest) is None:
            setattr(args, dest, "megatron" if dest == "engine" and train else default)
    if (
        train
        and getattr(args, "engine", None) == "deepspeed"
        and getattr(args, "zero", None) == "dist"
        and "zero" not in defaults_given
    ):
        args.zero = "1"  # DeepSpeed's ZeRO-1 (dist is Megatron's distributed optimizer)


def _serving_workload(args: argparse.Namespace) -> Any:
    """The workload of `plan`, `evaluate` and `pareto`: a preset or a workload file, with the flags over
    it; a preset and a file together are refused, as fleet entries and sweep scenarios refuse them (a
    file's SLOs would silently replace the preset's)."""
    from autoparallel.workload import Serving

    if args.workload is not None and getattr(args, "workload_file", None):
        raise InputError(
            f"--workload {args.workload} --workload-file {args.workload_file}: a workload is a preset or a "
            "workload file, not both (give its SLOs as --ttft-ms / --tpot-ms)"
        )
    custom_shape = args.workload is None and (args.isl is not None or args.osl is not None)
    # A request shape of the user's own starts from no service-level limits (not the chatbot preset's).
    base = Serving() if custom_shape else Serving.preset(args.workload or "chatbot")
    if getattr(args, "workload_file", None):
        from autoparallel.workload_profile import load_workload_file

        base = load_workload_file(args.workload_file)
    update: dict[str, Any] = {}
    for field in (*_WORKLOAD_FLAGS[1:], *_REPLAY_FLAGS):
        value = getattr(args, field, None)
        if value is not None:
            update[field] = value
    if getattr(args, "max_model_len", None) is not None:
        update["max_model_len"] = args.max_model_len
    if update:
        # Flags over a preset (chatbot by default) keep its name, whose limits they keep (remedies name
        # the preset that imposes a limit); a request shape of the user's own is "custom".
        keep = args.workload or getattr(args, "workload_file", None) or not custom_shape
        try:
            base = base.with_updates({"name": base.name if keep else "custom", **update})
        except ValidationError as exc:
            raise input_error(exc, "workload") from None
    if getattr(args, "burstiness", None) is not None and base.num_prompts is None:
        raise InputError(
            "--burstiness shapes the arrivals of a finite benchmark's replay: add --num-prompts (the "
            "steady-state model takes the mean rate)"
        )
    if getattr(args, "tpot_ms", None) is not None and base.tpot_ms is None:
        print(
            "note: --tpot-ms dropped: every output is one token, so there is no TPOT to limit",
            file=sys.stderr,
        )
    from autoparallel.solvers.serving.remedies import GIVEN_LIMITS

    # A remedy credits a limit to the preset or file only where no flag gave it (`GIVEN_LIMITS`); the
    # command runs in its own thread (`cli.main`), whose context this sets.
    GIVEN_LIMITS.set(frozenset(f for f in ("ttft_ms", "tpot_ms") if getattr(args, f, None) is not None))
    return base


def note_burstiness(args: argparse.Namespace, workload: Any, *, replay: bool) -> None:
    """Say (stderr, and JSON `notes` through `workload_notes`) that a workload file's burstiness is not
    used (`fleet_cmd.unused_burstiness`): `--burstiness` without --num-prompts is refused
    (`_serving_workload`); a file's was dropped without a word (plan exit 0). `replay`: the command
    replays (one engine's `plan` and `evaluate`; a deployment has none: there a finite benchmark,
    `num_prompts`, is said not to be replayed, `unreplayed_note`, whether a preset, the workload file
    or --num-prompts gave it)."""
    note = None
    if getattr(args, "workload_file", None):
        how = "--num-prompts N replays N prompts at those arrivals" if replay else fleet_cmd.NO_REPLAY
        note = fleet_cmd.unused_burstiness(workload, how)
    if note is None and not replay:
        note = unreplayed_note(args, workload)
    if note is None:
        return
    args.workload_notes = [*workload_notes(args), note]
    print(f"note: {note}", file=sys.stderr)


_FILE_PROMPTS = "the workload file's "
"""How `fleet_cmd.unreplayed_prompts` names the finite benchmark's source (`unreplayed_note` names the
preset or the flag in its place)."""


def unreplayed_note(args: argparse.Namespace, workload: Any) -> str | None:
    """The note that the deployment planner plans `workload`'s finite benchmark (`num_prompts`) as the
    deployment's steady state and does not replay it (`fleet_cmd.unreplayed_prompts`), naming where the
    prompts came from: --num-prompts, the workload file, or the preset (batch and sharegpt carry 1,000;
    `workload.PRESETS`). The three were planned alike (`DeploymentSpace.open_loop_prompts`,
    `burst_prompts`) but only the file's was said: a preset's went unsaid (exit 0) and the flag was
    refused (exit 2), though the planner uses it as it uses the file's. None: no finite benchmark."""
    note = fleet_cmd.unreplayed_prompts(workload, fleet_cmd.deployment_reason(args))
    if note is None or not note.startswith(_FILE_PROMPTS):
        return note
    if getattr(args, "num_prompts", None) is not None:
        whose = f"--num-prompts {workload.num_prompts}: the "
    elif getattr(args, "workload_file", None):
        return note
    else:
        whose = f"the {workload.name} preset's "
    return whose + note.removeprefix(_FILE_PROMPTS)


def workload_notes(args: argparse.Namespace) -> list[str]:
    """The notes `note_burstiness` said of the workload (JSON `notes` of the command's output)."""
    return list(getattr(args, "workload_notes", None) or [])


def _training_workload(args: argparse.Namespace) -> Any:
    from autoparallel.workload import Training

    if args.seq_len is None or args.global_batch is None:
        raise InputError("--train needs --seq-len and --global-batch")
    return Training(
        seq_len=args.seq_len, global_batch=args.global_batch, tokens=args.tokens, precision=args.precision
    )


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """Print `payload` as JSON (with the workload's notes, `workload_notes`, as `notes`) or `text`."""
    if args.json:
        notes = workload_notes(args)
        if notes and isinstance(payload, dict):
            payload = {**payload, "notes": [*payload.get("notes", []), *notes]}
        sys.stdout.write(strict_json(payload) + "\n")
    else:
        sys.stdout.write(text.rstrip() + "\n")


def check_plan_file(path: str) -> None:
    """--plan-file's path, checked before planning, as pareto's --out is (`sweeps.results.table_target`):
    a plan takes seconds to minutes, and a path in a folder that does not exist failed only after the
    whole plan was printed (exit 2 under a full --json).

    Raises:
        InputError: it cannot be written (`user_file.writable_folder_problem`).
    """
    from pathlib import Path

    from autoparallel.user_file import writable_folder_problem

    if (problem := writable_folder_problem(Path(path))) is not None:
        raise InputError(f"cannot write plan file {path!r}: {problem}")


def cmd_plan(args: argparse.Namespace) -> int:
    """Solve for the best configuration and print it with its artifacts. --time-limit bounds the whole
    command: a hub fetch of a model outside the zoo included (`fleet_cmd.time_limit` gives the solvers
    what it left)."""
    from autoparallel.models.hub import fetch_deadline

    args.started_s = time.perf_counter()
    with fetch_deadline(None if args.time_limit is None else args.started_s + args.time_limit):
        return _plan(args)


def _limit_said(args: argparse.Namespace, settings: Any) -> str:
    """The command's time limit as the user gave it (`settings` hold what a hub fetch left of it)."""
    return f"{settings.time_limit_s if args.time_limit is None else args.time_limit:g}"


def _plan(args: argparse.Namespace) -> int:
    from autoparallel import api

    check_mode(args, "plan")
    refuse_overwrite("--plan-file", args.plan_file, fleet_cmd.plan_file_inputs(args))
    if args.plan_file:
        check_plan_file(args.plan_file)
    if args.workers is not None and args.workers > cpu_cores():
        print(
            f"note: --workers {args.workers} capped at this machine's {cpu_cores()} CPU cores",
            file=sys.stderr,
        )
    if not args.train and not disagg_cmd.with_vllm(args) and args.disagg == "on":
        raise InputError(
            f"--engine {args.engine}: prefill/decode disaggregation plans vLLM engines (NIXL KV transfer); "
            "drop --engine or use --engine vllm or auto"
        )
    if not args.train:
        refuse_engine_memory_flags(args)
        fleet_cmd.vllm_memory_knob(fleet_cmd.engines_of(args.engine), args.gpu_memory_utilization is not None)
    # The workload as resolved (the flags over the workload file or preset) decides the planner: a file's
    # num_prompts asks for the replay as --num-prompts does (`fleet_cmd._cost_at_a_rate`).
    if args.model is not None and not args.fleet:
        api._model(args.model)  # a hub fetch now, within --time-limit: the solvers get what it leaves
    resolved = None if args.fleet or args.train else _serving_workload(args)
    if fleet_cmd.wants_fleet(args, resolved):
        given = [f for f in (*_WORKLOAD_FLAGS, "workload_file", "max_model_len") if getattr(args, f, None)]
        if args.fleet and given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            raise InputError(
                f"{flags}: a fleet file gives each model's workload (its entries' isl, osl, request_rate, "
                "ttft_ms, tpot_ms, max_model_len, concurrency, workload or workload_file); put them there"
            )
        # The deployment planner plans a finite benchmark's prompts as its steady state
        # (`DeploymentSpace.open_loop_prompts`, `burst_prompts`): --num-prompts is planned, as a preset's
        # or a workload file's num_prompts is, and said not replayed (`unreplayed_note`). A --fleet file
        # gives each model's workload, and the steady state takes the mean rate: --burstiness would do
        # nothing there.
        replay = [_flag(f) for f in _REPLAY_FLAGS if getattr(args, f, None) is not None]
        if replay and args.fleet:
            raise InputError(
                f"{' and '.join(replay)}: {fleet_cmd.deployment_reason(args)}, which takes each model's "
                "workload from its entry (drop "
                f"{'it' if len(replay) == 1 else 'them'})"
            )
        if getattr(args, "burstiness", None) is not None:
            raise InputError(
                f"--burstiness shapes the arrivals of one engine's benchmark replay; "
                f"{fleet_cmd.deployment_reason(args)}, which plans the mean rate and has no replay (drop it)"
            )
        if args.top is not None and args.top > 1:
            raise InputError(
                f"--top {args.top} ranks one engine's plans by shape; {fleet_cmd.deployment_reason(args)}, "
                "which gives one optimal plan (drop --top)"
            )
        if args.fleet:
            if args.disagg == "on":
                raise InputError(
                    "--disagg on plans one MODEL's prefill and decode engines, not a --fleet file"
                )
            if args.disagg == "auto":
                print(
                    "note: --disagg auto: no disaggregation comparison for a --fleet file (it compares one "
                    "MODEL's deployments; plan each model alone to compare)",
                    file=sys.stderr,
                )
            return fleet_cmd.cmd_fleet(args, None)
        assert resolved is not None
        note_burstiness(args, resolved, replay=False)
        return _deployment_plan(args, resolved)
    if args.model is None:
        raise InputError("plan needs a MODEL (or --fleet FILE)")
    workload = _training_workload(args) if resolved is None else resolved
    if not args.train:
        note_burstiness(args, workload, replay=True)
    from autoparallel.solvers.settings import SolverSettings

    settings = SolverSettings.create(
        time_limit_s=fleet_cmd.time_limit(args), workers=args.workers, seed=args.seed
    )
    deadline = settings.deadline()  # one limit for the command: each section gets what is left of it
    options = training_options(args) if args.train else fleet_cmd.serving_options(args)
    early = disagg_cmd.required(args, workload, settings)  # --disagg on: its infeasibility first
    left = settings.until(deadline)
    if left is None and early is not None and early.mode == "disaggregated" and early.unmet_rps <= 0:
        _emit_stand_in(  # --disagg on found its answer; no time is left for the single-engine plan
            args,
            workload,
            InfeasibleError(
                "no single-engine plan: the disaggregation comparison (--disagg on) spent the time limit"
            ),
            {"engine": "vllm", **early.to_dict()},
            early.explain(),
            "No single-engine plan within the time limit:",
        )
        if args.plan_file:
            fleet_cmd.write_plan_file(args.plan_file, str(early.to_yaml()))
        return 0
    if left is None:
        from autoparallel.solvers.settings import MIN_LEFT_S

        spent = (
            "the disaggregation comparison (--disagg on) spent it"
            if early is not None
            else f"the {_limit_said(args, settings)} s limit left less than the {MIN_LEFT_S:g} s a solve "
            "needs after reading the model and the options"
        )
        raise SolverTimeoutError(f"no plan found within the time limit: {spent} (raise --time-limit)")
    # The whole-cluster section takes --engine; the disaggregation comparison plans vLLM engines only,
    # so it runs where vLLM is among the engines (--engine vllm or auto): under auto, a disaggregated
    # vLLM deployment that beats every engine's aggregated one is the answer, as under vllm.
    serving_vllm = disagg_cmd.with_vllm(args) and not args.train
    if not args.train and not serving_vllm and args.disagg == "auto":
        print(
            f"note: no disaggregation comparison under --engine {args.engine}: prefill/decode "
            "disaggregation plans vLLM engines (NIXL KV transfer); --engine vllm or auto compares it",
            file=sys.stderr,
        )
    plans: list[Any] = []
    single_error: InfeasibleError | None = None
    try:
        plans = api.solve_top(
            args.model,
            fleet_cmd.priced_cluster(args),
            workload=workload,
            objective=args.objective or "throughput",
            settings=left,
            options=options,
            top=args.top,
        )
    except InfeasibleError as exc:
        if args.train:
            raise
        # Several engines over the whole cluster, or disaggregation, may serve what no single engine
        # does: both are tried below.
        single_error = exc
    if plans and not args.train:
        plans[0] = api.with_benchmark(plans[0])  # the chosen plan's finite benchmark (`batch` workloads)
    if plans and len(plans) < args.top:
        # Cut by the time limit (`SolverReport.top_cut`), the count is what was found, not what fits.
        found = (
            f"found before the time limit (--time-limit {_limit_said(args, settings)}); more may fit"
            if any(p.solver.top_cut for p in plans)
            else "fit"
        )
        print(
            f"note: {len(plans)} distinct plan shape(s) (tp x pp x expert parallelism) {found}; --top asked "
            f"for {args.top}",
            file=sys.stderr,
        )
    served_id = plans[0].served_id if plans else ""
    whole, no_whole = (
        (None, None)
        if args.train
        else fleet_cmd.whole_cluster(args, workload, served_id, settings.until(deadline))
    )
    comp = early or (
        disagg_cmd.comparison(args, workload, served_id, whole, settings.until(deadline))
        if serving_vllm
        else None
    )
    note = (
        ""
        if args.train
        else objectives.deployment_objective_note(args.objective, workload.request_rate is not None)
    )
    if note and (whole is not None or comp is not None):  # not silently planned at another objective
        print(f"note: {note}", file=sys.stderr)
    if single_error is not None:  # a deployment that serves the request stands in, disaggregated first
        if comp is not None and comp.mode == "disaggregated" and comp.unmet_rps <= 0:
            _emit_stand_in(
                args,
                workload,
                single_error,
                {"engine": "vllm", **comp.to_dict()},
                comp.explain(),
                "No single-engine (aggregated) plan serves the request:",
            )
        elif whole is not None and all(m.unmet_rps <= 0 for m in whole.deployment.models):
            deployment = {"mode": "aggregated", **whole.deployment_dict()}
            text = "Whole cluster (deployment planner, several engines):\n" + whole.explain()
            _emit_stand_in(
                args,
                workload,
                single_error,
                {"engine": args.engine or "vllm", "deployment": deployment},
                text,
            )
        else:
            raise _with_deployments(single_error, whole, comp)
    elif args.json:
        # One shape whatever --top is: the best plan's object, the others under "alternatives".
        payload: Any = {**plans[0].to_dict(), "alternatives": [p.to_dict() for p in plans[1:]]}
        if whole is not None:
            payload["deployment"] = {"mode": "aggregated", **whole.deployment_dict()}
        if comp is not None:
            engines = payload.pop("comparison", None)
            disagg_cmd.merge_json(payload, comp)
            if engines is not None:
                # the engines' comparison (`engine_winner`, `engine_objective`, `engines`) beside the
                # deployment verdict (`winner`, `measure`, `why`): a shared key would overwrite a verdict
                shared = payload["comparison"].keys() & engines.keys()
                assert not shared, f"engine and disaggregation comparisons share keys {sorted(shared)}"
                payload["comparison"].update(engines)
        _emit(args, payload, "")
    else:
        text = "\n\n".join(p.explain() for p in plans).rstrip()
        if whole is not None:
            text += "\n\nWhole cluster (deployment planner, several engines):\n"
            text += fleet_cmd.versus_single(whole, plans[0]) + "\n" + whole.explain()
        if comp is not None:
            text += "\n\n" + comp.explain()
        sys.stdout.write(text + "\n")
    if args.plan_file:
        fleet_cmd.write_plan_file(args.plan_file, _plan_file_text(args.plan_file, whole, no_whole, comp))
        if args.objective is not None and objectives.deployment_objective(args.objective, True) is None:
            print(
                "note: --plan-file holds the whole-cluster deployment, planned at the deployment planner's "
                f"default objective; --objective {args.objective} is a single-engine objective "
                "(the plan above)",
                file=sys.stderr,
            )
    return 0


def _deployment_plan(args: argparse.Namespace, workload: Any) -> int:
    """`plan MODEL` through the deployment planner (a mixed-pool cluster, or a deployment-only
    objective) with the disaggregation comparison `plan MODEL` on one pool prints (`--disagg`:
    auto, the default, compares; on requires it; off skips it; vLLM engines only). The aggregated
    deployment first, then the comparison; with no aggregated deployment a disaggregated one that
    serves the request stands in, as for `plan MODEL` on one pool.

    Raises:
        InfeasibleError: neither deployment serves the request, or --disagg on and no disaggregated
            one does (with numbers).
    """
    from autoparallel.fleet import fleet_of_one, solve_fleet
    from autoparallel.objectives import deployment_objective
    from autoparallel.solvers.settings import SolverSettings

    refused = args.objective is not None and deployment_objective(args.objective, False) is None
    if args.disagg == "off" or not disagg_cmd.with_vllm(args) or refused:
        return fleet_cmd.cmd_fleet(args, workload)  # (an objective it refuses: its one-line error)
    settings = SolverSettings.create(
        time_limit_s=fleet_cmd.time_limit(args), workers=args.workers, seed=args.seed
    )
    deadline = settings.deadline()
    plan, error = None, None
    if args.disagg == "on":
        # the required deployment first, the aggregated one for the comparison in what it leaves
        # (`disagg._compare`): solved first, a large cap's aggregated deployment spent the limit
        comp = disagg_cmd.comparison(args, workload, "", None, settings)
        plan = comp.aggregated if comp is not None else None
        if comp is not None and plan is None:
            error = InfeasibleError(comp.why)
    else:
        try:
            plan = solve_fleet(
                fleet_of_one(args.model, workload),
                fleet_cmd.cluster_of(args),
                objective=deployment_objective(args.objective, workload.request_rate is not None),
                settings=settings,
                options=fleet_cmd.serving_options(args),
            )
        except InfeasibleError as exc:
            error = exc
        comp = disagg_cmd.comparison(args, workload, "", plan, settings.until(deadline))
    if comp is None and args.disagg == "on":  # nothing left of the limit (said on stderr)
        raise SolverTimeoutError(
            "no disaggregated plan within the time limit: the aggregated deployment spent it "
            "(raise --time-limit)"
        )
    if plan is not None:  # a rate is a demand (the --fleet help's rule): no deployment that misses it
        _raise_unmet(plan, comp, workload)
    if plan is None:
        assert error is not None
        if comp is None or comp.mode != "disaggregated" or comp.unmet_rps > 0:
            raise error
        _emit_stand_in(
            args,
            workload,
            error,
            {"engine": "vllm", **comp.to_dict()},
            comp.explain(),
            "No aggregated deployment serves the request:",
        )
    elif args.json:
        payload = plan.to_dict()
        if comp is not None:
            disagg_cmd.merge_json(payload, comp)
        _emit(args, payload, "")
    else:
        text = plan.explain().rstrip()
        _emit(args, None, text + ("\n\n" + comp.explain() if comp is not None else ""))
    if args.plan_file:
        chosen: Any = comp if comp is not None else plan
        fleet_cmd.write_plan_file(args.plan_file, str(chosen.to_yaml()))
    return 0


def _raise_unmet(plan: Any, comp: Any, workload: Any) -> None:
    """Raise when the deployment `plan MODEL` would recommend (the comparison's winner, else the
    aggregated `plan`) does not carry the workload's rate, with what each side carries and on how
    many GPUs (`fleet_cmd.rate_unmet`): the deployment planner under goodput serves what it can, and
    printed that as the answer, exit 0 and a plan file, where one pool's plan exits 1.

    Raises:
        InfeasibleError: the rate is not carried.
    """
    m = plan.deployment.models[0]
    unmet = comp.unmet_rps if comp is not None else m.unmet_rps
    carried = [fleet_cmd.aggregated_carries(plan)]
    d = comp.disaggregated if comp is not None else None
    if d is not None:
        carried.append(
            f"the best disaggregated one ({d.ratio}) carries {rps_text(d.capacity_rps)}/s on "
            f"{d.gpus_used} GPUs"
        )
    error = fleet_cmd.rate_unmet(m.model, plan.cluster, workload, unmet, carried)
    if error is not None:
        raise error


def _emit_stand_in(
    args: argparse.Namespace,
    workload: Any,
    single_error: InfeasibleError,
    payload: dict[str, Any],
    text: str,
    headline: str = "No single-engine plan serves the request:",
) -> None:
    """`plan` when no single engine serves the request and a deployment does: that deployment
    (`payload` for --json, `text` else) is the answer, printed after why one engine could not. The
    stand-ins: a disaggregated deployment (`Comparison`), or several engines over the whole cluster
    (a rate beyond one engine's capacity: Llama-3.1-70B at 55.8 requests/s on 3x8xH100 exited 1 while
    its deployment section carried 55.91)."""
    if args.json:
        head = {"model": args.model, "cluster": args.cluster, "workload": workload.model_dump()}
        error = {
            "error": str(single_error).splitlines()[0],
            "reasons": list(single_error.reasons),
            "fixes": list(single_error.fixes),
        }
        _emit(args, {**head, "single_engine": error, **payload}, "")
        return
    why = "\n".join([headline, *_indent(str(single_error))])
    sys.stdout.write(why + "\n\n" + text + "\n")


def _indent(text: str) -> list[str]:
    return ["  " + line for line in text.splitlines()]


def _plan_file_text(path: str, whole: Any, no_whole: Exception | None, comp: Any) -> str:
    """The plan file of the deployment `plan MODEL` recommends: the disaggregated one when the
    comparison picks it, else the whole-cluster deployment.

    Raises:
        SolverTimeoutError / InfeasibleError: there is none (why the whole-cluster section has none);
            the file is not touched.
    """
    if comp is not None and (comp.mode == "disaggregated" or whole is None):
        return str(comp.to_yaml())
    if whole is not None:
        return str(whole.to_yaml())
    why = str(no_whole).splitlines()[0] if no_whole is not None else "none was planned"
    error = SolverTimeoutError if isinstance(no_whole, SolverTimeoutError) else InfeasibleError
    raise error(
        f"--plan-file {path}: not written (a file of that name is left as it was): it holds the "
        f"whole-cluster deployment, and there is none: {why}"
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate one user-given configuration; exit 1 if it does not fit."""
    from autoparallel import api

    ev: api.Plan
    check_mode(args, "evaluate")
    if args.train:
        ev = _evaluate_training(args, _training_workload(args))
    else:
        workload = _serving_workload(args)
        note_burstiness(args, workload, replay=True)
        ev = _evaluate_serving(args, workload)
    _emit(args, ev.to_dict(), ev.explain())
    return 0 if ev.fits else 1


def _evaluate_serving(args: argparse.Namespace, workload: Any) -> Any:
    """`autoparallel evaluate` (serving): the user's engine flags as a ServingConfig, evaluated on the
    engine as a plan compared with that engine's optimum."""
    from autoparallel import api

    refuse_foreign_memory_flags(args)
    cluster = fleet_cmd.cluster_of(args)
    model = api._model(args.model)
    config = _serving_config(args, model, cluster, workload)
    _refuse_missing_nodes(config, cluster)
    nsa = (args.nsa_prefill_backend, args.nsa_decode_backend)  # checked by api.evaluate
    if args.engine != "vllm":
        if args.engine == "sglang" and args.max_num_seqs is None:
            config = _sglang_default_running(model, cluster, config, nsa)
        return api.evaluate(args.model, cluster, config, workload, engine=args.engine, nsa_backends=nsa)
    from autoparallel.frameworks.vllm import separate_engines

    # The id as named: the line serves it.
    ev = api.evaluate(args.model, cluster, config, workload, nsa_backends=nsa)
    if separate_engines(config, model):  # after the configuration is known to be valid
        given = f"--dp {config.replicas}" if args.dp else f"{config.replicas} replicas (filling the cluster)"
        print(
            f"note: {given} without --enable-expert-parallel on a MoE model is evaluated as "
            f"{config.replicas} separate engines (the launch lines below); vLLM's --data-parallel-size "
            f"would instead shard the experts over all {config.gpus} GPUs and align the engines' forward "
            "passes, which this evaluation does not model",
            file=sys.stderr,
        )
    return ev


def _sglang_default_running(model: Any, cluster: Any, config: Any, nsa: tuple[str | None, str | None]) -> Any:
    """`config` with SGLang's own default running-request cap per rank: the request slots its pool
    gives (`memory.sglang.sglang_kv`, 2,048 to 4,096), what a server without
    `--max-running-requests` runs."""
    from autoparallel.memory.sglang import MAX_REQUEST_SLOTS
    from autoparallel.perf.serving_engines import engine_kv_for

    widest = config.model_copy(update={"max_num_seqs": MAX_REQUEST_SLOTS})
    kv, _ = engine_kv_for("sglang", model, cluster, widest, nsa)
    return config.model_copy(update={"max_num_seqs": kv.max_running})


def _with_deployments(error: InfeasibleError, whole: Any, comp: Any) -> InfeasibleError:
    """The single-engine planner's infeasibility with what the deployments planned beside it carry (the
    whole cluster's several engines, the disaggregated one), so that a rate beyond one engine is not
    reported against the weakest planner alone (DeepSeek-V3 on 16x8xH100 at 600 req/s: 82.73 req/s
    single-engine, 132.95 over the whole cluster, 466.72 disaggregated)."""
    extra = []
    if whole is not None and whole.deployment.models:
        carried = whole.deployment.models[0].capacity_rps
        extra.append(
            f"the whole-cluster deployment (several engines) carries {rps_text(carried)} req/s "
            "within the SLOs"
        )
    dis = comp.disaggregated if comp is not None else None
    if dis is not None:
        extra.append(
            f"the disaggregated deployment ({dis.ratio}) carries {rps_text(dis.capacity_rps)} req/s "
            "at the SLOs"
        )
    if not extra:
        return error
    return InfeasibleError(str(error).splitlines()[0], (*error.reasons, *extra), error.fixes)


def _default_max_num_seqs(args: argparse.Namespace, cluster: Any, max_model_len: int) -> int:
    """`max_num_seqs` when not given: vLLM's own default for the GPU (`vllm serve` at the release the
    memory model follows: 1,024 sequences on GPUs of 70 GiB and more but A100, else 256), so that
    `evaluate` prices what a bare `vllm serve` runs; SGLang's is set from its pool later
    (`_sglang_default_running`); TensorRT-LLM's is `max_batch_size` 2048 per micro-batch, so a bare
    `trtllm-serve` over pp stages runs 2048 × pp (`memory.trtllm.trtllm_default_max_num_seqs`)."""
    if args.engine == "trtllm":
        from autoparallel.memory.trtllm import trtllm_default_max_num_seqs

        return trtllm_default_max_num_seqs(args.pp or 1)
    if args.engine != "vllm":
        return _ENGINE_MAX_NUM_SEQS
    from autoparallel.memory.serving import DEFAULT_VLLM_VERSION
    from autoparallel.memory.vllm_config import resolve_batch_defaults
    from autoparallel.memory.vllm_versions import parse_vllm_version, rules_for

    rules = rules_for(parse_vllm_version(DEFAULT_VLLM_VERSION))
    seqs, _ = resolve_batch_defaults(rules, cluster.gpu, max_model_len, None, args.max_num_batched_tokens)
    return seqs


def _default_replicas(args: argparse.Namespace, model: Any, cluster: Any) -> int:
    """Replicas when `--dp` is not given: as many as the cluster holds, placed as the planner places
    them (`perf.serving.replicas_on`: none straddles a node; tp=4 on 2x6xH100 holds 2, not 12 // 4 = 3).
    An expert-parallel engine's data ranks form one engine over the GPUs it takes: the most ranks the
    cluster holds whose expert-parallel size (tp · ranks) divides the experts (Qwen3-30B-A3B's 128
    experts on 1x6xH100: 4 ranks, not an ep of 6 the user never asked for), else the cluster's fill, whose
    problems `deployment_problems` and the engine checks name."""
    from autoparallel.perf.serving import replicas_on

    width = args.tp * args.pp
    if args.enable_expert_parallel:
        most = max(1, cluster.world_size // width)
        experts = model.num_experts
        fits = [r for r in range(most, 0, -1) if experts and not experts % (args.tp * r)]
        return fits[0] if fits else most
    return max(1, replicas_on(width, cluster.world_size, cluster.gpus_per_node))


def _refuse_missing_nodes(config: Any, cluster: Any) -> None:
    """Refuse `--dp` replicas of engines narrower than a node that the cluster's nodes cannot hold
    without one straddling two (tp=4 --dp 3 on 2x6xH100: one per node, three need 3 nodes), as a
    launch over more hosts than a cluster has is refused (`frameworks.vllm._check_hosts`): every
    engine's launch lines would name a node the cluster does not have. Expert-parallel engines and
    replicas past the cluster's GPUs are judged elsewhere (`deployment_problems`, the config's checks).

    Raises:
        InputError: more replicas than the cluster's nodes hold."""
    from autoparallel.perf.serving import replicas_on

    width, node = config.gpus_per_replica, cluster.gpus_per_node
    if config.enable_expert_parallel or width >= node or not node % width:
        return
    if config.gpus > cluster.world_size:
        return
    most = replicas_on(width, cluster.world_size, node)
    if config.replicas <= most:
        return
    per_node = node // width
    need = -(-config.replicas // per_node)
    raise InputError(
        f"--dp {config.replicas}: {config.replicas} replicas of {width} GPUs need {need} nodes of {node} "
        f"GPUs but cluster {cluster.spec} has {cluster.nodes}: a node holds {per_node} without one "
        f"straddling two, so the cluster holds {most} (--dp {most})"
    )


def _serving_config(args: argparse.Namespace, model: Any, cluster: Any, workload: Any) -> Any:
    from autoparallel.api import _workload_context
    from autoparallel.configs import ServingConfig

    # Not given: the context the workload needs, refused in its own terms (isl + osl) when the model
    # cannot hold it, not as a --max-model-len the user never gave.
    mml = args.max_model_len or _workload_context(workload, model)
    fields: dict[str, Any] = {
        "tp": args.tp,
        "pp": args.pp,
        "replicas": args.dp or _default_replicas(args, model, cluster),
        "enable_expert_parallel": args.enable_expert_parallel,
        "max_num_seqs": args.max_num_seqs or _default_max_num_seqs(args, cluster, mml),
        "max_model_len": mml,
        "max_num_batched_tokens": args.max_num_batched_tokens,
        "kv_cache_dtype": args.kv_cache_dtype,
        "quantization": args.quantization,
        "enforce_eager": args.enforce_eager,
    }
    for knob in ("gpu_memory_utilization", "mem_fraction_static", "free_gpu_memory_fraction"):
        if getattr(args, knob, None) is not None:
            fields[knob] = getattr(args, knob)
    try:
        config = ServingConfig(**fields)
    except ValidationError as exc:
        raise InputError(f"invalid configuration: {first_error(exc)}") from None
    return config


def _evaluate_training(args: argparse.Namespace, workload: Any) -> Any:
    """`autoparallel evaluate --train`: the user's layout as a TrainingConfig, evaluated."""
    from autoparallel import api
    from autoparallel.configs import Recompute, TrainingConfig, ZeroStage

    cluster = fleet_cmd.cluster_of(args)
    model_parallel = args.tp * args.pp * args.cp
    if model_parallel > cluster.world_size:
        raise InputError(
            f"tp × pp × cp = {args.tp} × {args.pp} × {args.cp} = {model_parallel} GPUs, but the cluster has "
            f"{cluster.world_size}"
        )
    if not args.dp and cluster.world_size % model_parallel:  # dp was rounded down, then blamed the batch
        raise InputError(
            f"tp × pp × cp = {args.tp} × {args.pp} × {args.cp} = {model_parallel} does not divide the "
            f"cluster's {cluster.world_size} GPUs, so no data-parallel degree fills it: pass --dp (the job "
            f"then uses tp × pp × cp × dp GPUs) or degrees whose product divides {cluster.world_size}"
        )
    dp = args.dp or max(1, cluster.world_size // model_parallel)
    if workload.global_batch % (args.micro_batch * dp):
        raise InputError(
            f"--global-batch {workload.global_batch} is not a multiple of micro-batch × dp = "
            f"{args.micro_batch} × {dp}"
        )
    stages = _layers_per_stage(args.layers_per_stage, args.pp)
    if args.etp is not None and not api._model(args.model).is_moe:
        raise InputError(
            f"--etp {args.etp}: {args.model} has no MoE layers; expert tensor parallelism splits experts"
        )
    config = TrainingConfig(
        tp=args.tp,
        pp=args.pp,
        dp=dp,
        cp=args.cp,
        cp_comm=args.cp_comm_type,
        ep=args.ep,
        etp=None if args.etp in (None, args.tp) else args.etp,  # None: etp = tp, as the planner writes it
        vp=args.vp,
        micro_batch=args.micro_batch,
        global_batch=workload.global_batch,
        seq_len=workload.seq_len,
        zero=ZeroStage(args.zero),
        recompute=Recompute(args.recompute),
        sequence_parallel=args.sequence_parallel == "on",
        layers_per_stage=stages,
        precision=workload.precision,
    )
    if config.world_size > cluster.world_size:
        raise InputError(
            f"tp × pp × dp × cp = {config.world_size} GPUs, but the cluster has {cluster.world_size}"
        )
    return api.evaluate(args.model, cluster, config, workload, engine=args.engine)


def _layers_per_stage(text: str | None, pp: int) -> tuple[int, ...] | None:
    """`--layers-per-stage 12,13,13,10` (or `12/13/13/10`) as a tuple of pp positive counts (their sum
    is checked against the model's layers by `validation.training_problems`).

    Raises:
        InputError: not integers, one not positive, or not one count per stage.
    """
    if text is None:
        return None
    parts = text.replace("/", ",").split(",")
    if len(text) > 200 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        raise InputError(f"--layers-per-stage {text[:60]!r}: expected layer counts like 12,13,13,10")
    stages = tuple(int(p) for p in parts)
    if min(stages) < 1:
        raise InputError(f"--layers-per-stage {text}: every stage needs at least one layer")
    if len(stages) != pp:
        raise InputError(f"--layers-per-stage {text}: {len(stages)} stages given, --pp is {pp}")
    return stages


def evaluate_command(plan: Any) -> str | None:
    """The `autoparallel evaluate --train` line that re-evaluates a training plan's configuration (a
    front point's) to the same figures under the same rules: every field the planner sets, --etp and
    --layers-per-stage included where they differ from evaluate's defaults (tp; the even split), the
    framework (--engine deepspeed: its rules and its optimum to compare with) and the job's --tokens
    (the time and cost to the budget), and --sequence-parallel off where the planner turned it off
    over tp > 1 (it does where the sequence is no multiple of tp: seq 4097 at tp 8). None when the
    configuration has a field evaluate takes no flag for (per-stage recompute, offload, an MoE
    capacity factor, EP overlap: options the CLI's planners never set)."""
    import shlex

    from autoparallel.configs import even_split

    c = plan.config
    if (
        c.stage_recompute is not None
        or c.offload_optimizer
        or c.offload_params
        or c.moe_capacity_factor is not None
        or c.ep_overlap
    ):
        return None
    words = ["autoparallel", "evaluate", plan.model_id or plan.model.name, "--cluster", plan.cluster.spec]
    words += ["--train", "--seq-len", str(c.seq_len), "--global-batch", str(c.global_batch)]
    tokens = plan.workload.tokens
    if tokens:  # repr: the float back exactly; a whole number without its ".0"
        words += ["--tokens", str(int(tokens)) if float(tokens).is_integer() else repr(float(tokens))]
    words += ["--precision", c.precision] if c.precision != "bf16" else []
    words += ["--engine", plan.framework] if plan.framework != "megatron" else []
    words += ["--tp", str(c.tp), "--pp", str(c.pp), "--dp", str(c.dp)]
    words += ["--cp", str(c.cp)] if c.cp > 1 else []
    words += ["--cp-comm-type", c.cp_comm] if c.cp_comm != "p2p" else []
    words += ["--ep", str(c.ep)] if c.ep > 1 else []
    words += ["--etp", str(c.etp)] if c.etp not in (None, c.tp) else []
    words += ["--vp", str(c.vp)] if c.vp > 1 else []
    words += ["--micro-batch", str(c.micro_batch), "--zero", c.zero.value, "--recompute", c.recompute.value]
    words += ["--sequence-parallel", "off"] if not c.sequence_parallel and c.tp > 1 else []
    stages = c.stage_layers(plan.model.num_layers)
    if stages != even_split(plan.model.num_layers, c.pp):
        words += ["--layers-per-stage", ",".join(map(str, stages))]
    return shlex.join(words)
