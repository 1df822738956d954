"""`plan --time-limit` bounds the whole command, a hub fetch of a model outside the zoo included:
`plan someone/model --time-limit 2` took 20.8 s on an unreachable hub (AUTOPARALLEL_HUB_TIMEOUT's 20 s,
then the plan's own limit)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest

from autoparallel import api
from autoparallel.cli import main
from autoparallel.models import loader
from autoparallel.solvers.settings import SolverSettings

ZOO_CONFIG = Path(loader.__file__).parent / "zoo" / "Qwen__Qwen3-0.6B.json"


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub switched on (the suite runs offline) with its own long time-out, and no fetch cached."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("AUTOPARALLEL_HUB_TIMEOUT", "20")
    loader._load_hub.cache_clear()


FETCH_S = 0.25
"""How long `slow_hub`'s download of each file takes."""


@pytest.fixture
def slow_hub(online: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A hub that serves a zoo model's config.json (and no quantization config) after FETCH_S."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(json.loads(ZOO_CONFIG.read_text())["config"]))

    def slow_download(model_id: str, filename: str, **kwargs: object) -> str:
        time.sleep(FETCH_S)
        if filename != "config.json":
            raise huggingface_hub.utils.EntryNotFoundError("404")
        return str(config)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", slow_download)


def test_a_hub_that_never_answers_costs_the_time_limit_not_the_hub_timeout(
    online: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stop = threading.Event()
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: stop.wait(30))
    start = time.perf_counter()
    try:
        rc = main(["plan", "someone/not-in-the-zoo", "--cluster", "1xH100", "--time-limit", "0.5"])
    finally:
        stop.set()
    assert rc == 2
    assert time.perf_counter() - start < 3.0
    err = capsys.readouterr().err
    assert "did not answer within" in err and "what --time-limit left" in err, err


def test_the_solvers_get_what_the_fetch_left_of_the_limit(
    slow_hub: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    limits: list[float] = []
    real_top = api.solve_top

    def spy(*a: object, **k: object) -> object:
        limits.append(k["settings"].time_limit_s)  # type: ignore[union-attr]
        return real_top(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "solve_top", spy)
    argv = ["plan", "someone/qwen3-copy", "--cluster", "1xH100", "--time-limit", "20", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["config"]["tp"] >= 1
    assert limits and limits[0] <= 20 - FETCH_S, limits


def test_a_fleet_files_hub_models_are_fetched_within_the_limit_too(
    slow_hub: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A --fleet file's models were read inside `solve_fleet`, after its settings took the whole limit:
    a 2 s fetch under --time-limit 5 left the solvers a deadline at +9 s."""
    limits: list[float] = []
    real = SolverSettings.create.__func__  # type: ignore[attr-defined]

    def spy(cls: type[SolverSettings], **kwargs: Any) -> SolverSettings:
        settings = real(cls, **kwargs)
        limits.append(settings.time_limit_s)
        return settings

    monkeypatch.setattr(SolverSettings, "create", classmethod(spy))
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - model: someone/qwen3-copy\n    request_rate: 2\n")
    assert main(["plan", "--fleet", str(fleet), "--cluster", "1x8xH100", "--time-limit", "20"]) == 0
    assert limits and max(limits) <= 20 - FETCH_S, limits
