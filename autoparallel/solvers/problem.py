"""What every planning space starts from: the model, the cluster, the workload and the knobs' values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from autoparallel.hardware import Cluster
    from autoparallel.models.spec import ModelSpec

W = TypeVar("W")
Opts = TypeVar("Opts")


@dataclass
class Problem(Generic[W, Opts]):
    """One planning request; each planner's space extends it with its domains."""

    model: ModelSpec
    """What is planned."""
    cluster: Cluster
    """On what."""
    workload: W
    """For what (`Serving` or `Training`)."""
    options: Opts
    """The values each knob may take (`ServingOptions` or `TrainingOptions`)."""
