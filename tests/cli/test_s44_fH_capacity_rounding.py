"""One capacity, one figure: a rate past what the plans carry names their capacities rounded down.

`plan meta-llama/Llama-3.1-8B --cluster 8xH100 --isl 1000 --osl 200 --request-rate 160` (exit 1) said
"the best plan that fits completes 159.16/s" and then "the whole-cluster deployment (several engines)
carries 159.17 req/s" for the same 8 x tp1 engines (8 x 19.8962 = 159.1696 req/s): the first rounded
down, as `workload.rps_text` rounds every capacity, the second to nearest (`:.2f`), so the deployment
read as carrying more than the single engine.
"""

from __future__ import annotations

import re

import pytest

from autoparallel.cli import main

CMD = ["plan", "meta-llama/Llama-3.1-8B", "--cluster", "8xH100", "--isl", "1000", "--osl", "200"]


def test_the_same_capacity_prints_one_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*CMD, "--request-rate", "160", "--disagg", "off"]) == 1
    err = capsys.readouterr().err
    single = re.search(r"the best plan that fits completes ([\d.]+)/s", err)
    whole = re.search(r"the whole-cluster deployment \(several engines\) carries ([\d.]+) req/s", err)
    assert single is not None and whole is not None, err
    assert single.group(1) == whole.group(1) == "159.16"
