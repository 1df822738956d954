"""s41 f1: SGLang / TensorRT-LLM entries an engine never runs do not make an explanation blame `memory`.

An entry whose engine runs fewer requests at once than the entry's share (SGLang's request slots:
Qwen3-Next's mamba state pool) is ruled out by its own family, `engine_running_cap`, which the
explanation holds like the layout rules; an entry whose engine's KV pool holds no request is
memory's, with times that meet no limit (it has none), so that dropping `memory` never credits it
with a placeholder TTFT of 1 µs. DeepSeek-V3 on 2x8xH200 under `--engine auto` at TTFT 20 ms named
`memory, ttft_slo`, the fastest plan at 89 ms.
"""

from __future__ import annotations

import re

import pytest

from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.serving.explain import reason
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.solvers.serving.space import (
    RUNNING_CAP_FAMILY,
    UNPRICED_US,
    ServingOptions,
    build_space,
    complete_tables,
)
from autoparallel.workload import Serving

NEXT = "Qwen/Qwen3-Next-80B-A3B-Instruct"


def _reasons(
    model: str, cluster: str, options: ServingOptions, ttft_ms: float | None = None
) -> tuple[str, ...]:
    w = Serving.preset("chatbot")
    if ttft_ms is not None:
        w = w.model_copy(update={"ttft_ms": ttft_ms})
    with pytest.raises(InfeasibleError) as info:
        solve_serving(load_model(model), Cluster.parse(cluster), w, options=options, fixes=False)
    return info.value.reasons


def _families(reasons: tuple[str, ...]) -> list[str]:
    return [r.split(":")[0] for r in reasons]


def test_an_unmet_ttft_is_not_blamed_on_memory_for_entries_the_engine_caps() -> None:
    """SGLang Qwen3-Next-80B-A3B on 1x8xH100 at TTFT 20 ms (fastest plan 65 ms) named `memory` beside
    the TTFT limit: max_num_seqs=1024 on tp=8, above the 768 requests SGLang runs there, carried a
    placeholder TTFT and was ruled out only by memory pushed over the budget."""
    reasons = _reasons(NEXT, "1x8xH100", ServingOptions(engines=("sglang",)), ttft_ms=20.0)
    assert _families(reasons) == ["ttft_slo"]
    assert "reaches 65 ms" in reasons[0]


def test_an_unmet_ttft_is_not_blamed_on_memory_for_entries_no_request_fits() -> None:
    """SGLang Qwen3-235B-A22B on 1x8xH200 at TTFT 5 ms (fastest plan 88 ms) named `memory` beside the
    TTFT limit: the narrow shapes, whose KV pool holds no request, had a placeholder TTFT of 1 µs that
    met the limit once memory was dropped (the DeepSeek-V3 2x8xH200 `--engine auto` case)."""
    reasons = _reasons("Qwen/Qwen3-235B-A22B", "1x8xH200", ServingOptions(engines=("sglang",)), ttft_ms=5.0)
    assert _families(reasons) == ["ttft_slo"]


def test_an_engine_cap_that_rules_out_every_shape_is_named_with_its_numbers() -> None:
    """Only max_num_seqs=1024 on tp=8: SGLang runs at most 768 requests there; the core named
    `memory` with '23.03 GiB needed' of a 23.03 GiB pool holding 2,012,549 tokens."""
    options = ServingOptions(engines=("sglang",), max_num_seqs=(1024,), tp_values=(8,), pp_values=(1,))
    reasons = _reasons(NEXT, "1x8xH100", options)
    assert _families(reasons) == [RUNNING_CAP_FAMILY]
    found = re.search(
        r"SGLang runs at most ([\d,]+) at tp=8 pp=1(?: ep=8)?, max_num_seqs=1024, whose replicas are to run "
        r"1,024 each",
        reasons[0],
    )
    assert found is not None, reasons[0]
    assert int(found.group(1).replace(",", "")) < 1024
    assert "4 of the 4 plans" in reasons[0]


def test_the_memory_line_names_no_entry_the_engine_caps() -> None:
    """max_num_seqs=1024 on every shape: memory binds the shapes whose pool holds no request; the
    memory line named the capped tp=8 entry ('23.03 GiB needed' of a 23.03 GiB pool)."""
    reasons = _reasons(NEXT, "1x8xH100", ServingOptions(engines=("sglang",), max_num_seqs=(1024,)))
    assert _families(reasons) == ["memory"]
    assert "tp=8 pp=1, max_num_seqs" not in reasons[0] and "tp=8 pp=1 ep=8, max_num_seqs" not in reasons[0]


def test_memory_still_explains_a_model_whose_pools_hold_no_request() -> None:
    """Qwen3-235B-A22B (438 GiB of weights) on 2xH200 under SGLang: every pool is empty; memory is named
    (the fixes it unlocks: FP8, more GPUs), not an engine rule."""
    assert _families(_reasons("Qwen/Qwen3-235B-A22B", "1x2xH200", ServingOptions(engines=("sglang",)))) == [
        "memory"
    ]


def test_every_placeholder_entry_of_complete_tables_is_ruled_out_by_a_held_family() -> None:
    """In the tables an explanation reads, a placeholder TTFT of 1 µs only on entries a held family rules
    out (architecture, engine layout, engine running cap); entries the engine cannot price (no request
    fits its pool) are memory's, over the budget, with times that meet no limit."""
    space = build_space(
        load_model(NEXT),
        Cluster.parse("1x8xH100"),
        Serving.preset("chatbot"),
        ServingOptions(engines=("sglang",)),
    )
    space = complete_tables(space)
    t, top = space.tables, max(space.budget_kib)
    capped = unpriced = 0
    for i in range(len(t.evaluated)):
        if not space.offered(i) or t.evaluated[i]:
            continue
        shape = space.shapes[space.unflat(i)[0]]
        held = bool(shape.violations) or space.engine_layout_problem(space.engine_of(i), shape) is not None
        if t.ttft_us[i] == 1:
            assert held or t.capped[i], i
            capped += t.capped[i]
        else:
            assert t.ttft_us[i] == t.step_us[i] == UNPRICED_US and t.tps_milli[i] == 0, i
            assert t.mem_used_kib[i] > top, i
            unpriced += 1
    assert capped and unpriced
    assert reason(space, RUNNING_CAP_FAMILY).startswith(f"{RUNNING_CAP_FAMILY}: {capped:,} of the ")
