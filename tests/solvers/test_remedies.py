"""Infeasible serving requests come with the nearest feasible changes, each a solved plan."""

from __future__ import annotations

import pytest

from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.serving.solve import solve_serving
from autoparallel.workload import Serving


def test_a_missed_tpot_limit_suggests_fp8_weights_and_names_the_preset() -> None:
    with pytest.raises(InfeasibleError) as exc:
        solve_serving(load_model("Qwen/Qwen3-32B"), Cluster.parse("1x2xL40S"), Serving.preset("chatbot"))
    err = exc.value
    assert [r.split(":")[0] for r in err.reasons] == ["tpot_slo"]
    fp8 = next(f for f in err.fixes if f.startswith("with --quantization fp8"))
    tpot = float(fp8.rsplit("TPOT ", 1)[1].split(" ms")[0])
    assert tpot <= 50.0  # the suggested plan meets the preset's limit, by the float model
    assert any("the chatbot preset imposes it" in f for f in err.fixes)
    assert "nearest feasible changes" in str(err)


def test_no_change_is_invented_when_none_works() -> None:
    with pytest.raises(InfeasibleError) as exc:
        model = load_model("meta-llama/Llama-3.1-405B")
        solve_serving(model, Cluster.parse("1x4xL4"), Serving.preset("chatbot"))
    assert exc.value.fixes == ()  # 4x the L4s still cannot hold 756 GiB of weights


def test_a_fix_that_fails_is_skipped_without_an_explanation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the request itself is explained: each failed trial of a nearest fix used to build its
    complete tables and solve its minimal core too, so `plan mistralai/Mixtral-8x7B-v0.1 --cluster
    16x8xH100 --tpot-ms 1 --engine sglang` spent its 10 s limit before it found the looser TPOT."""
    from autoparallel.solvers.serving import explain

    calls: list[object] = []
    real = explain.explain_infeasible

    def counted(*a: object, **k: object) -> InfeasibleError:
        calls.append(a)
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(explain, "explain_infeasible", counted)
    with pytest.raises(InfeasibleError) as exc:
        model = load_model("meta-llama/Llama-3.1-405B")
        solve_serving(model, Cluster.parse("1x4xL4"), Serving.preset("chatbot"))
    assert exc.value.fixes == () and len(calls) == 1  # every fix failed; only the request explained
