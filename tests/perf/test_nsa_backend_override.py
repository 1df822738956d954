"""SGLang 0.5.6 assigns the DeepSeek NSA backends itself over an FP8 KV cache and from Blackwell on
(`ServerArgs._handle_model_specific_adjustments`): the flags it replaces are neither priced nor put
on the launch line; over a BF16 cache on Hopper they run as given."""

from __future__ import annotations

import pytest

from autoparallel.api import evaluate
from autoparallel.configs import ServingConfig
from autoparallel.frameworks.sglang import sglang_args, sglang_launch
from autoparallel.hardware import get_gpu
from autoparallel.models import load_model
from autoparallel.perf.sparse_attention import SparseKernels, sparse_kernels

V32 = "deepseek-ai/DeepSeek-V3.2"
MHA = {"short_prefill_mha": True}
FP8_RUNS = SparseKernels("flashmla_sparse", "flashmla_kv", **MHA)  # flashmla_auto charged as prefill


@pytest.mark.parametrize("nsa", [(None, "fa3"), (None, "flashmla_sparse"), ("fa3", "fa3")])
def test_fp8_cache_on_hopper_runs_flashmla_kv_whatever_the_flags(nsa: tuple[str | None, str | None]) -> None:
    """`--kv-cache-dtype fp8` (fp8_e4m3 on SGLang's line): SGLang sets flashmla_auto / flashmla_kv."""
    assert sparse_kernels(load_model(V32), "sglang", 8, get_gpu("H200"), "fp8", nsa) == FP8_RUNS


@pytest.mark.parametrize("nsa", [(None, "fa3"), ("flashmla_sparse", "flashmla_sparse"), ("fa3", None)])
def test_blackwell_auto_cache_is_fp8_and_its_backends_are_sglangs(nsa: tuple[str | None, str | None]) -> None:
    """On B200 `auto` becomes fp8_e4m3 (major >= 10) and the flags give way to flashmla_auto / _kv."""
    v32, b200 = load_model(V32), get_gpu("B200")
    assert sparse_kernels(v32, "sglang", 8, b200, "auto", nsa) == FP8_RUNS
    from autoparallel.perf.sparse_attention import sglang_nsa_backends  # new with the fix

    resolved = sglang_nsa_backends(v32, b200, "auto", nsa)
    assert (resolved.prefill, resolved.decode, resolved.kv_cache_dtype) == (
        "flashmla_auto",
        "flashmla_kv",
        "fp8_e4m3",
    )
    given = {
        f"--nsa-{n}-backend": v for n, v in zip(("prefill", "decode"), nsa, strict=True) if v is not None
    }
    assert dict(resolved.replaced) == given  # every flag passed differs from what SGLang assigns here


def test_bf16_cache_on_hopper_runs_the_flags() -> None:
    """The reference rows I216 (fa3 + fa3) and I217 (flashmla_sparse + flashmla_kv) ran BF16 on H200:
    there the flags win, flashmla_kv re-quantizing the BF16 pool each decode step."""
    v32, h200 = load_model(V32), get_gpu("H200")
    assert sparse_kernels(v32, "sglang", 8, h200, "auto", ("fa3", "fa3")) == SparseKernels(
        "fa3", "fa3", **MHA
    )
    assert sparse_kernels(
        v32, "sglang", 8, h200, "auto", ("flashmla_sparse", "flashmla_kv")
    ) == SparseKernels("flashmla_sparse", "flashmla_kv", quantizes_pool=True, **MHA)


def test_evaluate_prices_a_replaced_flag_as_sglangs_default() -> None:
    """`evaluate --engine sglang` on 8xB200: `--nsa-decode-backend fa3` is what SGLang replaces, so the
    prediction is the one without it (it was 12 % faster before)."""
    tps = {
        nsa: evaluate(
            V32, "1x8xB200", ServingConfig(tp=8), compare=False, engine="sglang", nsa_backends=nsa
        ).perf.output_tokens_per_s
        for nsa in ((None, None), (None, "fa3"))
    }
    assert tps[(None, "fa3")] == pytest.approx(tps[(None, None)])


def test_launch_line_drops_replaced_flags_with_a_note() -> None:
    """A flag SGLang replaces is left off the line, and a note names it and what runs instead; a flag
    SGLang keeps (BF16 on Hopper), or one equal to what it assigns, stays without a note."""
    v32, h200, b200 = load_model(V32), get_gpu("H200"), get_gpu("B200")
    fp8 = ServingConfig(tp=8, kv_cache_dtype="fp8")
    launch = sglang_launch(
        V32, fp8, 8, mem_fraction_static=0.9, nsa_backends=(None, "fa3"), model=v32, gpu=h200
    )
    assert "--nsa-decode-backend" not in launch.lines[0]
    (note,) = [n for n in launch.notes if "--nsa-decode-backend fa3" in n]
    assert "flashmla_auto" in note and "flashmla_kv" in note and "fp8_e4m3" in note
    assert note in launch.model_notes
    blackwell = sglang_launch(
        V32, ServingConfig(tp=8), 8, mem_fraction_static=0.9, nsa_backends=("fa3", "fa3"), model=v32, gpu=b200
    )
    assert "--nsa-" not in blackwell.lines[0]
    assert any("--nsa-prefill-backend fa3 and --nsa-decode-backend fa3" in n for n in blackwell.notes)
    kept = sglang_launch(
        V32, ServingConfig(tp=8), 8, mem_fraction_static=0.9, nsa_backends=("fa3", "fa3"), model=v32, gpu=h200
    )
    assert "--nsa-prefill-backend fa3 --nsa-decode-backend fa3" in kept.lines[0] and not kept.notes
    same = sglang_args(
        V32, fp8, mem_fraction_static=0.9, nsa_backends=(None, "flashmla_kv"), model=v32, gpu=h200
    )
    assert same["nsa_decode_backend"] == "flashmla_kv"
