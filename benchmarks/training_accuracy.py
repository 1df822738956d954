"""Training cost model vs published runs (shared/reference/training_runs_dev.csv).

For each row: build the model (zoo when the id is known, else `gpt_like_spec` from the row's
layers / hidden / heads), the cluster from gpu_type / num_gpus, and the published layout; predict
per-GPU peak memory (every published config must fit) and the utilisation the row reports:
  - MFU (`mfu_pct`, llm-foundry rows: model FLOPs vs the bf16 or fp8 peak);
  - hardware TFLOP/s (Narayanan et al. 2021 rows: their count includes recomputation);
  - model TFLOP/s (NeMo rows: `tflops_per_gpu`, model FLOPs);
  - tokens/s/GPU where nothing else is published (DeepSeek-V3).
Relative error = predicted / published − 1; the summary gives the fraction within ±20 %.

Usage: uv run python benchmarks/training_accuracy.py [path/to/training_runs_dev.csv]
"""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from autoparallel.configs import Recompute, TrainingConfig, ZeroStage
from autoparallel.hardware import Cluster, get_gpu
from autoparallel.memory.margins import MemoryConfig
from autoparallel.memory.training import gpt_like_spec, training_memory
from autoparallel.models.spec import ModelSpec
from autoparallel.perf.training import training_perf

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "training_runs_dev.csv"
WITHIN = 0.20

# Architectures the rows name without layers/hidden/heads, from the public configs (NeMo 24.07
# recipes `nemo/collections/llm/gpt/model/*.py`, llm-foundry `scripts/train/yamls/pretrain/mpt-*.yaml`,
# Meta's Llama 2 / 3 config.json): (layers, hidden, heads, kv_heads, ffn, vocab, gated, bias, positions).
_SHAPES: dict[str, tuple[int, int, int, int, int, int, bool, bool, bool]] = {
    "GPT3-5B": (24, 4096, 32, 32, 16384, 50304, False, True, True),
    "GPT3-20B": (44, 6144, 48, 48, 24576, 50304, False, True, True),
    "GPT3-175B": (96, 12288, 96, 96, 49152, 50304, False, True, True),
    "Nemotron-8B": (32, 4096, 32, 32, 16384, 256000, False, False, False),
    "Nemotron-22B": (40, 6144, 48, 8, 24576, 256000, False, False, False),
    "Nemotron-340B": (96, 18432, 96, 8, 73728, 256000, False, False, False),
    "LLAMA2-7B": (32, 4096, 32, 32, 11008, 32000, True, False, False),
    "LLAMA2-13B": (40, 5120, 40, 40, 13824, 32000, True, False, False),
    "LLAMA2-70B": (80, 8192, 64, 8, 28672, 32000, True, False, False),
    "LLAMA3-8B": (32, 4096, 32, 8, 14336, 128256, True, False, False),
    "LLAMA3-70B": (80, 8192, 64, 8, 28672, 128256, True, False, False),
    "MPT-125m": (12, 768, 12, 12, 3072, 50368, False, False, False),
    "MPT-350m": (24, 1024, 16, 16, 4096, 50368, False, False, False),
}
_ZOO_IDS = {
    "LLAMA2-7B": "meta-llama/Llama-2-7b-hf",
    "LLAMA2-13B": "meta-llama/Llama-2-13b-hf",
    "LLAMA2-70B": "meta-llama/Llama-2-70b-hf",
    "LLAMA3-8B": "meta-llama/Meta-Llama-3-8B",
    "LLAMA3-70B": "meta-llama/Meta-Llama-3-70B",
    "DeepSeek-V3": "deepseek-ai/DeepSeek-V3",
}
# Network per GPU, Gbit/s: Selene and MosaicML's A100 clusters 8 × 200 Gb/s HDR per node; DGX H100 and
# DeepSeek's H800 nodes 8 × 400 Gb/s.
_IB_GBITPS = {"ampere": 200, "hopper": 400}


@dataclass(frozen=True)
class RowResult:
    """One row's prediction."""

    row_id: str
    model: str
    metric: str
    published: float
    predicted: float
    peak_gib: float
    """Predicted per-GPU peak, allocated bytes (no margins), GiB."""
    memory_gib: float
    """The GPU's memory, GiB."""
    fits_planned: bool
    """Fits under the project's default MemoryConfig margins (what the planner would accept)."""

    @property
    def fits(self) -> bool:
        """The predicted peak fits the GPU's memory (the published run did)."""
        return self.peak_gib <= self.memory_gib

    @property
    def rel_error(self) -> float:
        """predicted / published − 1."""
        return self.predicted / self.published - 1.0


@dataclass(frozen=True)
class Skipped:
    """A row not evaluated, and why."""

    row_id: str
    reason: str


def _int(text: str, default: int) -> int:
    return int(float(text)) if text.strip() else default


def _base_name(model: str) -> str:
    return re.sub(r"\s*\(.*\)$", "", model).strip()


def _zoo_spec(name: str) -> ModelSpec | None:
    zoo_id = _ZOO_IDS.get(name)
    if zoo_id is None:
        return None
    try:
        from autoparallel.models.zoo import find_entry
    except ImportError:
        return None
    entry = find_entry(zoo_id)
    return None if entry is None else entry.spec()


def build_model(row: dict[str, str]) -> ModelSpec | None:
    """The row's model: zoo, else a known public shape, else GPT-like from the row's own columns."""
    name = _base_name(row["model"])
    name = "DeepSeek-V3" if name.startswith("DeepSeek-V3") else name
    spec = _zoo_spec(name)
    if spec is not None:
        return spec
    seq = _int(row["seq_len"], 2048)
    if name in _SHAPES:
        layers, h, a, kv, f, vocab, gated, bias, pos = _SHAPES[name]
        return gpt_like_spec(
            layers,
            h,
            a,
            vocab,
            seq,
            ffn=f,
            kv_heads=kv,
            gated=gated,
            bias=bias,
            learned_positions=pos,
            tie_embeddings=pos,
            name=name,
        )
    if not (row["layers"] and row["hidden"] and row["heads"]) or "moe" in row["model"].lower():
        return None
    layers, h, a = _int(row["layers"], 0), _int(row["hidden"], 0), _int(row["heads"], 0)
    if name.startswith("MPT"):  # llm-foundry MPT: no biases, ALiBi (no position table), tied, vocab 50368
        return gpt_like_spec(layers, h, a, 50368, seq, bias=False, learned_positions=False, name=name)
    return gpt_like_spec(layers, h, a, 51200, seq, name=name)  # Megatron GPT: vocab 51200 (Narayanan §5.1)


def _gpu_name(gpu_type: str) -> str:
    return re.sub(r"\s*\(.*\)$", "", gpu_type).strip()


def build_cluster(row: dict[str, str]) -> Cluster:
    """Nodes of 8 GPUs (fewer when the run used fewer), network per the GPU generation."""
    gpu = get_gpu(_gpu_name(row["gpu_type"]))
    n = _int(row["num_gpus"], 8)
    per_node = min(n, 8)
    return Cluster.parse(f"{n // per_node}x{per_node}x{gpu.name},ib={_IB_GBITPS.get(gpu.arch, 400)}")


def _zero(text: str) -> ZeroStage:
    t = text.lower()
    if "zero-3" in t or "full_shard" in t:
        return ZeroStage.PARAMETERS
    if "shard_grad_op" in t or "zero-2" in t:
        return ZeroStage.GRADIENTS
    if "zero-1" in t:
        return ZeroStage.OPTIMIZER
    if t.startswith("none"):
        return ZeroStage.NONE
    # NeMo 24.07's "distributed optimizer" is Apex DistributedFusedAdam: bf16 gradient buckets and fp32
    # states sharded over dp (with bf16 parameter remainders): 4 + ~12/d bytes per parameter, ZeRO-1's.
    return ZeroStage.OPTIMIZER


def _recompute(row: dict[str, str]) -> Recompute:
    t = row["recompute"].lower()
    if "2104.04473" in row["source_url"]:
        return Recompute.FULL  # Narayanan et al. §5: activation recomputation in all runs
    if t.startswith("full"):
        return Recompute.FULL
    if t.startswith("none"):
        return Recompute.NONE
    return Recompute.SELECTIVE


def build_config(row: dict[str, str], cluster: Cluster) -> TrainingConfig:
    """The published layout; missing degrees are 1 (dp: the rest of the GPUs)."""
    tp, pp = _int(row["tp"], 0), _int(row["pp"], 0)
    if not tp and "2104.04473" in row["source_url"]:
        tp, pp = 8, 12  # Narayanan et al. Table 2 PTD-P: model-parallel size 96 = TP 8 × PP 12 (row notes)
    tp, pp = tp or 1, pp or 1
    cp, ep, vp = _int(row["cp"], 1), _int(row["ep"], 1), _int(row["vp"], 1)
    dp = _int(row["dp"], 0) or cluster.world_size // (tp * pp * cp)
    layers = _int(row["layers"], 0)
    if vp > 1 and layers and layers % (pp * vp):
        vp = 1
    return TrainingConfig(
        tp=tp,
        pp=pp,
        dp=dp,
        cp=cp,
        ep=ep,
        vp=vp,
        micro_batch=_int(row["micro_batch"], 1),
        global_batch=_int(row["global_batch"], dp),
        seq_len=_int(row["seq_len"], 2048),
        zero=_zero(row["zero_or_sharding"]),
        recompute=_recompute(row),
        sequence_parallel="2104.04473" not in row["source_url"],
        precision="fp8" if "fp8" in row["precision"].lower() else "bf16",
    )


def _published(row: dict[str, str]) -> tuple[str, float] | None:
    if "2104.04473" in row["source_url"] and row["tflops_per_gpu"]:
        return "hw_tflops", float(row["tflops_per_gpu"])
    if row["mfu_pct"]:
        return "mfu", float(row["mfu_pct"]) / 100.0
    if row["tflops_per_gpu"]:
        return "model_tflops", float(row["tflops_per_gpu"])
    if row["tokens_per_s_per_gpu"]:
        return "tokens_per_s_per_gpu", float(row["tokens_per_s_per_gpu"])
    return None


def evaluate_row(row: dict[str, str]) -> RowResult | Skipped:
    """Predict one row."""
    rid = row["row_id"]
    if "lora" in row["model"].lower():
        return Skipped(rid, "LoRA fine-tuning (frozen base weights) is not modelled")
    published = _published(row)
    if published is None:
        return Skipped(rid, "no throughput published")
    model = build_model(row)
    if model is None:
        return Skipped(rid, f"no architecture for {row['model']!r} (not in the zoo, no layers/hidden/heads)")
    cluster = build_cluster(row)
    cfg = build_config(row, cluster)
    raw = MemoryConfig(utilization=1.0, safety_margin=0.0, fragmentation=0.0)
    mem = training_memory(model, cluster.gpu, cfg, margins=raw)
    planned = training_memory(model, cluster.gpu, cfg)
    # Megatron-LM in 2021 (Narayanan et al.) had no flash attention: unfused softmax attention.
    perf = training_perf(model, cluster, cfg, flash_attention="2104.04473" not in row["source_url"])
    metric, value = published
    peak = (
        cluster.gpu.fp8_tflops
        if cfg.precision == "fp8" and cluster.gpu.fp8_tflops
        else cluster.gpu.bf16_tflops
    )
    predicted = {
        "mfu": perf.mfu,
        "hw_tflops": perf.hfu * peak,
        "model_tflops": perf.tflops_per_gpu,
        "tokens_per_s_per_gpu": perf.tokens_per_s_per_gpu,
    }[metric]
    return RowResult(
        rid, row["model"], metric, value, predicted, mem.peak_gib, cluster.gpu.memory_gib, planned.fits
    )


def evaluate(path: Path = REFERENCE) -> list[RowResult | Skipped]:
    """Every row of the CSV at `path`."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [evaluate_row(row) for row in csv.DictReader(fh)]


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else REFERENCE
    results = evaluate(path)
    done = [r for r in results if isinstance(r, RowResult)]
    print(
        f"{'row':5} {'model':28} {'metric':21} {'published':>10} {'predicted':>10} {'error':>7} "
        f"{'peak GiB':>8} {'usable':>7} fits"
    )
    for r in results:
        if isinstance(r, Skipped):
            print(f"{r.row_id:5} skipped: {r.reason}")
            continue
        print(
            f"{r.row_id:5} {r.model[:28]:28} {r.metric:21} {r.published:10.3f} {r.predicted:10.3f} "
            f"{r.rel_error:+7.1%} {r.peak_gib:8.1f} {r.memory_gib:7.1f} {'yes' if r.fits else 'NO'}"
        )
    errors = sorted(abs(r.rel_error) for r in done)
    within = sum(e <= WITHIN for e in errors)
    print(f"\nrows evaluated: {len(done)}, skipped: {len(results) - len(done)}")
    print(
        f"within ±{WITHIN:.0%}: {within}/{len(done)} ({within / len(done):.1%}); "
        f"median |error| {errors[len(errors) // 2]:.1%}, p90 {errors[int(0.9 * len(errors))]:.1%}, "
        f"max {errors[-1]:.1%}; mean signed {sum(r.rel_error for r in done) / len(done):+.1%}"
    )
    fits = sum(r.fits for r in done)
    planned = sum(r.fits_planned for r in done)
    print(
        f"published configs predicted to fit the GPU: {fits}/{len(done)}; "
        f"under the default planning margins: {planned}/{len(done)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
