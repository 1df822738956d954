"""A capacity in JSON is rounded down, never up (plan.py `round_floats`, `ROUNDED_DOWN`).

A deployment engine's `capacity_rps` was rounded to the nearest 6 significant digits; fed back as a
request rate, a capacity rounded up gave a TTFT 0.03-0.08 ms over its limit. One rounding serves the
plan and the fleet JSON (fleet.py had its own copy)."""

from __future__ import annotations

from autoparallel import fleet, plan


def test_a_capacity_rounds_down_and_other_floats_to_nearest() -> None:
    doc = {"capacity_rps": 2.40000999, "ttft_ms": 2.40000999, "models": [{"capacity_rps": 123456.78}]}
    out = plan.round_floats(doc)
    assert out["capacity_rps"] == 2.4 and out["ttft_ms"] == 2.40001
    assert out["models"][0]["capacity_rps"] == 123456.78  # 4 decimals kept: exact
    assert plan.round_floats({"capacity_rps": 0.123456789}) == {"capacity_rps": 0.123456}
    assert plan.round_floats({"capacity_rps": 7.0}) == {"capacity_rps": 7.0}
    assert not hasattr(fleet, "_round")


def test_loads_round_down_with_the_capacity_they_are_bounded_by() -> None:
    """A prefill engine at full load showed capacity 3.8251 and load 3.82511 (both 3.825108384900138)."""
    value = 3.825108384900138
    out = plan.round_floats({"capacity_rps": value, "load_rps": value, "served_rps": value})
    assert out["load_rps"] <= out["capacity_rps"] and out["served_rps"] <= out["capacity_rps"]


def test_a_shortfall_in_text_is_never_zero() -> None:
    from autoparallel.workload import rps_text

    assert rps_text(0.00423, up=True) == "0.00423" and rps_text(11.4608) == "11.46"
    assert rps_text(14.8092) == "14.80" and rps_text(0.9995, up=True) == "1.00"
