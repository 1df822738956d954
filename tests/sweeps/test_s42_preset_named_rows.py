"""A sweep workload named like a preset it is not is refused, as a workload file so named is
(`sweeps.scenario.make_workload`): `{name: rag, isl: 1024}` planned 1024 / 256 tokens without rag's
TTFT limit under the label "rag isl=1024"."""

from __future__ import annotations

import pytest

from autoparallel.errors import InputError
from autoparallel.sweeps.scenario import from_rows, grid
from autoparallel.workload import Serving

MODEL, CLUSTER = "meta-llama/Llama-3.1-8B", "1xH100"


def test_a_row_named_like_a_preset_it_is_not_is_refused() -> None:
    with pytest.raises(InputError, match=r"scenario 1: workload 'rag' is named like the rag preset"):
        from_rows([{"model": MODEL, "cluster": CLUSTER, "workload": {"name": "rag", "isl": 1024}}], "s.yaml")
    with pytest.raises(InputError, match=r"workload 'Chatbot' is named like the chatbot preset"):
        grid([MODEL], [CLUSTER], [{"name": "Chatbot", "request_rate": 2}])


def test_the_preset_with_fields_over_it_keeps_its_limits() -> None:
    (s,) = from_rows([{"model": MODEL, "cluster": CLUSTER, "workload": "rag", "isl": 1024}], "s.yaml")
    w = s.to_workload()
    assert isinstance(w, Serving)
    assert (w.isl, w.ttft_ms) == (1024, Serving.preset("rag").ttft_ms)
