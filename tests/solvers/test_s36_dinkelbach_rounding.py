"""A Dinkelbach step whose λ must be rounded rounds it down, so that a step's bound can prove the
ratio (rounded to the nearest fraction, λ sat above the ratio and the plan stopped FEASIBLE at a
99.99% gap: Mixtral-8x7B disaggregated on 512x8xH100)."""

from fractions import Fraction

import pytest

from autoparallel.solvers.deployment.driver import below


@pytest.mark.parametrize(
    "x",
    [Fraction(11092512550829525, 10**19), Fraction(355, 113), Fraction(1, 3), Fraction(987654321, 123456789)],
)
@pytest.mark.parametrize("most", [1, 7, 1000, 10**6])
def test_below_is_the_closest_fraction_at_or_below(x: Fraction, most: int) -> None:
    got = below(x, most)
    assert got <= x and got.denominator <= most
    brute = max(Fraction(int(x * q), q) for q in range(1, min(most, 3000) + 1))
    if most <= 3000:
        assert got == brute


def test_the_mixtral_disaggregated_cost_ratio_is_proven() -> None:
    from autoparallel.disagg import compare_disagg
    from autoparallel.hardware import Cluster
    from autoparallel.solvers.settings import SolverSettings
    from autoparallel.workload import Serving

    comp = compare_disagg(
        "mistralai/Mixtral-8x7B-v0.1",
        Serving.preset("chatbot"),
        Cluster.parse("512x8xH100"),
        objective="cost_per_mtok",
        settings=SolverSettings.create(workers=1),
    )
    assert comp.disaggregated is not None and comp.disaggregated.solver.status == "OPTIMAL"
    assert comp.disaggregated.solver.gap < 1e-9
