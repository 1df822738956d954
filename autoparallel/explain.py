"""Human-readable reports of plans, fronts and sweeps (plain text tables)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from autoparallel.engine_compare import kv_tokens_total
from autoparallel.engine_compare import why as why_engine
from autoparallel.perf.engine_support import ENGINE_NAMES

if TYPE_CHECKING:
    from autoparallel.perf.serving import OfferedLoad
    from autoparallel.plan import RunnerUp, ServingPlan, SolverReport, TrainingPlan


def rate_line(at: OfferedLoad) -> str:
    """One line on the steady state at the offered rate, for people."""
    return (
        f"at {at.request_rate:g} requests/s: {at.batch_size:.3g} running per replica, TTFT "
        f"{at.ttft_ms:.0f} ms, TPOT {at.tpot_ms:.1f} ms (the figures above are full load, where "
        "the limits are checked)"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, left: Sequence[int] = (0,)) -> str:
    """A plain-text table; the columns in `left` left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        return (
            f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
        )
    return str(value)


def _solver_line(solver: SolverReport, outside: str | None = None) -> str:
    """One line on how the plan was decided. `outside`: for an evaluated configuration above the
    planner's optimum, what puts it beyond the planner's choices (`_training_outside`); None: a
    value between its grid points (serving's max_num_seqs 2^k / 3·2^k grid, say)."""
    parts = [f"solver: {solver.status}"]
    if solver.status == "OPTIMAL" and solver.rank is not None:
        above = (
            "the shape ranked above is"
            if solver.rank == 2
            else f"the {solver.rank - 1} shapes ranked above are"
        )
        parts[0] += f" for #{solver.rank} (proven the best under the cost model once {above} excluded)"
    elif solver.status == "OPTIMAL":
        parts[0] += " (proven optimal under the cost model, over the values the planner searches)"
    elif solver.rank is not None:
        parts[0] += f" for #{solver.rank} (the shapes ranked above excluded)"
    if solver.wall_s is not None:
        parts.append(f"{solver.wall_s:.2f} s")
    if solver.status == "FEASIBLE" and solver.gap is not None:
        parts.append(f"gap {100 * solver.gap:.1f}% (time limit reached; best found, not proven optimal)")
    if solver.gap_to_optimum is not None:
        gap = solver.gap_to_optimum
        if gap >= 1.0 - 5e-4:
            parts.append("short of the workload (its problems below), which the planner's optimum serves")
        elif gap > 5e-4:
            parts.append(f"{100 * gap:.1f}% below the optimum")
        elif gap < -5e-4 and outside is not None:
            parts.append(f"{-100 * gap:.1f}% above the planner's optimum, which it cannot choose: {outside}")
        elif gap < -5e-4:
            # The planner searches a grid (max_num_seqs 2^k and 3·2^k, its micro-batches, ...).
            parts.append(f"{-100 * gap:.1f}% above the planner's optimum, with a value off its grid")
        else:
            parts.append("at the planner's optimum")
    return ", ".join(parts)


def explain_serving(plan: ServingPlan) -> str:
    """Configuration, per-GPU memory, predicted speed, reasons and the `vllm serve` line."""
    c, perf, w = plan.config, plan.perf, plan.workload
    ep = " + expert parallel" if c.enable_expert_parallel else ""
    head = [
        f"{plan.served_id} on {plan.cluster.describe()}",
        f"workload {w.name}: {w.isl} in / {w.osl} out tokens per request"
        + (f", TTFT <= {w.ttft_ms:g} ms" if w.ttft_ms else "")
        + (f", TPOT <= {w.tpot_ms:g} ms" if w.tpot_ms else ""),
        f"objective {plan.objective}; {_solver_line(plan.solver, _serving_outside(plan))}",
        "",
        f"engine: {ENGINE_NAMES[plan.engine]}",
        f"config: {c.replicas} replica(s) x tp={c.tp} pp={c.pp}{ep} = {c.gpus} GPUs; "
        f"max_num_seqs={c.max_num_seqs}, "
        f"max_model_len={c.max_model_len}, "
        + (f"gpu_memory_utilization={c.gpu_memory_utilization}, " if plan.engine == "vllm" else "")
        + f"kv_cache_dtype={c.kv_cache_dtype}"
        + (", enforce_eager" if c.enforce_eager else "")
        + (f", quantization={c.quantization}" if c.quantization else ""),
        "",
        *_memory_lines(plan),
        "",
        "predicted performance (float cost model):",
        _table(
            ("metric", "value"),
            [
                ("output tokens/s (all replicas)", perf.output_tokens_per_s),
                ("output tokens/s per GPU", perf.output_tokens_per_s_per_gpu),
                ("running batch per replica", perf.batch_size),
                ("TTFT ms", perf.ttft_ms),
                (
                    "step ms (one-token outputs: no TPOT)"
                    if w.osl == 1 and not w.osl_cv and not w.osl_quantiles
                    else "TPOT ms",
                    perf.tpot_ms,
                ),
                ("$ per million output tokens", perf.usd_per_million_tokens),
            ],
        ),
    ]
    if plan.at_request_rate is not None:
        head += ["", rate_line(plan.at_request_rate)]
    if plan.benchmark is not None:
        b = plan.benchmark
        head += [
            "",
            f"finite benchmark ({b.title}, perf/serving_load.py):",
            _table(("metric", "value"), b.report_rows()),
        ]
    head += _reasons(plan.binding, plan.runner_up, plan.problems, plan.engine)
    if plan.engine == "vllm":
        launch = plan.vllm_launch
        # the environment the lines need (`launch.env`, as `--json` has it) before each line a user
        # copies, as the disaggregated and whole-cluster launch lines carry theirs
        env = "".join(f"{k}={shlex.quote(v)} " for k, v in launch.env.items())
        head += ["", "vllm serve:", "  " + env + plan.vllm_command]
        if launch.nodes > 1 or len(launch.commands[0]) > 1:
            head += _node_blocks(
                [
                    [f"  node {i}:"] + [f"    {x}" if x.startswith("#") else f"    {env}{x}" for x in lines]
                    for i, lines in enumerate(launch.commands)
                ]
            )
            head += [f"  note: {n}" for n in launch.notes]
        else:  # one line: the notes to read before launching (a model without an id, ...) still show
            head += [f"  note: {n}" for n in launch.notes if n in plan.launch_notes]
    else:
        art = plan.engine_artifacts()
        head += ["", f"{ENGINE_NAMES[plan.engine]}:"]
        nodes = art.get("node_commands", [art["command"]])
        if len(nodes) > 1:
            head += _node_blocks([[f"  node rank {i}:", f"    {line}"] for i, line in enumerate(nodes)])
        else:
            head.append("  " + art["command"])
        if "extra_options_yaml" in art:
            head += [f"  {art['extra_options_file']}:"] + [
                "    " + x for x in art["extra_options_yaml"].splitlines()
            ]
        head += [f"  note: {n}" for n in art["notes"]]
    if plan.engines:
        head += ["", explain_engines(plan)]
    return "\n".join(head)


NODES_SHOWN = 8
"""Nodes whose launch lines a text plan prints in full; past that the first two and the last."""


def _node_blocks(blocks: list[list[str]]) -> list[str]:
    """Each node's launch lines, all of them up to `NODES_SHOWN` nodes; past that the first two, one
    line saying how many are left out (they differ from their neighbours only in ranks), and the last:
    10,000 nodes printed 20,000 lines. `--json` has every node's."""
    if len(blocks) <= NODES_SHOWN:
        return [line for block in blocks for line in block]
    left = len(blocks) - 3
    said = f"  ... {left:,} more nodes, launched as their neighbours with their own ranks (--json has all)"
    return [*blocks[0], *blocks[1], said, *blocks[-1]]


def explain_engines(plan: ServingPlan) -> str:
    """The side-by-side table and one line per other engine saying why it lost or tied. Throughput and
    the KV tokens are the whole deployment's (all its replicas' pools), the running batch one replica's
    (what its max_num_seqs / running cap limits)."""
    rows: list[tuple[Any, ...]] = []
    for best in plan.engines:
        mark = " *" if best.engine == plan.engine else ""
        if best.plan is None:
            rows.append((best.name + mark, "-", "-", "-", "-", "-", "-", "-"))
            continue
        p, c = best.plan.perf, best.plan.config
        rows.append(
            (
                best.name + mark,
                p.output_tokens_per_s,
                p.output_tokens_per_s_per_gpu,
                p.ttft_ms,
                p.tpot_ms,
                f"{kv_tokens_total(best.plan):,}",
                f"{p.batch_size:g} ({p.batch_limit})",
                f"{c.replicas}x tp{c.tp} pp{c.pp}" + (" ep" if c.enable_expert_parallel else ""),
            )
        )
    lines = [
        "Engines compared (each engine's best plan, same request; * = the plan above, "
        f"{ENGINE_NAMES[plan.engine]}):",
        _table(
            (
                "engine",
                "tokens/s",
                "tokens/s/GPU",
                "TTFT ms",
                "TPOT ms",
                "KV tokens, all replicas",
                "batch per replica",
                "shape",
            ),
            rows,
        ),
        "why:",
    ]
    for best in plan.engines:
        if best.engine == plan.engine:
            continue
        text = best.note if best.plan is None else why_engine(plan, best.plan)
        lines.append(f"  - {best.name}: {text}")
    return "\n".join(lines)


def _memory_lines(plan: ServingPlan) -> list[str]:
    mem = plan.memory
    if plan.engine_eval is not None:
        kv = plan.engine_eval.memory
        return [
            f"memory per GPU ({ENGINE_NAMES[plan.engine]}: {kv.rule}):",
            _table(
                ("component", "GiB"),
                [
                    ("total", kv.total_gib),
                    ("weights", kv.weights_gib),
                    ("activation peak (vLLM profile of the same tensors)", mem.activation_peak_gib),
                    ("non-torch (CUDA context, NCCL)", mem.non_torch_gib),
                    ("KV pool", kv.kv_cache_gib),
                ],
            ),
            f"KV pool: {kv.kv_cache_tokens:,} tokens in blocks of {kv.block_size}; at most {kv.max_running} "
            f"running requests, {kv.step_tokens} tokens per scheduler step",
        ]
    return [
        "memory per GPU (vLLM accounting, tightest GPU):",
        _table(
            ("component", "GiB"),
            [
                ("budget (total x utilization)", mem.budget_gib),
                ("weights", mem.weights_gib),
                ("activation peak (profile run)", mem.activation_peak_gib),
                ("non-torch (CUDA context, NCCL)", mem.non_torch_gib),
                ("CUDA graphs", mem.cuda_graph_gib),
                ("KV cache", mem.kv_cache_gib),
            ],
        ),
        f"KV cache: {mem.kv_cache_tokens:,} tokens, max concurrency {mem.max_concurrency:.1f} requests "
        f"at {mem.max_model_len} tokens"
        + (
            f" (--kv-cache-dtype {mem.kv_cache_dtype} is stored as {mem.kv_cache_dtype_stored})"
            if mem.kv_cache_dtype_stored != mem.kv_cache_dtype
            else ""
        ),
    ]


def _reasons(
    binding: Sequence[str], runner_up: RunnerUp | None, problems: Sequence[str], engine: str | None = None
) -> list[str]:
    """Problems, binding constraints and the runner-up; `engine`: the plan's serving engine (None:
    training), the runner-up's named when it differs (a vLLM runner-up of a TensorRT-LLM plan too)."""
    out: list[str] = []
    if problems:
        out += ["", "problems:"] + [f"  - {p}" for p in problems]
    if binding:
        out += ["", "why (binding constraints):"] + [f"  - {b}" for b in binding]
    if runner_up:
        cfg = runner_up.config.model_dump()
        shape = ", ".join(f"{k}={cfg[k]}" for k in ("tp", "pp", "dp", "cp", "ep", "replicas") if k in cfg)
        shape += "".join(f", {x}" for x in _training_extras(cfg))
        if runner_up.engine is not None and runner_up.engine != engine:  # the plan's engine goes unsaid
            shape = f"{ENGINE_NAMES[runner_up.engine]}, {shape}"
        out += ["", f"runner-up ({shape}): {runner_up.why_lost}"]
    return out


def _training_extras(cfg: dict[str, Any]) -> list[str]:
    """What a training layout's tp/pp/dp/cp/ep do not say: an expert split other than tp (`etp`;
    None is tp) and how context-parallel ranks exchange (`cp_comm`)."""
    out = []
    if cfg.get("etp") is not None and cfg["etp"] != cfg["tp"]:
        out.append(f"etp={cfg['etp']}")
    if cfg.get("cp", 1) > 1 and "cp_comm" in cfg:
        out.append(f"cp_comm={cfg['cp_comm']}")
    return out


_TRAINING_PERF_ROWS: tuple[tuple[str, str], ...] = (
    ("step_time_s", "one optimizer step"),
    ("tokens_per_s", "whole job"),
    ("tokens_per_s_per_gpu", ""),
    ("tflops_per_gpu", "model FLOPs, non-causal attention over each layer's context (Narayanan 2021)"),
    (
        "megatron_log_tflops_per_gpu",
        "causal s x s / 2 on every softmax / MLA layer, no windows: what Megatron-LM core_v0.12.0+ logs",
    ),
    ("mfu", "tflops_per_gpu / dense peak"),
    ("hfu", "tflops_per_gpu with recomputation / dense peak"),
)
"""The training plan's performance rows: `TrainingPerf` field and what it counts
(perf/training.py `model_flops_per_step`, `megatron_log_flops_per_step`)."""


def explain_training(plan: TrainingPlan) -> str:
    """Layout, per-stage memory, step time and MFU, reasons, DeepSpeed and Megatron artifacts."""
    c, mem, perf = plan.config, plan.memory, plan.perf
    w = plan.workload
    stages = mem.stages
    lines = [
        f"{plan.served_id} training on {plan.cluster.describe()}",
        f"seq_len {w.seq_len}, global batch {w.global_batch} sequences "
        f"({w.seq_len * w.global_batch:,} tokens)",
        f"objective {plan.objective}; {_solver_line(plan.solver, _training_outside(plan))}",
        *(
            ["framework: DeepSpeed (the ZeRO stages, even stages and one recompute mode it runs)"]
            if plan.framework == "deepspeed"
            else []
        ),
        "",
        f"config: tp={c.tp} pp={c.pp} dp={c.dp} cp={c.cp} ep={c.ep} "
        + "".join(f"{x} " for x in _training_extras(c.model_dump()))
        + f"vp={c.vp}; micro-batch {c.micro_batch} x "
        f"grad-accum {c.grad_accum}; ZeRO {c.zero.value}; recompute "
        + ("/".join(r.value for r in c.stage_recompute) if c.stage_recompute else c.recompute.value)
        + f"; layers per stage {list(c.stage_layers(plan.model.num_layers))}",
        "",
        f"memory per GPU by pipeline stage (usable {mem.usable_gib:.1f} GiB):",
        _table(
            ("stage", "layers", "weights", "grads", "optim", "activ", "logits", "frag", "total GiB"),
            [
                (
                    s.stage,
                    s.layers,
                    s.weights_gib,
                    s.gradients_gib,
                    s.optimizer_gib,
                    s.activations_gib,
                    s.logits_gib,
                    s.fragmentation_gib,
                    s.total_gib,
                )
                for s in stages
            ],
        ),
        "",
        "predicted performance:",
        _table(
            ("metric", "value", "counted as"),
            [(k, getattr(perf, k), note) for k, note in _TRAINING_PERF_ROWS],
            left=(0, 2),
        ),
    ]
    lines += _training_time_lines(plan)
    lines += _reasons(plan.binding, plan.runner_up, plan.problems)
    lines += [
        "",
        "Megatron-LM:",
        "  " + _safe(lambda: plan.torchrun_command),
        *(f"  note: {n}" for n in plan.megatron_notes),
        "",
        "DeepSpeed:",
        "  " + _safe(lambda: plan.deepspeed_command),
        "  ds_config: " + _safe(lambda: _json(plan.deepspeed_config)),
        *(f"  note: {n}" for n in plan.deepspeed_notes),
    ]
    return "\n".join(lines)


VLLM_KV_BOUND_CAP = 1024
"""The largest KV-bound max_num_seqs the serving planner offers on vLLM, its grid's top
(`solvers.serving.space.kv_bound_cap`, which this layer may not import; a test keeps the two equal)."""


def _kv_bound_cap(engine: str, pp: int) -> int:
    """`solvers.serving.space.kv_bound_cap`: SGLang's most request slots, TensorRT-LLM's bare
    `max_batch_size` × pp, vLLM its grid's top."""
    if engine == "sglang":
        from autoparallel.memory.sglang import MAX_REQUEST_SLOTS

        return MAX_REQUEST_SLOTS
    if engine == "trtllm":
        from autoparallel.memory.trtllm import trtllm_default_max_num_seqs

        return trtllm_default_max_num_seqs(pp)
    return VLLM_KV_BOUND_CAP


def _serving_outside(plan: ServingPlan) -> str | None:
    """What keeps an evaluated serving configuration that beats the planner's optimum out of the
    planner's choices when it is not a value off its grid: a KV cache that holds fewer sequences than
    max_num_seqs, N, where the planner cannot plan max_num_seqs N itself. It plans each shape's
    KV-bound batch (the most its cache holds at the running context, so that the running batch never
    preempts: solvers/serving/space.py `_kv_bound`) up to the engine's cap (`_kv_bound_cap`), on
    TensorRT-LLM the most that pp divides; None otherwise (the batch it offers runs the same)."""
    gap = plan.solver.gap_to_optimum
    if plan.solver.status != "EVALUATED" or gap is None or gap >= -5e-4:
        return None
    c, perf = plan.config, plan.perf
    b = c.max_num_seqs
    if perf.batch_limit != "kv_cache" or perf.batch_size >= b:
        return None
    held = int(perf.batch_size)
    if plan.engine == "trtllm" and c.pp > 1 and held % c.pp:
        return (
            f"its KV cache holds {held} of max_num_seqs {b} running, and TensorRT-LLM runs a multiple of "
            f"pp {c.pp} (max_batch_size × pp): the planner plans the most the cache holds that pp divides, "
            f"{held - held % c.pp}"
        )
    cap = _kv_bound_cap(plan.engine, c.pp)
    if held > cap:
        return (
            f"its KV cache holds {held:,} of max_num_seqs {b:,} running, more than the {cap:,} the planner "
            f"plans at most on {ENGINE_NAMES[plan.engine]} (it plans a KV-bound batch up to that cap)"
        )
    return None


def _training_outside(plan: TrainingPlan) -> str | None:
    """What keeps an evaluated training configuration that beats the planner's optimum out of the
    planner's choices, in words: the rules that exclude it, named as the planner names them
    (zero_pipeline: ZeRO-2/3 only at pp = 1, solvers/training/space.py ZERO_WITHOUT_PIPELINE;
    framework_zero_stages: `validation.zero_stage_problem`), and the knobs it never sets (virtual
    stages, EP overlap, a capacity factor), fewer GPUs than the cluster's (the optimum fills it); else
    a value off its grid of degrees and micro-batches, or its memory margins. None unless `plan` is
    such an evaluation."""
    gap = plan.solver.gap_to_optimum
    if plan.solver.status != "EVALUATED" or gap is None or gap >= -5e-4:
        return None
    from autoparallel.configs import ZeroStage
    from autoparallel.validation import zero_stage_problem

    c = plan.config
    out: list[str] = []
    if c.pp > 1 and c.zero in (ZeroStage.GRADIENTS, ZeroStage.PARAMETERS):
        out.append(
            f"rule zero_pipeline excludes ZeRO {c.zero.value} with pp={c.pp} (DeepSpeed's PipelineEngine "
            "refuses it; Megatron-LM documents Megatron-FSDP without pipeline parallelism)"
        )
    problem = zero_stage_problem(plan.framework, plan.model, c.zero, bf16_grads=c.precision == "fp16")
    if problem is not None:
        out.append(f"rule framework_zero_stages excludes {problem}")
    world = plan.cluster.world_size
    if c.world_size < world:  # the optimum it is compared with fills the cluster
        out.append(
            f"it uses {c.world_size} of the cluster's {world} GPUs, and the planner fills the cluster unless "
            f"told otherwise (`plan --train --world-sizes {c.world_size},{world}` weighs both)"
        )
    unset = [f"vp={c.vp}"] if c.vp > 1 else []
    if c.ep_overlap:
        unset.append("ep_overlap")
    if c.moe_capacity_factor is not None:
        unset.append(f"capacity factor {c.moe_capacity_factor:g}")
    if unset:
        out.append(f"it never sets {', '.join(unset)}")
    return "; ".join(out) or "a value off its grid (degrees, micro-batches) or past its memory margins"


def _training_time_lines(plan: TrainingPlan) -> list[str]:
    """Step time by component, per-stage time, and time / cost to train when a token budget is given."""
    perf, out = plan.perf, []
    step = perf.step_time_s
    parts = perf.components()
    out += [
        "",
        "step time by component (slowest stage):",
        _table(
            ("component", "s per step", "share"),
            [(k, float(v), f"{100 * float(v) / step:.1f}%" if step else "-") for k, v in parts.items()],
        ),
    ]
    if len(perf.stages) > 1:
        rows = [
            (s.stage, s.layers, s.microbatch_s, s.busy_s, s.idle_s, s.dp_comm_exposed_s, s.optimizer_s)
            for s in perf.stages
        ]
        header = ("stage", "layers", "micro-batch", "busy", "idle", "dp exposed", "optimizer")
        out += ["", "time per pipeline stage (one GPU, s):", _table(header, rows)]
    if plan.cost is not None:
        c = plan.cost
        out += [
            "",
            f"to train {c.tokens:,.0f} tokens ({c.steps:,} step{'s' * (c.steps != 1)}): "
            f"{c.time_s / 86400:,.2f} days ({c.time_s / 3600:,.1f} h), "
            f"{c.gpu_hours:,.{0 if c.gpu_hours >= 10 else 2}f} GPU-hours, "
            f"${c.usd:,.{0 if c.usd >= 100 else 2}f}",
        ]
    return out


def _safe(build: Any) -> str:
    try:
        return str(build())
    except ValueError as exc:
        return f"(not expressible: {exc})"


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj)
