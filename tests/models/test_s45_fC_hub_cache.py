"""A hub model already in the Hugging Face cache (the usual air-gapped node: `huggingface-cli download`
beforehand, then `HF_HUB_OFFLINE=1`) was refused: `HF_HUB_OFFLINE=1 plan someorg/cached-llama` said "not
in the zoo, and HF_HUB_OFFLINE is set so it was not fetched", and online with the hub unreachable the
error advised HF_HUB_OFFLINE=1, which led to that refusal. Offline, the hub client's cache is read with no
request at all; online, an unreachable hub falls back to it (as `hf_hub_download` does), with a note."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import huggingface_hub
import huggingface_hub.constants
import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.models import QuantMethod, hub, load_model, loader
from autoparallel.models.hub import HubFiles
from autoparallel.models.zoo import find_entry
from tests.local_server import closed_port

LLAMA_8B = copy.deepcopy(find_entry("meta-llama/Llama-3.1-8B").config)  # type: ignore[union-attr]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MODELOPT_FP8 = {"quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}}


def _cache(root: Path, repo: str = "someorg/cached-llama", quant: str | None = None) -> Path:
    """A hub cache as `hf_hub_download` leaves it: `refs/main` naming a snapshot holding config.json;
    `quant` "file": hf_quant_config.json in it too, "no_exist": the client's marker of its absence."""
    folder = root / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)
    (snapshot / "config.json").write_text(json.dumps(LLAMA_8B))
    if quant == "file":
        (snapshot / "hf_quant_config.json").write_text(json.dumps(MODELOPT_FP8))
    elif quant == "no_exist":
        marker = folder / ".no_exist" / COMMIT / "hf_quant_config.json"
        marker.parent.mkdir(parents=True)
        marker.touch()
    return snapshot


def _no_network(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the network was used")


@pytest.fixture
def offline_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """HF_HUB_OFFLINE=1, the hub client's cache at tmp_path/hub, and every way to the network shut:
    a socket's connect, a name lookup, the client's download."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = tmp_path / "hub"
    root.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _no_network)
    loader._load_hub.cache_clear()
    yield root
    loader._load_hub.cache_clear()


def test_a_cached_model_plans_offline_without_any_network(
    offline_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = _cache(offline_cache)
    rc = main(["plan", "someorg/cached-llama", "--cluster", "8xH100", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert err == ""  # offline, the cache is the expected place: no note
    assert json.loads(out)["config"]["tp"] >= 1
    # Planned as the same files fetched online would be.
    offline_spec = load_model("someorg/cached-llama")
    loader._load_hub.cache_clear()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(
        loader, "fetch_config_files", lambda model_id: HubFiles(snapshot / "config.json", None)
    )
    assert load_model("someorg/cached-llama") == offline_spec


def test_the_optional_quant_file_missing_from_the_cache_is_absent(offline_cache: Path) -> None:
    snapshot = _cache(offline_cache, "someorg/plain")  # config.json only
    assert hub.cached_config_files("someorg/plain") == HubFiles(snapshot / "config.json", None)
    assert load_model("someorg/plain").quantization is None
    _cache(offline_cache, "someorg/marked", quant="no_exist")  # the client's ".no_exist" marker
    files = hub.cached_config_files("someorg/marked")
    assert files is not None and files.quant_config is None
    assert load_model("someorg/marked").quantization is None
    snapshot = _cache(offline_cache, "someorg/fp8", quant="file")  # cached: read, as online
    assert hub.fetch_config_files("someorg/fp8") == HubFiles(
        snapshot / "config.json", snapshot / "hf_quant_config.json"
    )
    q = load_model("someorg/fp8").quantization
    assert q is not None and q.method is QuantMethod.FP8


def test_an_uncached_id_offline_is_the_refusal_naming_the_cache(offline_cache: Path) -> None:
    for model_id in ("someorg/not-cached", "some org/not a repo id"):
        with pytest.raises(InputError) as info:
            load_model(model_id)
        message = str(info.value)
        assert f"is not in the zoo nor in the local hub cache ({offline_cache})" in message, message
        assert "HF_HUB_OFFLINE is set so it was not fetched" in message and "\n" not in message
    with pytest.raises(InputError, match=r"not in the local hub cache \(.*\)$"):
        hub.fetch_config_files("someorg/not-cached")


_CLI = """
import socket, sys
def shut(*a, **k):
    raise AssertionError("the network was used")
socket.socket.connect = socket.socket.connect_ex = shut
socket.create_connection = socket.getaddrinfo = shut
from autoparallel.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The command line in a fresh interpreter (the hub client reads HF_HOME at its import), offline,
    with the sockets shut."""
    drop = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT")
    env = {k: v for k, v in os.environ.items() if k.upper() not in drop}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-c", _CLI, *argv], capture_output=True, text=True, timeout=60, env=env
    )


def test_the_command_line_plans_a_cached_model_offline(tmp_path: Path) -> None:
    _cache(tmp_path / "hub")
    run = _run(tmp_path, "plan", "someorg/cached-llama", "--cluster", "8xH100")
    assert run.returncode == 0 and run.stderr == "", run.stderr[-2000:]
    assert run.stdout.startswith("someorg/cached-llama on 1 node x 8 x H100"), run.stdout[:300]


def test_the_command_line_refuses_an_uncached_id_offline_in_one_line(tmp_path: Path) -> None:
    _cache(tmp_path / "hub")
    run = _run(tmp_path, "plan", "someorg/other-llama", "--cluster", "8xH100")
    lines = run.stderr.splitlines()
    assert run.returncode == 2 and len(lines) == 1 and run.stdout == "", run.stderr[-2000:]
    assert lines[0].startswith(
        f"error: 'someorg/other-llama' is not in the zoo nor in the local hub cache ({tmp_path / 'hub'}), "
        "and HF_HUB_OFFLINE is set so it was not fetched; known ids like"
    ), lines[0]


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The hub switched on (the suite runs offline), no proxy, a fresh client session, its cache at
    tmp_path/hub."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "AUTOPARALLEL_HUB_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    root = tmp_path / "hub"
    root.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root))
    huggingface_hub.close_session()
    loader._load_hub.cache_clear()
    yield root
    loader._load_hub.cache_clear()
    huggingface_hub.close_session()


def test_an_unreachable_hub_falls_back_to_the_cache_with_a_note(
    online: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = _cache(online)
    port = closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "2.5")
    start = time.perf_counter()
    spec = load_model("someorg/cached-llama")
    assert time.perf_counter() - start < 1.5
    assert spec.name == "someorg/cached-llama" and spec.num_layers == 32 and spec.quantization is None
    err = capsys.readouterr().err
    assert err == (
        f"note: the hub refused the connection at http://127.0.0.1:{port} (HF_ENDPOINT); read "
        f"someorg/cached-llama from the local hub cache ({online}) instead, as the hub client does\n"
    )
    assert hub.cached_config_files("someorg/cached-llama") == HubFiles(snapshot / "config.json", None)


def test_a_silent_hub_falls_back_to_the_cache_but_not_past_the_time_limit(
    online: Path, silent_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _cache(online)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent_port}")
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "0.4")
    files = hub.fetch_config_files("someorg/cached-llama")
    assert files.config.name == "config.json" and files.quant_config is None
    err = capsys.readouterr().err
    assert err.startswith("note: the hub did not answer within 0.4 s (AUTOPARALLEL_HUB_TIMEOUT); read ")
    # `plan --time-limit` spent by the fetch: an error whose advice works (the copy offline).
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "20")
    with hub.fetch_deadline(time.perf_counter() + 0.4), pytest.raises(InputError) as info:
        hub.fetch_config_files("someorg/cached-llama")
    assert "set HF_HUB_OFFLINE=1 to plan its copy in the local hub cache" in str(info.value)
