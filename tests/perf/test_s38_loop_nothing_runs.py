"""A closed loop on an engine that holds no request (its weights leave no KV cache: a limit of 0)
waits without bound, said as inf, with no numpy division warning (under `-W error` it was exit 3)."""

from __future__ import annotations

import math
import warnings

import autoparallel as ap
from autoparallel.perf.serving import _loop_queue_s


def test_nothing_completes_means_an_unbounded_wait() -> None:
    assert math.isinf(_loop_queue_s(64.0, 0.0, 0.0, 0.05))
    assert _loop_queue_s(64.0, 32.0, 10.0, 0.1) == (64.0 - 32.0 - 1.0) / 10.0


def test_evaluate_of_a_layout_that_holds_nothing_warns_of_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = ap.evaluate(
            "meta-llama/Llama-3.1-70B",
            "1x8xH100",
            ap.ServingConfig(tp=1),
            ap.Serving(isl=1024, osl=256, concurrency=64),
            compare=False,
        )
    assert result.problems
