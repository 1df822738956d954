"""A burst whose first wave alone outlasts the room its TTFT leaves: infeasible (exit 1), not an
int64 overflow of the `client_queue` rule (exit 3).

`encoder.add_client_queue` charged a burst's engine (queue_room − first-wave prefill) · 2N · 100 ·
X ≥ K · D, with the time unit sized from the queue room alone (`queue_time_unit_us`); where the
first wave outlasts the room (Llama-3.1-70B tp1 pp4 on H100s, 1,000 ShareGPT prompts at TTFT 1 s:
about −6.9 s) the coefficient times the capacity's bound passed 2^63 and CP-SAT refused the model.
Such an engine can never meet the rule, so it is now held at 0 replicas under the same family.
"""

from __future__ import annotations

import functools

import pytest

from autoparallel.errors import InfeasibleError
from autoparallel.hardware import Cluster
from autoparallel.models import load_model
from autoparallel.solvers.deployment import FleetModel, build_deployment_space, solve_deployment
from autoparallel.solvers.deployment.encoder import build, queue_rooms_us
from autoparallel.solvers.deployment.mixed import build_mixed_space
from autoparallel.solvers.deployment.mixed_encoder import build_mixed
from autoparallel.workload import PRESETS


@functools.cache
def _fleet_model() -> FleetModel:
    workload = PRESETS["sharegpt"].model_copy(update={"osl": 32, "ttft_ms": 1000.0})
    fm = FleetModel(load_model("meta-llama/Llama-3.1-70B"), workload)
    assert fm.burst_prompts == 1000
    return fm


def test_a_first_wave_past_the_room_leaves_a_valid_model_in_both_encoders() -> None:
    cluster = Cluster.parse("1x8xH100")
    space = build_deployment_space([_fleet_model()], cluster)
    rooms = queue_rooms_us(space, 0, space.engines_of(model=0))
    assert min(rooms) < -1_000_000  # a first wave seconds past the room (the reproducer's tp1pp4)
    assert build(space, hard_demand=True).model.validate() == ""
    assert build(space, hard_demand=True, explain=True).model.validate() == ""
    mixed = build_mixed_space(_fleet_model(), cluster, mode="off")
    assert build_mixed(mixed).model.validate() == ""


def test_the_tpot_objective_names_the_ttft_limit_with_numbers() -> None:
    with pytest.raises(InfeasibleError) as info:
        solve_deployment([_fleet_model()], Cluster.parse("1x8xH100"), objective="tpot")
    text = str(info.value)
    assert "TTFT 1000 ms" in text and "first-wave prefill" in text and "its TTFT leaves" in text
