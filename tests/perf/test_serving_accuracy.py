"""Pins benchmarks/serving_accuracy.py: the fit/checked split, and rows the model gets within 20 %."""

from __future__ import annotations

import csv
import importlib
from pathlib import Path
from types import ModuleType

import pytest

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "inference_benchmarks_dev.csv"


@pytest.fixture(scope="module")
def acc() -> ModuleType:
    return importlib.import_module("benchmarks.serving_accuracy")


def _row(row_id: str) -> dict[str, str]:
    if not REFERENCE.exists():
        pytest.skip(f"reference data not found at {REFERENCE}")
    with REFERENCE.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["row_id"] == row_id:
                return row
    pytest.skip(f"row {row_id} not in the reference data")


def test_fit_rows_come_from_the_factor_sources(acc: ModuleType) -> None:
    vllm = acc.fit_rows("vllm")
    assert {"I301", "I201", "I206", "I207", "I208"} <= vllm  # "I206-I208" is expanded
    assert "I204" not in vllm and "I205" not in vllm
    trt = acc.fit_rows("trtllm", "hopper")
    assert len(trt) == 10 and all(int(r[1:]) % 2 == 0 for r in trt)  # the 1×H100 Llama-3.1-8B rows
    blackwell = acc.fit_rows("trtllm", "blackwell")  # the 4×B200 Llama-3.1-405B NVFP4 rows
    assert len(blackwell) == 10 and {"I131", "I167"} <= blackwell and not blackwell & trt
    assert acc.fit_rows("trtllm") == trt | blackwell
    # SGLang's factors are vLLM's plus a kernel rate read off a benchmark: every SGLang row is checked
    assert acc.fit_rows("sglang") == set()


@pytest.mark.parametrize(
    "row_id, split",
    [
        ("I180", "fit"),  # TensorRT-LLM, Llama-3.1-8B FP8, 1×H100, 1000/1000
        ("I149", "checked"),  # TensorRT-LLM, Llama-3.1-405B FP8, 8×H200, 1000/1000
        ("I185", "checked"),  # TensorRT-LLM, Llama-3.1-8B FP8, 1×H200, 2048/2048
        ("I150", "checked"),  # TensorRT-LLM, Llama-3.1-405B FP8, TP8 on 8×H100, 1000/1000
        ("I158", "checked"),  # TensorRT-LLM, Llama-3.1-405B FP8, TP8 on 8×H100, 2048/128 (prefill-heavy)
        ("I120", "checked"),  # TensorRT-LLM, Llama-4-Maverick FP8, TP8 EP8 on 8×H200, 1000/2000
        ("I147", "fit"),  # TensorRT-LLM, Llama-3.1-405B NVFP4, TP4 on 4×B200, 1000/1000
        ("I148", "checked"),  # the same on 4×GB200
        ("I116", "checked"),  # TensorRT-LLM, Llama-4-Maverick NVFP4, TP8 EP8 on 8×B200, 1000/1000
        ("I090", "checked"),  # TensorRT-LLM, Qwen3-235B-A22B NVFP4, TP8 EP8 on 8×B200, 1000/1000
        # 20,000 / 2,000 on H100s: the KV pool binds, the up-front estimate says 42,000-54,000 passes
        # for replays that run in a few thousand; a limit of 40,000 on the estimate refused both rows
        ("I190", "fit"),  # TensorRT-LLM, Llama-3.1-8B FP8, 1×H100
        ("I170", "checked"),  # TensorRT-LLM, Llama-3.1-405B FP8, TP8 on 8×H100
    ],
)
def test_tensorrt_offline_rows_within_20_percent(acc: ModuleType, row_id: str, split: str) -> None:
    results = [r for r in acc.predict(_row(row_id)) if r.what == "output tok/s"]
    assert len(results) == 1 and results[0].split == split and results[0].kind == "offline"
    assert 0.8 <= results[0].ratio <= 1.2, results[0]


@pytest.mark.parametrize("row_id", ["I201", "I206"])
def test_vllm_deepseek_tp8_burst_fit_rows_within_20_percent(acc: ModuleType, row_id: str) -> None:
    """The rows vLLM's MoE expert cost is fitted to (on tokens/s; it comes out 0): 1,000 ShareGPT
    prompts at once on 8×H200 TP8. With the FP8 decode kernel's heads padded to 128, the admission
    (TTFT) and the decode steps (ITL) come out within 20% too, though neither was fitted."""
    got = {r.what: r for r in acc.predict(_row(row_id))}
    assert got["output tok/s"].split == "fit" and got["output tok/s"].kind == "burst"
    for what in ("output tok/s", "TTFT ms", "ITL ms"):
        assert 0.8 <= got[what].ratio <= 1.2, got[what]


@pytest.mark.parametrize("row_id", ["I201", "I206", "I207"])
def test_vllm_deepseek_v32_tp8_burst_itl_within_20_percent(acc: ModuleType, row_id: str) -> None:
    """V3.2's sparse attention charged as FlashMLA's kernels run it (every token of the TP8 batch
    through the FP8 decode kernel, 16 heads padded to the kernel's 128, all 2,048 top-k slots): the
    bursts' mean ITL within 20% (0.84-0.90), where V3's dense attention gave 0.60-0.71. These are
    vLLM's fit rows: the MoE expert cost was chosen on their output tokens/s, never on their ITL; the
    one checked vLLM burst (I204, DP8 + EP) has ITL 0.53. I208 (--max-model-len 32768, measured ITL
    154 ms against 131-141 ms for the same setup) comes out 0.77."""
    got = {r.what: r for r in acc.predict(_row(row_id))}
    assert 0.8 <= got["ITL ms"].ratio <= 1.2, got["ITL ms"]


@pytest.mark.parametrize("row_id", ["I201", "I206", "I207", "I208"])
def test_vllm_burst_mean_tpot_holds_with_sharegpts_published_length_shape(
    acc: ModuleType, row_id: str
) -> None:
    """A burst's mean TPOT is a mean over requests, set by the short outputs that finish while the
    admission runs. Drawn from ShareGPT's published histograms (SGLang's docs, 21 % of outputs at 20
    tokens or fewer) it is within 20 % on vLLM's TP8 bursts (0.89-1.16; never fitted: the expert
    cost was chosen on tokens/s); the log-normal of spread 1 drawn before gave 0.59-0.77."""
    got = {r.what: r for r in acc.predict(_row(row_id))}
    assert 0.8 <= got["TPOT ms"].ratio <= 1.2, got["TPOT ms"]


def test_concurrency_capped_rows_within_20_percent(acc: ModuleType) -> None:
    for row_id in ("I301", "I302", "I303"):  # vLLM, SGLang, TensorRT-LLM: Qwen3-8B, 1×H100, 4 in flight
        got = {r.what: r.ratio for r in acc.predict(_row(row_id))}
        assert 0.8 <= got["output tok/s"] <= 1.2 and 0.8 <= got["TPOT ms"] <= 1.2, (row_id, got)


def test_speculative_rows_are_skipped(acc: ModuleType) -> None:
    with pytest.raises(LookupError, match="speculative"):
        acc.predict(_row("I212"))


def test_fp4_rows_run_nvfp4_checkpoints_and_trtllm_benchs_fp4_estimate(acc: ModuleType) -> None:
    """NVIDIA's FP4 releases are NVFP4 (ModelOpt); trtllm-bench sizes its batch with 0.5 bytes per
    parameter for them (`BYTES_PER_ELEM`), so a 405B model leaves room for more requests."""
    model = acc._model("meta-llama/Llama-3.1-405B-Instruct", "FP4 (nvidia ModelOpt checkpoint)")
    assert model.quantization is not None and model.quantization.method.value == "modelopt_fp4"
    fp8 = acc.trtllm_bench_settings(model, 178.36, 4, 1, 1000, 1000)
    fp4 = acc.trtllm_bench_settings(model, 178.36, 4, 1, 1000, 1000, 0.5)
    assert fp4[0] > fp8[0]


@pytest.mark.parametrize("row_id", ["I204", "I210", "I214"])
def test_data_parallel_burst_rows_within_20_percent(acc: ModuleType, row_id: str) -> None:
    """DeepSeek-V3.2 on 8×H200 with 8 data-parallel replicas (vLLM DP + EP, SGLang DP attention): the
    run ends with the replica holding the draw's longest request (checked rows, never fitted). I204
    is at 1.14 (1.22 under the log-normal lengths)."""
    got = {r.what: r for r in acc.predict(_row(row_id))}
    assert got["output tok/s"].split == "checked" and got["output tok/s"].kind == "burst"
    assert 0.8 <= got["output tok/s"].ratio <= 1.2, got["output tok/s"]


def test_sglang_nsa_backend_flags_are_priced_as_the_rows_pass_them(acc: ModuleType) -> None:
    """I215 (FP8 cache: flashmla_kv decode by default), I216 (fa3 + fa3) and I217 (flashmla_sparse +
    flashmla_kv over a BF16 cache, which quantizes the whole pool every decode step): each within 20%,
    and I217 far slower than I216, as measured (checked rows, never fitted)."""
    assert acc._nsa_backends(_row("I217")) == ("flashmla_sparse", "flashmla_kv")
    assert acc._nsa_backends(_row("I214")) == (None, None)
    tps = {}
    for row_id in ("I215", "I216", "I217"):
        got = {r.what: r for r in acc.predict(_row(row_id))}["output tok/s"]
        assert got.split == "checked" and 0.8 <= got.ratio <= 1.2, got
        tps[row_id] = got.predicted
    assert tps["I217"] < 0.8 * tps["I216"]


def test_trtllm_bench_picks_its_own_batch_and_step_budget(acc: ModuleType) -> None:
    """trtllm-bench's heuristic on Qwen3-235B-A22B, TP8 on 8×H200, 20,000 / 2,000 tokens: KV of
    2 · 94 layers · max(8, 4) heads · 128 · 1 B per token over 0.95 · (8 · 139.81 − 218.95) GiB
    (every weight at 1 B) holds 216.7 requests -> batch 224 (multiple of 32), budget
    216.7 · 11 = 2,383 -> 2,560 (multiple of 256); chunked prefill is off, so the budget is raised to
    the longest prompt plus the batch, 20,000 + 224."""
    from autoparallel.hardware import get_gpu

    model = acc._model("Qwen/Qwen3-235B-A22B")
    gib = get_gpu("H200").memory_bytes / 2**30
    assert acc.trtllm_bench_settings(model, gib, 8, 1, 20000, 2000) == (224, 20224)
    # Short prompts keep the heuristic's budget: 2,166 requests · (1 + 2,048 / 128) -> capped at 32,768.
    assert acc.trtllm_bench_settings(model, gib, 8, 1, 2048, 128) == (2304, 32768)
    # Short requests: the batch is capped at 4,096 and the budget at 32,768.
    assert acc.trtllm_bench_settings(acc._model("meta-llama/Llama-3.1-8B"), gib, 1, 1, 128, 128)[0] == 4096


@pytest.mark.parametrize("row_id", ["I210", "I211", "I213", "I214", "I215", "I216", "I217"])
def test_sglang_attention_dp_burst_tokens_per_s_within_20_percent(acc: ModuleType, row_id: str) -> None:
    """SGLang DP attention on 8×H200 (DeepSeek-V3.2, 1,000 ShareGPT prompts at once; checked rows,
    nothing fitted): with the steps charged as SGLang runs them (block-FP8 experts in its Triton
    fused-MoE kernel at Triton's measured rate, the DP gather and scatter as two all-reduces of the
    gathered buffer, short prompt steps as dense MHA) output tokens/s is within 20% (0.82-1.08). The
    mean TPOT (0.62-0.98) and TTFT (0.39-0.69) are short: SGLang's prompt steps cost more than the
    model charges."""
    got = {r.what: r for r in acc.predict(_row(row_id))}
    assert got["TPOT ms"].split == "checked" and got["TPOT ms"].kind == "burst"
    assert 0.8 <= got["output tok/s"].ratio <= 1.2, got["output tok/s"]


def test_sglang_prefill_backend_does_not_matter_for_sharegpt_prompts(acc: ModuleType) -> None:
    """I214 (default `flashmla_sparse` prefill) and I216 (`--nsa-prefill-backend fa3`) are the same
    server otherwise and measured mean TTFT 5.62 and 5.30 s: SGLang 0.5.6 runs a prompt step within
    the top-k as dense MHA whatever the flag (`set_nsa_prefill_impl`), and the replay does too
    (charged through each flag's kernel, the two came out 4.04 and 3.32 s)."""
    ttft = {rid: {r.what: r for r in acc.predict(_row(rid))}["TTFT ms"] for rid in ("I214", "I216")}
    assert ttft["I214"].measured / ttft["I216"].measured == pytest.approx(1.06, abs=0.01)
    assert ttft["I214"].predicted == pytest.approx(ttft["I216"].predicted, rel=0.02)


def test_rows_of_one_server_get_one_prediction_and_their_spread_is_reported(acc: ModuleType) -> None:
    """I202 and I209 are one SGLang server (`SAME_SERVER`, checked against SGLang's own arguments code in
    test_sglang_checker.py): the model predicts them alike, and the report says their measured TPOTs
    (1,104 and 609 ms) are further apart than any one prediction within 20 % of both allows."""
    (rows,) = [g for g in acc.SAME_SERVER if "I202" in g]
    results = [r for row in rows for r in acc.predict(_row(row))]
    for what in ("output tok/s", "TPOT ms"):
        predicted = [r.predicted for r in results if r.what == what]
        assert len(predicted) == 2 and max(predicted) / min(predicted) < 1.01
    lines = acc.repeat_spreads(results)
    tpot = next(line for line in lines if "TPOT ms" in line)
    assert "I202 1,104.0 / I209 608.9" in tpot and "no one prediction is within 20 % of all" in tpot
    tokens = next(line for line in lines if "output tok/s" in line)
    assert "one prediction can be within 20 % of all" in tokens and "no one" not in tokens
