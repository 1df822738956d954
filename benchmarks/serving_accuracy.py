"""Serving cost model vs published benchmarks (shared/reference/inference_benchmarks_dev.csv).

    uv run python benchmarks/serving_accuracy.py [--csv PATH] [--rows]

Every row whose model, GPU and precision the planner knows is predicted at its own settings, with its
engine's factors (perf/serving_efficiency.py) and memory rule (vLLM's accounting, memory/sglang.py,
memory/trtllm.py), by the kind of benchmark it is:

- **offline** (`trtllm-bench`, every request queued, fixed lengths): the finite-benchmark replay
  (perf/serving_load.py) of the run's request count;
- **burst** (`vllm bench serve --request-rate inf`, ShareGPT prompts all sent at once): the replay
  with ShareGPT's published length shape (`workload.SHAREGPT_ISL_QUANTILES` /
  `SHAREGPT_OSL_QUANTILES`) scaled to the row's mean lengths, so the short requests that set the
  mean TPOT and the ramp-down tail are in it;
- **concurrency-capped** (a client cap of c requests in flight): the steady-state model at batch c.

**Split.** A row is *fit* when its id is named in the `source` of the efficiency factors of its
engine (the rows those factors were chosen on); every other row is *checked*. The split is read from
the factors themselves, so it cannot drift from what was fitted. Both are reported, per engine and
per benchmark kind: the share of rows whose output tokens/s is within 20 %, the median |error|, and the
same for TPOT where the row publishes it.

Rows are skipped with a reason when the model is not in the zoo, the precision is not modelled or the
run uses speculative decoding. FP4 rows (NVIDIA's ModelOpt FP4 releases) run the base model in the
NVFP4 format those releases declare (`NVFP4_CHECKPOINT`).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from autoparallel.configs import ServingConfig
from autoparallel.errors import AutoParallelError
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.memory.serving import serving_memory
from autoparallel.memory.sglang import sglang_server_kv
from autoparallel.memory.trtllm import DEFAULT_CUDA_GRAPH_MAX_BATCH, tokens_per_block, trtllm_kv
from autoparallel.models import ModelSpec, load_model
from autoparallel.models.parse_quant import quant_from_config
from autoparallel.perf.serving import (
    ReplicaShape,
    closed_loop_rates,
    efficiency_for,
    kv_layout,
    step_times_at,
)
from autoparallel.perf.serving_efficiency import ENGINE_EFFICIENCY
from autoparallel.perf.serving_load import BenchmarkRun, run_benchmark
from autoparallel.workload import SHAREGPT_ISL_QUANTILES, SHAREGPT_OSL_QUANTILES, Serving

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "reference" / "inference_benchmarks_dev.csv"
GPUS = {"H100-SXM-80GB": "H100-SXM", "H200-SXM-141GB": "H200", "B200-180GB": "B200", "GB200 (NVL72)": "GB200"}
MODELS = {
    "deepseek-ai/DeepSeek-V3.2 (local copy)": "deepseek-ai/DeepSeek-V3.2",
    "Qwen/Qwen3-8B-FP8": "Qwen/Qwen3-8B",
}
TRTLLM_BENCH_REQUESTS = {
    (128, 128): 30000,
    (128, 2048): 3000,
    (128, 4096): 1500,
    (1000, 2000): 1500,
    (2048, 128): 3000,
    (2048, 2048): 1500,
    (5000, 500): 1500,
    (1000, 1000): 3000,
    (500, 2000): 3000,
    (20000, 2000): 1000,
}
"""trtllm-bench request counts per (ISL, OSL): the `$num_requests` table of TensorRT-LLM's perf-overview
(v1.0 docs, "Preparing a Dataset"), the source of the offline rows."""
PERF_OVERVIEW_CUDA_GRAPH_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096, 8192)
"""`cuda_graph_config.batch_sizes` of the perf-overview's `llm_options.yml`, with `enable_padding: true`:
a decode batch of 1,500 runs as a 2,048 graph."""
TRTLLM_BENCH_DEFAULT_REQUESTS = 3000
"""Request count assumed for an offline shape that table does not list."""
KINDS = ("offline", "burst", "concurrency-capped")
SAME_SERVER = {
    ("I202", "I209"): "SGLang 0.5.6 resolves both lines to one server: DeepSeek NSA forces "
    "--enable-dp-attention on (`_handle_model_specific_adjustments`), then `_handle_data_parallelism` "
    "turns it off at --dp-size 1; only --mem-fraction-static differs (0.896 / 0.880, from the "
    "memory reservation that ran while the flag was still set), and the KV pool binds neither run",
}
"""Rows that measure one engine configuration more than once, with the source that says so: the spread
between them is the reference data's own noise, which no prediction can be closer than."""


def trtllm_bench_settings(
    model: ModelSpec,
    gpu_memory_gib: float,
    tp: int,
    pp: int,
    isl: int,
    osl: int,
    weight_bytes_per_param: float = 1.0,
) -> tuple[int, int]:
    """(max_batch_size, max_num_tokens) that `trtllm-bench throughput` picks when neither is passed,
    as the perf-overview runs do: `bench/build/tuning.py` (`calc_engine_setting`, `finetune_setting`).

    Its own estimate, not the runtime's: the engine is every parameter at 1 byte (FP8 checkpoints;
    0.5 for NVFP4, its `BYTES_PER_ELEM`),
    the KV cache 0.95 of the rest of all GPUs' memory at 2 · layers · max(tp, kv heads) · head size
    bytes (FP8 KV) per token, requests of isl + osl tokens; the batch is that request count rounded
    up (to 32 / 128 / 256, capped at 4,096) and the step budget batch · (1 + isl / osl) rounded up
    (at least 2,048, at most 32,768). Chunked prefill stays off (the runs do not enable it), so
    `get_settings` (`bench/benchmark/utils/general.py`) then raises the budget to the longest prompt
    plus the batch: a 20,000-token prompt with 2,000 output tokens gets 20,000 + 224 tokens, not the
    heuristic's 2,560, and is prefilled whole in one step.
    """
    kv_heads = max(tp, model.num_kv_heads)
    gib_per_token = 2 * model.num_layers * kv_heads * model.head_dim * 1.0 / 2**30
    engine_gib = model.total_params * weight_bytes_per_param / 2**30
    available_gib = gpu_memory_gib * tp * pp - engine_gib
    requests = available_gib * 0.95 / (gib_per_token * (isl + osl))
    raw_bs = min(requests, 4096) / pp
    raw_tokens = min(raw_bs * (1 + isl / osl), 32768)
    if raw_bs < 256:
        max_bs = max(64, 32 * math.ceil(raw_bs / 32))
    elif raw_bs < 1024:
        max_bs = 128 * math.ceil(raw_bs / 128)
    else:
        max_bs = 256 * math.ceil(raw_bs / 256)
    if raw_tokens < 4096:
        max_tokens = max(2048, 256 * math.ceil(raw_tokens / 256))
    elif raw_tokens < 8192:
        max_tokens = 512 * math.ceil(raw_tokens / 512)
    else:
        max_tokens = 1024 * math.ceil(raw_tokens / 1024)
    return max_bs, max(max_tokens, isl + max_bs)


@dataclass
class Result:
    row: str
    engine: str
    kind: str
    split: str
    what: str
    predicted: float
    measured: float
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.predicted / self.measured


def fit_rows(engine: str, arch: str | None = None) -> set[str]:
    """Row ids named in the `source` of `engine`'s factors (ranges like I206-I208 expanded), of every
    GPU architecture or of `arch` only."""
    ids: set[str] = set()
    table = ENGINE_EFFICIENCY.get(engine, {})
    for eff in [e for a, e in table.items() if arch is None or a == arch]:
        for a, b in re.findall(r"\bI(\d{3})(?:-I?(\d{3}))?\b", eff.source):
            lo, hi = int(a), int(b or a)
            ids.update(f"I{i:03d}" for i in range(lo, hi + 1))
    return ids


BLOCK_FP8_CHECKPOINTS = {"Qwen/Qwen3-8B-FP8": "Qwen/Qwen3-32B-FP8"}
"""Qwen's FP8 releases share one format (`quant_method` fp8, `weight_block_size` [128, 128]); a row's
checkpoint outside the zoo takes its weights from the base model and its format from a zoo sibling."""


NVFP4_CHECKPOINT = {
    "quant_method": "modelopt",
    "quant_algo": "NVFP4",
    "kv_cache_quant_algo": "FP8",
    "group_size": 16,
    "exclude_modules": ["lm_head"],
}
"""NVIDIA's ModelOpt FP4 releases (nvidia/*-FP4) as their hf_quant_config.json declares them: NVFP4 in
groups of 16, every linear layer but the LM head (ModelOpt's default), an FP8 KV cache. The rows name
no checkpoint file, so the base model takes this format (taken as given for the MoE routers too)."""


def _model(name: str, quantization: str = "") -> ModelSpec:
    model = load_model(MODELS.get(name, name).replace("-Instruct", "").strip())
    if name in BLOCK_FP8_CHECKPOINTS:
        model = model.model_copy(
            update={"quantization": load_model(BLOCK_FP8_CHECKPOINTS[name]).quantization}
        )
    if "fp4" in quantization.lower():
        nvfp4 = quant_from_config({"quantization_config": NVFP4_CHECKPOINT}, name)
        model = model.model_copy(update={"quantization": nvfp4})
    return model


def _quantization(row: dict[str, str], model: ModelSpec) -> str | None:
    q = row["quantization"].lower()
    if "fp8" in q and model.quantization is None:
        return "fp8"
    return None


def engine_of(row: dict[str, str]) -> str:
    e = row["engine"]
    return "vllm" if e == "vLLM" else "sglang" if e == "SGLang" else "trtllm"


def kind_of(row: dict[str, str]) -> str:
    if row["benchmark_type"].startswith("offline"):
        return "offline"
    return "concurrency-capped" if row["max_concurrency"] else "burst"


def _layout(row: dict[str, str], model: ModelSpec) -> tuple[int, int, bool]:
    """(tp, replicas, expert parallel) of the row: attention-DP / EP rows run one attention replica
    per GPU with the experts sharded over all of them."""
    tp, gpus = int(row["tp"] or 1), int(row["num_gpus"])
    dp = int(float(row["dp"])) if row["dp"] else 1
    ep_text = row["ep"]
    ep = "expert-parallel" in ep_text or (ep_text.isdigit() and int(ep_text) > 1)
    # TensorRT-LLM's perf-overview MoE rows: the table header says TP8 and the runs pass `--ep`; the
    # published llm_options.yml nests `enable_attention_dp` inside `cuda_graph_config`, whose strict
    # schema (`CudaGraphConfig(StrictBaseModel)`) has no such field, so attention DP is not taken as
    # given: attention TP8 and experts EP8 (the rows' "dp_attention" column is empty).
    if row["dp_attention"] == "yes" and dp > 1:
        return 1, gpus, model.is_moe
    if tp == 1 and ep and dp == 1:
        dp = gpus
    return tp, dp, ep and model.is_moe


def _vllm_version(row: dict[str, str]) -> str:
    """The vLLM release a vLLM row ran (its `engine_version`), else the one the planner targets."""
    return row["engine_version"] if engine_of(row) == "vllm" and row["engine_version"] else "0.32"


def _nsa_backends(row: dict[str, str]) -> tuple[str | None, str | None]:
    """The row's SGLang `--nsa-prefill-backend` / `--nsa-decode-backend` (None: not passed)."""

    def flag(name: str) -> str | None:
        found = re.search(rf"--nsa-{name}-backend[ =](\S+)", row["notes"])
        return found.group(1) if found else None

    return flag("prefill"), flag("decode")


def predict(row: dict[str, str], on_run: Callable[[BenchmarkRun], None] | None = None) -> list[Result]:
    """Predictions for one row; `on_run` is handed the replay of a burst or offline row."""
    if any(s in row["notes"] for s in ("speculative", "EAGLE")):
        raise LookupError("speculative decoding is not modelled")
    model = _model(row["model"], row["quantization"])
    gpu = get_gpu(GPUS[row["gpu_type"]])
    engine, kind, rid = engine_of(row), kind_of(row), row["row_id"]
    split = "fit" if rid in fit_rows(engine) else "checked"
    tp, replicas, ep = _layout(row, model)
    pp = int(row["pp"] or 1)
    nodes = Cluster.from_shape(nodes=1, gpus_per_node=int(row["num_gpus"]), gpu=gpu)
    isl, osl = round(float(row["isl"])), round(float(row["osl"]))
    offline = kind == "offline"
    mml = min(model.max_position_embeddings, max(isl + osl, 2048) if offline else 32768)
    # NVIDIA's ModelOpt FP8 checkpoints declare an FP8 KV cache (hf_quant_config.json
    # "kv_cache_quant_algo": "FP8", e.g. reference/model_configs/nvidia__Llama-3.1-70B-Instruct-FP8),
    # which TensorRT-LLM uses.
    kv_dtype = "fp8" if "kv fp8" in row["quantization"] or "ModelOpt" in row["quantization"] else "auto"
    config = ServingConfig(
        tp=tp,
        pp=pp,
        replicas=replicas,
        enable_expert_parallel=ep,
        max_num_seqs=1024,
        max_model_len=mml,
        gpu_memory_utilization=0.9,
        kv_cache_dtype=kv_dtype,
        quantization=_quantization(row, model),
    )
    memory = serving_memory(model, gpu, config)
    if not memory.weights_gib < gpu.memory_bytes / 2**30:
        raise LookupError("weights do not fit")
    measured = float(row["output_tok_s_total"])
    out: list[Result] = []

    def add(what: str, predicted: float, value: str, note: str = "") -> None:
        if value:
            out.append(Result(rid, engine, kind, split, what, predicted, float(value), note))

    if kind == "concurrency-capped":
        conc = int(row["max_concurrency"])
        shape = replace(ReplicaShape.of(config, _vllm_version(row)), engine=engine)
        batch = conc / replicas
        layout = kv_layout(model, gpu, config, Serving(isl=isl, osl=osl))
        # ShareGPT requests (every capped row's dataset): their spread of lengths, as the bursts draw:
        # prompts in the step's prompt tokens, outputs in the running set's context.
        sharegpt = Serving(
            isl=isl, osl=osl, isl_quantiles=SHAREGPT_ISL_QUANTILES, osl_quantiles=SHAREGPT_OSL_QUANTILES
        )
        # A closed loop: each of the c clients sends its next request when the last one has ended,
        # so a slot cycles through the client-seen TTFT (server overhead included) and the decode;
        # the one rule the steady state and the planner price it by (`closed_loop_rates`).
        loop = closed_loop_rates(
            step_times_at(model, nodes, shape, sharegpt, batched_tokens=layout.batched_tokens),
            clients=batch,
            limit=min(batch, float(config.max_num_seqs)),
            osl=osl,
            overhead_s=efficiency_for(gpu, engine).request_overhead_s,
        )
        add("output tok/s", loop.tokens_per_s * replicas, row["output_tok_s_total"])
        add("TPOT ms", loop.times.step_s * 1e3, row["mean_tpot_ms"])
        add("TTFT ms", loop.ttft_s * 1e3, row["mean_ttft_ms"])
        return out
    if offline:
        n = TRTLLM_BENCH_REQUESTS.get((isl, osl), TRTLLM_BENCH_DEFAULT_REQUESTS)
        workload = Serving(isl=isl, osl=osl, num_prompts=n)
    else:
        n = int(float(row["num_prompts"] or 1000))
        workload = Serving(
            isl=isl,
            osl=osl,
            num_prompts=n,
            isl_quantiles=SHAREGPT_ISL_QUANTILES,
            osl_quantiles=SHAREGPT_OSL_QUANTILES,
        )
    engine_kv = None
    if engine == "sglang":
        engine_kv = sglang_server_kv(model, memory, gpu, config, nsa_backends=_nsa_backends(row))
    elif engine == "trtllm" and offline:
        fp4 = model.quantization is not None and model.quantization.method.value == "modelopt_fp4"
        max_bs, max_tokens = trtllm_bench_settings(
            model, gpu.memory_bytes / 2**30, tp, pp, isl, osl, 0.5 if fp4 else 1.0
        )
        engine_kv = trtllm_kv(
            memory,
            gpu,
            free_gpu_memory_fraction=0.95,
            max_batch_size=max_bs,
            max_num_tokens=max_tokens,
            cuda_graph_batch_sizes=PERF_OVERVIEW_CUDA_GRAPH_BATCH_SIZES,
            chunked_prefill=False,
            block_tokens=tokens_per_block(model, gpu),
        )
    elif engine == "trtllm":
        # `trtllm-serve --tp_size 8` and nothing else: TensorRT-LLM's defaults, CUDA graphs to 128,
        # no chunked prefill.
        engine_kv = trtllm_kv(
            memory,
            gpu,
            free_gpu_memory_fraction=0.9,
            cuda_graph_max_batch=DEFAULT_CUDA_GRAPH_MAX_BATCH,
            chunked_prefill=False,
            block_tokens=tokens_per_block(model, gpu),
        )
    run = run_benchmark(
        model,
        nodes,
        config,
        workload,
        memory=memory,
        engine=engine,
        engine_kv=engine_kv,
        vllm_version=_vllm_version(row),
    )
    if on_run is not None:
        on_run(run)
    note = f"peak batch {run.peak_batch}, preempt {run.preemptions}, tail {run.tail_fraction:.0%}"
    add("output tok/s", run.output_tokens_per_s, row["output_tok_s_total"], note)
    add("TPOT ms", run.mean_tpot_ms, row["mean_tpot_ms"])
    add("ITL ms", run.mean_itl_ms, row["mean_itl_ms"])
    add("TTFT ms", run.mean_ttft_ms, row["mean_ttft_ms"])
    assert measured > 0
    return out


def summarize(results: list[Result]) -> list[str]:
    """One line per (engine, kind, split, metric): n, within 20 %, median |err|, geometric-mean ratio."""
    groups: dict[tuple[str, str, str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.engine, r.kind, r.split, r.what), []).append(r)
    lines = [
        f"{'engine':7s} {'kind':19s} {'split':8s} {'metric':13s} {'n':>3s} {'within 20%':>11s} "
        f"{'median |err|':>13s} {'geo-mean ratio':>15s}"
    ]
    for (engine, kind, split, what), rs in sorted(groups.items()):
        errs = [abs(r.ratio - 1) for r in rs]
        within = sum(e <= 0.2 for e in errs)
        geo = math.exp(statistics.fmean(math.log(r.ratio) for r in rs))
        lines.append(
            f"{engine:7s} {kind:19s} {split:8s} {what:13s} {len(rs):3d} {within:5d}/{len(rs):<4d} "
            f"{statistics.median(errs):12.0%} {geo:15.2f}"
        )
    return lines


def engine_totals(results: list[Result], split: str, what: str) -> dict[str, tuple[int, int]]:
    """Per engine: (rows within 20 %, rows) of `what` over the rows of `split`."""
    out: dict[str, tuple[int, int]] = {}
    for r in results:
        if r.split == split and r.what == what:
            ok, n = out.get(r.engine, (0, 0))
            out[r.engine] = (ok + (abs(r.ratio - 1) <= 0.2), n + 1)
    return out


def evaluate_csv(path: Path) -> tuple[list[Result], dict[str, int]]:
    """All predictions of the file and the skip reasons with their counts."""
    results: list[Result] = []
    skipped: dict[str, int] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                results += predict(row)
            except (LookupError, AutoParallelError) as exc:
                reason = str(exc).split(";")[0][:70]
                skipped[reason] = skipped.get(reason, 0) + 1
    return results, skipped


def repeat_spreads(results: list[Result]) -> list[str]:
    """One line per `SAME_SERVER` group and metric: the measured values, their max / min, and whether
    one prediction can be within 20 % of all of them (max / min at most 1.2 / 0.8 = 1.5)."""
    lines = []
    for rows, why in SAME_SERVER.items():
        for what in ("output tok/s", "TPOT ms"):
            measured = {r.row: r.measured for r in results if r.row in rows and r.what == what}
            if len(measured) < 2:
                continue
            spread = max(measured.values()) / min(measured.values())
            shown = " / ".join(f"{row} {value:,.1f}" for row, value in sorted(measured.items()))
            verdict = (
                "one prediction can be within 20 % of all"
                if spread <= 1.5
                else "no one prediction is within 20 % of all"
            )
            lines.append(f"same server, measured twice: {what} {shown} (max / min {spread:.2f}): {verdict}")
        lines.append(f"  why one server: {why}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--rows", action="store_true", help="print every row")
    args = parser.parse_args(argv)
    if not args.csv.exists():
        print(f"reference data not found: {args.csv}", file=sys.stderr)
        return 1
    results, skipped = evaluate_csv(args.csv)
    if args.rows:
        for r in results:
            print(
                f"{r.row} {r.engine:6s} {r.kind:18s} {r.split:7s} {r.what:12s} pred {r.predicted:10.1f} "
                f"meas {r.measured:10.1f} ratio {r.ratio:5.2f} {r.note}"
            )
    print("\n".join(summarize(results)))
    for split in ("fit", "checked"):
        for what in ("output tok/s", "TPOT ms"):
            totals = engine_totals(results, split, what)
            text = ", ".join(f"{e} {ok}/{n}" for e, (ok, n) in sorted(totals.items()))
            print(f"{split:7s} {what:12s} within 20%: {text}")
    print("\n".join(repeat_spreads(results)))
    for reason, n in sorted(skipped.items()):
        print(f"skipped {n:3d}: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
