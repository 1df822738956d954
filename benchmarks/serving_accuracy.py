"""Serving cost model vs published benchmarks (shared/reference/inference_benchmarks_dev.csv).

    uv run python benchmarks/serving_accuracy.py [--csv PATH] [--rows]

For every row whose model, GPU and precision the planner knows, predict with the float model
(`perf.serving.evaluate_serving`) at the row's own settings and compare:

- vLLM rows with a client concurrency cap (closed loop): output tokens/s, TPOT and TTFT at that
  concurrency;
- vLLM rows that send every prompt at once (`request_rate inf`): a burst, not a steady state. The
  running batch is estimated by Little's law (measured output tokens/s × mean ITL) and the predicted
  decode step at that batch is compared with the mean ITL; throughput is listed but the steady-state
  model cannot reproduce the burst's ramp and long ShareGPT tail;
- TensorRT-LLM offline rows (`trtllm-bench`, all requests queued, fixed lengths): steady state at
  the largest batch the KV cache holds. They measure another engine: the ratio is the engine gap,
  reported separately and not used to fit the vLLM factors.

Rows are skipped with a reason when the model is not in the zoo or the precision is not modelled
(NVFP4 / FP4 checkpoints). Prints per-group error figures (median and mean |error|, geometric-mean
ratio) and, with --rows, every row.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from autoparallel.configs import ServingConfig
from autoparallel.errors import AutoParallelError
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.models import ModelSpec, load_model
from autoparallel.perf.serving import ReplicaShape, evaluate_serving, replica_step_times
from autoparallel.workload import Serving

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "reference" / "inference_benchmarks_dev.csv"
GPUS = {"H100-SXM-80GB": "H100-SXM", "H200-SXM-141GB": "H200", "B200-180GB": "B200", "GB200 (NVL72)": "GB200"}
MODELS = {
    "deepseek-ai/DeepSeek-V3.2": "deepseek-ai/DeepSeek-V3",  # V3 architecture + a sparse-attention indexer
    "deepseek-ai/DeepSeek-V3.2 (local copy)": "deepseek-ai/DeepSeek-V3",
    "Qwen/Qwen3-8B-FP8": "Qwen/Qwen3-8B",
}


@dataclass
class Result:
    row: str
    group: str
    what: str
    predicted: float
    measured: float
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.predicted / self.measured


def _model(name: str) -> ModelSpec:
    return load_model(MODELS.get(name, name).replace("-Instruct", "").strip())


def _quantization(row: dict[str, str], model: ModelSpec) -> str | None:
    q = row["quantization"].lower()
    if "fp4" in q:
        raise LookupError("FP4 checkpoints are not modelled")
    if "fp8" in q and model.quantization is None:
        return "fp8"
    return None


def _engine(row: dict[str, str]) -> str:
    return "vLLM" if row["engine"] == "vLLM" else "SGLang" if row["engine"] == "SGLang" else "TensorRT-LLM"


def predict(row: dict[str, str]) -> list[Result]:
    """Predictions for one row (empty when the row's kind has nothing comparable)."""
    model = _model(row["model"])
    gpu = get_gpu(GPUS[row["gpu_type"]])
    tp, pp = int(row["tp"] or 1), int(row["pp"] or 1)
    dp = int(row["dp"]) if row["dp"] else 1
    ep = "expert-parallel" in row["ep"] or "TP" in row["ep"] or (row["ep"].isdigit() and int(row["ep"]) > 1)
    if tp == 1 and ep and dp == 1:
        dp = int(row["num_gpus"])
    nodes = Cluster.from_shape(nodes=1, gpus_per_node=int(row["num_gpus"]), gpu=gpu)
    isl, osl = round(float(row["isl"])), round(float(row["osl"]))
    engine, rid = _engine(row), row["row_id"]
    if "speculative" in row["notes"] or "EAGLE" in row["notes"]:
        raise LookupError("speculative decoding is not modelled")
    offline = row["benchmark_type"].startswith("offline")
    mml = min(model.max_position_embeddings, 32768 if not offline else max(isl + osl, 2048))
    seqs = 2048 if offline else 1024
    util = 0.95 if offline else 0.92
    config = ServingConfig(tp=tp, pp=pp, replicas=dp, enable_expert_parallel=ep and model.is_moe,
                           max_num_seqs=seqs, max_model_len=mml, gpu_memory_utilization=util,
                           quantization=_quantization(row, model))
    conc = int(row["max_concurrency"]) if row["max_concurrency"] else None
    measured_tps = float(row["output_tok_s_total"])
    if engine == "TensorRT-LLM" and offline:
        w = Serving(isl=isl, osl=osl)
        est = evaluate_serving(model, nodes, config, w)
        return [Result(rid, "TensorRT-LLM offline", "output tok/s", est.perf.output_tokens_per_s,
                       measured_tps, f"batch {est.perf.batch_size:g} ({est.perf.batch_limit})")]
    if conc is not None:
        w = Serving(isl=isl, osl=osl, concurrency=conc)
        est = evaluate_serving(model, nodes, config, w)
        group = f"{engine} concurrency-capped"
        out = [Result(rid, group, "output tok/s", est.perf.output_tokens_per_s, measured_tps),
               Result(rid, group, "TPOT ms", est.perf.tpot_ms, float(row["mean_tpot_ms"]))]
        if row["mean_ttft_ms"]:
            out.append(Result(rid, group, "TTFT ms", est.perf.ttft_ms, float(row["mean_ttft_ms"])))
        return out
    # Burst: all prompts at once. Little's law gives the mean running batch from throughput × ITL.
    itl = float(row["mean_itl_ms"]) / 1e3
    batch = measured_tps * itl
    shape = ReplicaShape.of(config)
    per_replica = batch / config.replicas
    times = replica_step_times(model, nodes, shape, batch=per_replica, isl=isl, osl=osl, batched_tokens=8192)
    group = f"{engine} burst"
    w = Serving(isl=isl, osl=osl, concurrency=int(row["num_prompts"] or 1000))
    est = evaluate_serving(model, nodes, config, w)
    return [Result(rid, group, "ITL ms (Little batch)", times.decode_s * 1e3, itl * 1e3,
                   f"batch {per_replica:.0f}/replica"),
            Result(rid, group + " (not steady)", "output tok/s", est.perf.output_tokens_per_s, measured_tps,
                   f"steady-state batch {est.perf.batch_size:g}; a burst with a ShareGPT tail")]


def summarize(results: list[Result]) -> list[str]:
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.group, r.what), []).append(r)
    lines = [f"{'group':34s} {'metric':24s} {'n':>3s} {'median |err|':>13s} {'mean |err|':>11s} "
             f"{'geo-mean ratio':>15s}"]
    for (group, what), rs in sorted(groups.items()):
        errs = [abs(r.ratio - 1) for r in rs]
        geo = math.exp(statistics.fmean(math.log(r.ratio) for r in rs))
        lines.append(f"{group:34s} {what:24s} {len(rs):3d} {statistics.median(errs):12.0%} "
                     f"{statistics.fmean(errs):10.0%} {geo:15.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--rows", action="store_true", help="print every row")
    args = parser.parse_args(argv)
    if not args.csv.exists():
        print(f"reference data not found: {args.csv}", file=sys.stderr)
        return 1
    results: list[Result] = []
    skipped: dict[str, int] = {}
    with args.csv.open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                results += predict(row)
            except (LookupError, AutoParallelError) as exc:
                reason = str(exc).split(";")[0][:70]
                skipped[reason] = skipped.get(reason, 0) + 1
    if args.rows:
        for r in results:
            print(f"{r.row} {r.group:34s} {r.what:24s} pred {r.predicted:10.1f} meas {r.measured:10.1f} "
                  f"ratio {r.ratio:5.2f} {r.note}")
    print("\n".join(summarize(results)))
    for reason, n in sorted(skipped.items()):
        print(f"skipped {n:3d}: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
