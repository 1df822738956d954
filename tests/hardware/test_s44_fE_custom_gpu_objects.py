"""Custom GPU objects passed as `gpus=` meet the rules a GPU file's entries meet (s44 fE).

A copy of a catalog GPU named "H100" or "H100-SXM" replaced the catalog GPU in every cluster string
(a 10 TFLOP/s "H100"), two GPUs named "X1" and "x1" kept the first, and names no cluster string can
name ("", "Н100" in Cyrillic, "H100🚀") were taken."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import autoparallel as ap
from autoparallel.hardware import GPU

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


def _copy(**update: Any) -> GPU:
    """A copy of the catalog H100 (model_copy: no validation), without its aliases unless given."""
    return ap.get_gpu("H100").model_copy(update={"aliases": (), **update})


SLOW = _copy(name="H100-SXM", bf16_tflops=10.0, fp16_tflops=10.0, hbm_tbps=0.1, usd_per_hour=0.5)

REFUSED: list[tuple[str, Callable[[], object], str]] = [
    (
        "named H100",
        lambda: ap.Cluster.parse("1x8xH100", gpus=[SLOW.model_copy(update={"name": "H100"})]),
        r"gpus\[0\], GPU 'H100': the name is the catalog GPU H100-SXM; choose another",
    ),
    (
        "named H100-SXM",
        lambda: ap.Cluster.parse("1x8xH100+1x8xH100-SXM", gpus=[SLOW]),
        "the name is the catalog GPU H100-SXM",
    ),
    (
        "solve_fleet",
        lambda: ap.solve_fleet([{"model": LLAMA_8B}], "1x8xH100+1x8xH100-SXM", gpus=[SLOW]),
        "the name is the catalog GPU H100-SXM",
    ),
    (
        "names differing in case",
        lambda: ap.Cluster.parse("1x8xX1", gpus=[_copy(name="X1"), _copy(name="x1", bf16_tflops=5.0)]),
        "gpus: GPU 'x1' is listed twice",
    ),
    (
        "a shared alias",
        lambda: ap.Cluster.parse(
            "1x8xX1", gpus=[_copy(name="X1", aliases=("y",)), _copy(name="Y2", aliases=("Y",))]
        ),
        "gpus: GPUs 'X1' and 'Y2' share the name or alias 'y'",
    ),
    (
        "a catalog alias",
        lambda: ap.Cluster.parse("1x8xH100", gpus=[_copy(name="X1", aliases=("h100",))]),
        "alias 'h100' is the catalog GPU H100-SXM",
    ),
    (
        "the catalog's aliases kept",
        lambda: ap.Cluster.parse("1x8xX1", gpus=[ap.get_gpu("H100").model_copy(update={"name": "X1"})]),
        "is the catalog GPU H100-SXM",
    ),
    (
        "with_prices",
        lambda: ap.Cluster.parse("1x8xH100").with_prices({"H100": 2.0}, gpus=[SLOW]),
        "the name is the catalog GPU H100-SXM",
    ),
    (
        "a field out of range",
        lambda: ap.Cluster.parse("1x8xX1", gpus=[_copy(name="X1", bf16_tflops=0.0)]),
        "bf16_tflops",
    ),
    *[
        (
            f"name {name!r}",
            lambda name=name: ap.Cluster.parse("1x8xH100", gpus=[_copy(name=name)]),
            r"gpus\[0\]: name must be 1-64 of letters, digits, '.', '_', '-'",
        )
        for name in ("", "  ", "Н100", "H100🚀", "X1\n", "x" * 65)
    ],
]


@pytest.mark.parametrize(("case", "call", "match"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_custom_gpu_object_breaking_a_gpu_file_rule_is_refused(
    case: str, call: Callable[[], object], match: str
) -> None:
    with pytest.raises(ap.InputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_the_file_and_the_object_say_the_same(tmp_path: Path) -> None:
    path = tmp_path / "gpus.yaml"
    path.write_text("- name: G1\n  base: H100\n- name: g1\n  base: H100\n", encoding="utf-8")
    with pytest.raises(ap.InputError, match=r"GPU file '.*gpus.yaml': GPU 'g1' is listed twice"):
        GPU.from_file(path)
    path.write_text("- name: H100\n  base: H100\n", encoding="utf-8")
    with pytest.raises(ap.InputError, match=r"is the catalog GPU H100-SXM; choose another \(use base"):
        GPU.from_file(path)
    path.write_text("- name: 'X1\n\n'\n  base: H100\n", encoding="utf-8")
    with pytest.raises(ap.InputError, match="name must be 1-64"):
        GPU.from_file(path)


def test_a_legitimate_custom_gpu_object_still_plans() -> None:
    slow = SLOW.model_copy(update={"name": "H100-slow", "aliases": ("slowh",)})
    cluster = ap.Cluster.parse("1x8xH100-slow+1x8xH100", gpus=[slow, ap.get_gpu("A100")])
    assert [p.gpu.name for p in cluster.pools] == ["H100-slow", "H100-SXM"]
    assert [p.gpu.bf16_tflops for p in cluster.pools] == [10.0, 989.0]
    assert ap.Cluster.parse("1x8xslowh", gpus=[slow]).gpu.name == "H100-slow"
    # A catalog GPU passed unchanged replaces nothing and is taken.
    assert ap.Cluster.parse("1x8xH100", gpus=[ap.get_gpu("H100")]).spec == "1x8xH100-SXM"
    fast = _copy(name="H100-fast", bf16_tflops=1200.0, fp16_tflops=1200.0)
    plan = ap.solve(LLAMA_8B, ap.Cluster.parse("1x2xH100-fast", gpus=[fast]), workload="chatbot")
    assert plan.cluster.gpu.name == "H100-fast"
