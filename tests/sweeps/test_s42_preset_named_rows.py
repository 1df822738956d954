"""A sweep workload named like a preset is that preset, its fields over it, as `--workload rag --isl
1024` is (`sweeps.scenario.make_workload`): `{name: rag, isl: 1024}` planned 1024 / 256 tokens without
rag's TTFT limit under the label "rag isl=1024"; `{name: chatbot, request_rate: 2}` stays chatbot at
2 req/s."""

from __future__ import annotations

from autoparallel.sweeps.scenario import from_rows, grid
from autoparallel.workload import Serving

MODEL, CLUSTER = "meta-llama/Llama-3.1-8B", "1xH100"


def _workload(row: dict[str, object]) -> Serving:
    (s,) = from_rows([{"model": MODEL, "cluster": CLUSTER, **row}], "s.yaml")
    w = s.to_workload()
    assert isinstance(w, Serving)
    return w


def test_a_row_named_like_a_preset_is_the_preset_with_its_fields_over_it() -> None:
    rag = Serving.preset("rag")
    w = _workload({"workload": {"name": "rag", "isl": 1024}})
    assert (w.isl, w.osl, w.ttft_ms, w.tpot_ms) == (1024, rag.osl, rag.ttft_ms, rag.tpot_ms)
    assert w.model_dump(exclude={"name"}) == _workload({"workload": "rag", "isl": 1024}).model_dump(
        exclude={"name"}
    )
    (s,) = grid([MODEL], [CLUSTER], [{"name": "Chatbot", "request_rate": 2}])
    chatbot = s.to_workload()
    assert isinstance(chatbot, Serving)
    assert chatbot.request_rate == 2 and chatbot.ttft_ms == Serving.preset("chatbot").ttft_ms


def test_a_name_alone_that_is_a_presets_is_the_preset() -> None:
    assert _workload({"name": "rag"}).model_copy(update={"name": "rag"}) == Serving.preset("rag")
