"""A workload file's max_model_len under a new isl / osl, and a workload file named like a preset it
is not (s42 f3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autoparallel.cli import main
from autoparallel.errors import InputError
from autoparallel.solvers.serving.remedies import _limit_source
from autoparallel.sweeps import make_scenario
from autoparallel.workload import PRESETS, Serving, lengths_at
from autoparallel.workload_profile import load_workload_file

SMALL = "meta-llama/Llama-3.2-1B"


def _log(tmp_path: Path) -> Path:
    """A request log of 500 chat requests with spread lengths (mean about 1,000 + 250 tokens)."""
    rng = np.random.default_rng(7)
    prompts = np.clip(rng.lognormal(np.log(800), 0.6, 500), 20, 6000).astype(int)
    outputs = np.clip(rng.lognormal(np.log(200), 0.6, 500), 5, 2000).astype(int)
    log = tmp_path / "log.jsonl"
    rows = [
        {"timestamp": 0.5 * i, "prompt_tokens": int(p), "completion_tokens": int(o)}
        for i, (p, o) in enumerate(zip(prompts, outputs, strict=True))
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return log


def _profiled(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "wl.json"
    assert main(["profile", str(_log(tmp_path)), "-o", str(out), *extra]) == 0
    return out


def _share_over(w: Serving, context: int) -> float:
    """The share of requests (prompt + output, drawn independently as the replay draws them) longer
    than `context`."""
    probs = (np.arange(400) + 0.5) / 400
    isl = lengths_at(probs, w.isl, w.isl_cv, w.isl_quantiles)
    osl = lengths_at(probs, w.osl, w.osl_cv, w.osl_quantiles)
    return float(((isl[:, None] + osl[None, :]) > context).mean())


def test_a_new_isl_drops_a_max_model_len_below_the_new_shapes_p99(tmp_path: Path) -> None:
    f = load_workload_file(_profiled(tmp_path))
    assert f.max_model_len is not None and _share_over(f, f.max_model_len) < 0.03
    longer = f.with_updates({"isl": 2 * f.isl})
    # before: the file's max_model_len stayed (isl + osl fit under it) and 8.6 % exceeded it
    assert (
        _share_over(f.with_updates({"isl": 2 * f.isl, "max_model_len": f.max_model_len}), f.max_model_len)
        > 0.05
    )
    assert longer.max_model_len is None
    assert longer.context_len >= longer.held_len and _share_over(longer, longer.context_len) < 0.02
    # a shape the file's context still holds keeps it; a max_model_len given with the new isl is kept
    assert f.with_updates({"isl": f.isl // 2}).max_model_len == f.max_model_len
    pinned = f.with_updates({"isl": 2 * f.isl, "max_model_len": f.max_model_len + 1})
    assert pinned.max_model_len == f.max_model_len + 1
    # a sweep row over the file goes through the same rule
    s = make_scenario(SMALL, "1xH100", {"workload_file": str(tmp_path / "wl.json"), "isl": 2 * f.isl})
    w = s.to_workload()
    assert isinstance(w, Serving) and w.max_model_len is None and w.context_len == longer.context_len


def test_the_plan_deploys_a_context_for_the_new_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _profiled(tmp_path)
    old = load_workload_file(f)
    capsys.readouterr()
    code = main(
        ["plan", SMALL, "--cluster", "1xH100", "--workload-file", str(f), "--isl", str(2 * old.isl), "--json"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    context = out["config"]["max_model_len"]
    assert context > old.max_model_len
    assert context >= old.with_updates({"isl": 2 * old.isl}).held_len


def test_a_name_only_file_named_like_a_preset_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = tmp_path / "x.json"
    x.write_text(json.dumps({"serving": {"name": "rag"}}))
    with pytest.raises(InputError, match=r"'rag', the rag preset's.*isl 1,024 \(rag: 8,192\).*ttft_ms unset"):
        load_workload_file(x)
    assert main(["plan", SMALL, "--cluster", "1xH100", "--workload-file", str(x)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "rag preset" in err
    # a file that is the preset passes as it
    x.write_text(json.dumps({"serving": PRESETS["rag"].model_dump(exclude_defaults=True)}))
    assert load_workload_file(x) == PRESETS["rag"]


def test_a_profiled_workload_named_like_a_preset_never_reads_as_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _profiled(tmp_path, "--name", "chatbot")
    w = load_workload_file(f)
    assert w.name == "chatbot (profiled)"
    capsys.readouterr()
    assert main(["plan", SMALL, "--cluster", "1xH100", "--workload-file", str(f)]) == 0
    out = capsys.readouterr().out
    assert "workload chatbot (profiled):" in out and "workload chatbot:" not in out
    # a file profile wrote before, named chatbot, with chatbot's TTFT limit added by hand: the limit is
    # the file's, not the chatbot preset's
    doc = json.loads(f.read_text())
    doc["serving"].update(name="chatbot", ttft_ms=2000.0)
    f.write_text(json.dumps(doc))
    old = load_workload_file(f)
    assert old.name == "chatbot (profiled)"
    assert _limit_source(old, "ttft_ms") == " (the workload 'chatbot (profiled)' sets it)"
