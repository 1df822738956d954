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
