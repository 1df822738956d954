"""One objective registry: the CLI's choices, the API's validation and the messages agree."""

from __future__ import annotations

import pytest

from autoparallel import objectives
from autoparallel.cli.plan_cmd import add_plan_parser
from autoparallel.errors import InputError


def test_every_cli_choice_is_an_objective_of_some_problem() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_plan_parser(parser.add_subparsers())
    plan = parser._subparsers._group_actions[0].choices["plan"]  # type: ignore[union-attr]
    action = next(a for a in plan._actions if "--objective" in a.option_strings)
    assert set(action.choices) == set(objectives.choices())
    for name in action.choices:
        kinds = [k for k in ("serving", "training", "deployment") if _accepts(name, k)]
        assert kinds, f"--objective {name} is listed but no planner accepts it"


def _accepts(name: str, kind: objectives.Kind) -> bool:
    try:
        objectives.parse_objective(name, kind)
    except InputError:
        return False
    return True


@pytest.mark.parametrize("kind", ["serving", "training"])
def test_headroom_is_memory_for_both_problems(kind: objectives.Kind) -> None:
    assert objectives.canonical("headroom", kind) == "memory"
    assert objectives.parse_objective({"headroom": 1.0}, kind) == {"memory": 1.0}


def test_a_training_objective_asked_of_serving_says_so() -> None:
    with pytest.raises(InputError, match="'mfu' is a training objective; choose from throughput"):
        objectives.parse_objective("mfu", "serving")


@pytest.mark.parametrize(
    "bad",
    [3, None, [], ["throughput", "throughput"], {"throughput": -1}, {"throughput": float("nan")}, {}],
)
def test_malformed_objectives_are_input_errors(bad: object) -> None:
    with pytest.raises(InputError):
        objectives.parse_objective(bad, "serving")


def test_single_names_expand_to_their_chains() -> None:
    assert objectives.parse_objective("cost", "serving") == ("cost", "throughput")
    assert objectives.parse_objective(("tpot", "ttft"), "serving") == ("tpot", "ttft")
    assert objectives.label(("throughput", "tpot")) == "throughput>tpot"
