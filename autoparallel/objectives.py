"""The objective registry: every objective name the planners accept, for serving and for training.

The CLI's `--objective` / `--objectives` choices, the API's validation and every "unknown objective"
message come from here, so the lists cannot drift apart. No solver code: this module is light enough
for argparse.

An objective is a name, a tuple of names (lexicographic: the first is optimized, the next breaks its
ties, ...) or a mapping {name: weight} (a weighted sum; see `solvers/driver.py` for the normalisation).
A single name is expanded to its default chain, so that ties are broken by a second objective.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from autoparallel.errors import InputError

Kind = Literal["serving", "training", "deployment"]


@dataclass(frozen=True)
class ObjectiveInfo:
    """One objective: its sense and what it measures."""

    name: str
    maximize: bool
    """True when larger is better (in the float model's units)."""
    meaning: str
    attribute: str | None = None
    """The float model's result field that holds the value (`ServingPerf` / `TrainingPerf`)."""


SERVING: dict[str, ObjectiveInfo] = {
    o.name: o
    for o in (
        ObjectiveInfo("throughput", True, "output tokens/s of the whole deployment", "output_tokens_per_s"),
        ObjectiveInfo("ttft", False, "time to first token, ms", "ttft_ms"),
        ObjectiveInfo("tpot", False, "time per output token, ms", "tpot_ms"),
        ObjectiveInfo("cost", False, "US$ per million output tokens", "usd_per_million_tokens"),
        ObjectiveInfo("memory", True, "KV-cache headroom on the tightest GPU, GiB", "kv_headroom_gib"),
    )
}
"""Serving objectives."""

TRAINING: dict[str, ObjectiveInfo] = {
    o.name: o
    for o in (
        ObjectiveInfo("throughput", True, "tokens/s (shortest step time)", "tokens_per_s"),
        ObjectiveInfo("mfu", True, "model FLOPs utilization (fewest GPU-seconds per step)", "mfu"),
        ObjectiveInfo("cost", False, "US$ to the token budget (GPUs x step time)"),
        ObjectiveInfo("memory", True, "memory headroom on the fullest pipeline stage"),
    )
}
"""Training objectives."""

DEPLOYMENT: dict[str, ObjectiveInfo] = {
    o.name: o
    for o in (
        ObjectiveInfo("goodput", True, "output tokens/s served within each model's SLOs, up to its rate"),
        ObjectiveInfo("throughput", True, "output tokens/s of every engine at its SLO capacity"),
        ObjectiveInfo("cost", False, "US$ per hour of the GPUs used"),
        ObjectiveInfo("gpus", False, "GPUs used"),
        ObjectiveInfo("cost_per_mtok", False, "US$ per million output tokens served (a ratio)"),
        ObjectiveInfo(
            "tpot", False, "the worst TPOT of one model's engines, ms (decode engines: pure decode)"
        ),
    )
}
"""Deployment (fleet) objectives: replica counts over engines, pools and models. `tpot` is one model's
(`solvers/deployment/front.py::solve_mixed`: the query of a deployment front's first point)."""

ALIASES: dict[str, str] = {"headroom": "memory", "cost-per-mtok": "cost_per_mtok"}
"""Other names accepted for an objective (both problems)."""

DEFAULT_CHAINS: dict[Kind, dict[str, tuple[str, ...]]] = {
    "serving": {
        "throughput": ("throughput", "tpot"),
        "ttft": ("ttft", "throughput"),
        "tpot": ("tpot", "throughput"),
        "cost": ("cost", "throughput"),
        "memory": ("memory", "throughput"),
    },
    # memory: plans of one peak MiB differ up to 2x in step time (Qwen3-30B-A3B on 16 H100s: 27.8 s
    # and 15.2 s at 30.38 GiB), so the fastest of them, as `pareto`'s front ends
    "training": {
        "throughput": ("throughput",),
        "mfu": ("mfu",),
        "cost": ("cost",),
        "memory": ("memory", "throughput"),
    },
    "deployment": {
        "goodput": ("goodput", "cost"),
        "throughput": ("throughput", "cost"),
        "cost": ("cost", "throughput"),
        "gpus": ("gpus", "cost", "throughput"),
        "cost_per_mtok": ("cost_per_mtok",),
        "tpot": ("tpot", "throughput"),
    },
}
"""The lexicographic chain a single objective name stands for."""

Chain = tuple[str, ...] | dict[str, float]
"""A validated objective: canonical names in lexicographic order, or canonical weights."""


def registry(kind: Kind) -> dict[str, ObjectiveInfo]:
    """The objectives of one problem kind."""
    return {"serving": SERVING, "training": TRAINING, "deployment": DEPLOYMENT}[kind]


def choices() -> tuple[str, ...]:
    """Every name the CLI accepts (both problems, aliases included)."""
    return tuple(dict.fromkeys((*SERVING, *TRAINING, *DEPLOYMENT, *ALIASES)))


def help_text() -> str:
    """The objectives of each problem, for `--help`."""
    alias = ", ".join(f"{a} = {n}" for a, n in ALIASES.items())
    kinds = (("serving", SERVING), ("training", TRAINING), ("deployment", DEPLOYMENT))
    return "; ".join(f"{k}: {', '.join(r)}" for k, r in kinds) + f" ({alias})"


def canonical(name: object, kind: Kind) -> str:
    """The registry name of `name` for `kind`.

    Raises:
        InputError: not a string, or not an objective of `kind` (the message lists the valid ones).
    """
    if not isinstance(name, str):
        raise InputError(f"an objective name must be a string, got {type(name).__name__} {name!r:.60}")
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    valid = registry(kind)
    if key in valid:
        return key
    kinds: tuple[Kind, ...] = ("serving", "training", "deployment")
    others = [k for k in kinds if k != kind and key in registry(k)]
    where = f"; {key!r} is a {' and '.join(others)} objective" if others else ""
    aliases = ", ".join(f"{a} = {n}" for a, n in ALIASES.items() if n in valid)
    raise InputError(
        f"unknown {kind} objective {name!r:.60}{where}; choose from {', '.join(valid)} ({aliases})"
    )


def parse_objective(objective: object, kind: Kind) -> Chain:
    """Validate an objective (name, sequence of names or {name: weight}) and expand a single name to its
    default chain.

    Raises:
        InputError: an unknown name, an empty sequence, a repeated name, or a weight that is not a
            finite number >= 0 (with at least one > 0).
    """
    if isinstance(objective, Mapping):
        weights: dict[str, float] = {}
        for name, weight in objective.items():
            key = canonical(name, kind)
            real = isinstance(weight, numbers.Real) and not isinstance(weight, bool)
            if not real or not 0 <= (weight if isinstance(weight, (int, float)) else float(weight)) < 1e12:
                raise InputError(
                    f"objective weight for {key!r} must be a number in [0, 1e12), got {weight!r:.40}"
                )
            weights[key] = weights.get(key, 0.0) + float(weight)
        if not weights or not any(weights.values()):
            raise InputError(
                f"weighted objective needs at least one positive weight, got {dict(objective)!r:.80}"
            )
        return weights
    if isinstance(objective, str):
        return DEFAULT_CHAINS[kind][canonical(objective, kind)]
    if isinstance(objective, (tuple, list)):
        names = tuple(canonical(n, kind) for n in objective)
        if not names:
            raise InputError("objective: an empty list; name at least one objective")
        if len(set(names)) != len(names):
            raise InputError(f"objective: {list(names)} repeats a name")
        return names
    raise InputError(
        f"objective must be a name, a list of names or {{name: weight}}, got {type(objective).__name__}"
    )


def canonical_objective(objective: object, kind: Kind) -> str | tuple[str, ...] | dict[str, float]:
    """An objective as the caller gave it (a name, names or weights), validated and spelled canonically,
    not expanded: a name is its registry name ("TTFT", " ttft " -> "ttft"; the alias "headroom" ->
    "memory"), a sequence its names' tuple, weights `parse_objective`'s. What a planner is handed and a
    plan stores (`plan_label`), so that no reader sees the caller's spelling.

    Raises:
        InputError: whatever `parse_objective` refuses.
    """
    chain = parse_objective(objective, kind)
    return canonical(objective, kind) if isinstance(objective, str) else chain


def plan_label(objective: object, kind: Kind) -> str:
    """The objective a plan stores (`plan.objective`), from what the caller gave: the canonical name of a
    single name ("TTFT" -> "ttft", "headroom" -> "memory"), `label` of the canonical chain of a sequence
    (("TTFT", "throughput") -> "ttft>throughput") or weights ({"TTFT": 1} -> "ttft=1"). Its first name
    (before `>`, `,` or `=`) is the primary objective.

    Raises:
        InputError: whatever `parse_objective` refuses.
    """
    given = canonical_objective(objective, kind)
    return given if isinstance(given, str) else label(given)


def primary_name(stored: str) -> str:
    """The first objective named by a stored `plan_label` (a name, `a>b`, or `a=1,b=0.5`)."""
    return stored.split(">", 1)[0].split(",", 1)[0].split("=", 1)[0]


def deployment_objective(name: str | None, has_rate: bool) -> str | None:
    """The deployment planner's objective for a serving objective name (`plan --objective`, a sweep
    scenario's `objective`), for the sections and rows that plan a deployment of the same request:
    cost is $/hour at the rate ($ per million tokens without one); tpot is the worst TPOT of the
    deployment's engines, then throughput (`DEFAULT_CHAINS`); ttft / headroom (memory) / mfu are not
    deployment objectives (`deployment_objective_note` says why), so the deployment takes its default
    (None: goodput with a rate, throughput without); the rest are deployment objectives already."""
    if name in (None, "ttft", "headroom", "memory", "mfu"):
        return None
    if name == "cost":
        return "cost" if has_rate else "cost_per_mtok"
    return ALIASES.get(name, name)


NOT_FOR_DEPLOYMENTS: dict[str, str] = {
    "ttft": "a deployment's TTFT is a limit (--ttft-ms), not an objective: a disaggregated TTFT is the "
    "prefill ranks' queueing at the carried load, not linear in the replica counts (docs/design.md)",
    "memory": "KV-cache headroom is one engine's figure, not a deployment's",
    "mfu": "mfu is a training objective",
}
"""Why a serving objective name is not planned for deployments (`deployment_objective` gives None)."""


def deployment_objective_note(name: str | None, has_rate: bool) -> str:
    """One line saying that the deployment sections are not planned at `--objective name` and at what
    they are planned instead (empty when they are planned at it)."""
    if name is None or deployment_objective(name, has_rate) is not None:
        return ""
    key = ALIASES.get(name, name)
    default = "goodput" if has_rate else "throughput"
    why = NOT_FOR_DEPLOYMENTS.get(key, f"{key} is not a deployment objective")
    return f"--objective {name}: the deployment sections are planned for {default} (their default): {why}"


def label(chain: Chain) -> str:
    """`throughput>tpot` for a chain, `throughput=1,ttft=0.5` for weights."""
    if isinstance(chain, dict):
        return ",".join(f"{k}={w:g}" for k, w in chain.items())
    return ">".join(chain)


def value(perf: object, name: str, kind: Kind = "serving") -> float:
    """Objective `name` of a float-model result (`ServingPerf` or `TrainingPerf`), in real units.

    Raises:
        InputError: the objective has no single result field (training cost and memory).
    """
    info = registry(kind)[canonical(name, kind)]
    if info.attribute is None:
        raise InputError(f"{kind} objective {info.name!r} is not a field of the float model's result")
    return float(getattr(perf, info.attribute))
