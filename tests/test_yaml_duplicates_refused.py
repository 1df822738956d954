"""A key repeated in one YAML mapping is refused as read (yaml_file.read_yaml), for every file the project
reads as YAML: PyYAML keeps the last value silently, so a fleet file with two `models:` lists planned only
the second, and an entry with two `request_rate:` keys planned the last."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from autoparallel import yaml_file
from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.yaml_file import read_yaml

TWO_MODEL_LISTS = """\
models:
  - model: meta-llama/Llama-3.1-70B-Instruct
    request_rate: 5
cluster: 1x8xH100
models:
  - model: Qwen/Qwen3-8B
    request_rate: 5
"""

TWO_RATES = """\
models:
  - model: Qwen/Qwen3-8B
    request_rate: 20
    request_rate: 40
"""


@pytest.fixture(params=["libyaml", "pure Python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both loaders PyYAML may be built with refuse repeats alike."""
    if request.param == "pure Python":
        monkeypatch.setattr(yaml_file, "SAFE_LOADER", yaml.SafeLoader)
    elif yaml_file.SAFE_LOADER is yaml.SafeLoader:
        pytest.skip("PyYAML was built without libyaml")
    return str(request.param)


@pytest.mark.parametrize(
    ("text", "key", "line", "first"),
    [
        (TWO_MODEL_LISTS, "'models'", 5, 1),
        (TWO_RATES, "'request_rate'", 4, 3),
        ('{"gpus": [], "gpus": [1]}', "'gpus'", 1, 1),  # JSON, read by the same reader
        ("a: {1: x, 1: y}\n", "1", 1, 1),
    ],
)
def test_a_repeated_key_is_one_error_naming_it_and_its_line(
    tmp_path: Path, loader: str, text: str, key: str, line: int, first: int
) -> None:
    f = tmp_path / "f.yaml"
    f.write_text(text)
    with pytest.raises(InputError) as info:
        read_yaml(f, "fleet file", 1 << 20)
    message = str(info.value)
    assert f"repeats key {key} at line {line} (first at line {first})" in message
    assert len(message.splitlines()) == 1


def test_merge_keys_and_distinct_keys_still_read(tmp_path: Path, loader: str) -> None:
    """A `<<` merge whose key an explicit key overrides is not a repeat (YAML's merge key type), nor is
    one anchored mapping merged twice, nor equal keys in different mappings."""
    f = tmp_path / "f.yaml"
    f.write_text(
        "base: &b {isl: 1024, osl: 256}\n"
        "a:\n  <<: *b\n  osl: 512\n"
        "b:\n  <<: *b\n  isl: 2048\n"
        "c: [{model: x, isl: 1}, {model: y, isl: 2}]\n"
    )
    doc = read_yaml(f, "fleet file", 1 << 20)
    assert doc["a"] == {"isl": 1024, "osl": 512} and doc["b"] == {"isl": 2048, "osl": 256}
    assert [m["model"] for m in doc["c"]] == ["x", "y"]


@pytest.mark.parametrize(
    ("argv", "name", "text", "key"),
    [
        (["plan", "--cluster", "1x8xH100", "--fleet"], "fleet.yaml", TWO_MODEL_LISTS, "'models'"),
        (["plan", "--cluster", "1x8xH100", "--fleet"], "fleet.yaml", TWO_RATES, "'request_rate'"),
        (
            ["plan", "Qwen/Qwen3-8B", "--cluster", "1x8xH100-cheap", "--gpus-file"],
            "gpus.yaml",
            "- name: H100-cheap\n  base: H100\n  usd_per_hour: 1.0\n  usd_per_hour: 9.0\n",
            "'usd_per_hour'",
        ),
        (["sweep"], "scenarios.yaml", "grid:\n  models: [Qwen/Qwen3-8B]\n  models: [x]\n", "'models'"),
    ],
)
def test_every_yaml_the_cli_reads_refuses_a_repeat_with_exit_2(
    tmp_path: Path, argv: list[str], name: str, text: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / name
    f.write_text(text)
    args = [*argv, str(f)]
    if argv == ["sweep"]:
        args += ["--out", str(tmp_path / "out.parquet")]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert not out and f"repeats key {key}" in err and len(err.strip().splitlines()) == 1
