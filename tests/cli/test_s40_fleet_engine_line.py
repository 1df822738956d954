"""A deployment engine's line printed its capacity beside a TTFT taken at another load: "2.40 req/s each
at TTFT 716 ms" read as the TTFT at 2.40 req/s, where the engine reaches the 2,000 ms limit (716 ms is at
its traffic share, 2.25 req/s). The line now names both loads."""

from __future__ import annotations

import re

import pytest

from autoparallel.cli import main


def test_the_engine_line_names_the_load_its_ttft_is_at(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "Qwen/Qwen3-8B", "--cluster", "2x8xH100", "--request-rate", "40", "--ttft-ms", "500"]
    assert main([*argv, "--isl", "1024", "--osl", "256"]) == 0
    out = capsys.readouterr().out
    assert "req/s each at TTFT" not in out
    pattern = (
        r"capacity ([\d.]+) req/s each, traffic share ([\d.]+) each \(([\d.]+) req/s; "
        r"(?:full-load )?TTFT (\d+) ms"
    )
    found = re.findall(pattern, out)
    assert found, out
    for capacity, share, load, ttft in found:
        assert float(load) == pytest.approx(float(share) * 40, abs=0.02)
        assert float(load) <= float(capacity) and int(ttft) <= 500
