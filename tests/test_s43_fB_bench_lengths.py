"""A benchmark result whose per-request lengths are there but none usable says so, not that they were
never saved (s43 fB, problem 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoparallel.errors import InputError
from autoparallel.workload_profile import profile_file


def _bench(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"completed": 100, "request_rate": "inf", **fields}))
    return path


@pytest.mark.parametrize("length", [-5, 1e12, None])
def test_unusable_lengths_are_named_with_the_accepted_range(tmp_path: Path, length: object) -> None:
    path = _bench(tmp_path, input_lens=[length] * 100, output_lens=[200] * 100)
    with pytest.raises(InputError) as err:
        profile_file(path)
    text = str(err.value)
    assert "no usable request (100 with malformed lengths)" in text
    assert "from 1 to 16,777,216" in text and "saved without them" not in text


def test_lengths_never_saved_still_say_so(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="saved without them"):
        profile_file(_bench(tmp_path, duration=10.0))
