"""A learned position table shorter than the planned sequence is a note of the plan (s43 fF)."""

from __future__ import annotations

from autoparallel import api
from autoparallel.frameworks._megatron_model import architecture_args
from autoparallel.models import load_model
from autoparallel.workload import Training


def test_gpt2_longer_than_its_table_says_so_in_text_and_json() -> None:
    plan = api.solve("openai-community/gpt2", "1x8xH100", Training(seq_len=4096, global_batch=64))
    assert "--max-position-embeddings 4096" in " ".join(plan.megatron_args)
    notes = [n for n in plan.megatron_notes if "position table" in n]
    assert len(notes) == 1 and "4096" in notes[0] and "1024 positions" in notes[0]
    assert notes[0] in plan.to_dict()["megatron"]["notes"]
    assert f"note: {notes[0]}" in plan.explain()


def test_no_note_within_the_table_or_with_rope() -> None:
    from autoparallel.frameworks._megatron_model import position_table_note

    gpt2 = load_model("openai-community/gpt2")
    assert position_table_note(gpt2, 1024) is None
    assert position_table_note(gpt2, 2048) is not None
    llama = load_model("meta-llama/Llama-3.1-8B")  # RoPE: extended without a table
    assert position_table_note(llama, 4 * llama.max_position_embeddings) is None
    bloom = load_model("bigscience/bloom")  # ALiBi: no table
    assert position_table_note(bloom, 4 * bloom.max_position_embeddings) is None


def test_the_note_names_the_emitted_size() -> None:
    from autoparallel.frameworks._megatron_model import position_table_note

    gpt2 = load_model("openai-community/gpt2")
    plan = api.solve("openai-community/gpt2", "1x8xH100", Training(seq_len=2048, global_batch=64))
    size = architecture_args(gpt2, plan.config)["--max-position-embeddings"]
    note = position_table_note(gpt2, plan.config.seq_len)
    assert note is not None and note.startswith(f"--max-position-embeddings {size} ")
