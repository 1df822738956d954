"""autoparallel: parallelism, memory and deployment plans for LLMs on GPU clusters, proved with CP-SAT.

Usage:
    >>> import autoparallel as ap
    >>> plan = ap.solve("meta-llama/Llama-3.1-70B-Instruct", "1x8xH100", workload="chatbot")  # doctest: +SKIP
    >>> print(plan.explain())                                                                # doctest: +SKIP
"""

from autoparallel.api import (
    Analysis,
    AutoParallel,
    analyze,
    evaluate,
    optimize,
    pareto,
    pareto_deployment,
    solve,
    solve_top,
    training_memory,
    with_benchmark,
)
from autoparallel.configs import Recompute, ServingConfig, TrainingConfig, ZeroStage
from autoparallel.errors import (
    AutoParallelError,
    InfeasibleError,
    InputError,
    InternalError,
    SolverTimeoutError,
)
from autoparallel.fleet import FleetEntry, FleetPlan, solve_fleet
from autoparallel.hardware import GPU, Cluster, Pool, detect_cluster, get_gpu, list_gpus, parse_prices
from autoparallel.memory.serving import VllmMemoryReport, vllm_memory
from autoparallel.models import ModelSpec, list_models, load_model
from autoparallel.plan import ServingPlan, TrainingPlan
from autoparallel.solvers.serving.space import ServingOptions
from autoparallel.solvers.settings import SolverSettings
from autoparallel.solvers.training.space import TrainingOptions
from autoparallel.sweeps import sweep
from autoparallel.sweeps.results import SweepResult
from autoparallel.workload import Serving, Training

__all__ = [
    "GPU",
    "Analysis",
    "AutoParallel",
    "AutoParallelError",
    "Cluster",
    "FleetEntry",
    "FleetPlan",
    "InfeasibleError",
    "InputError",
    "InternalError",
    "ModelSpec",
    "Pool",
    "Recompute",
    "Serving",
    "ServingConfig",
    "ServingOptions",
    "ServingPlan",
    "SolverSettings",
    "SolverTimeoutError",
    "SweepResult",
    "Training",
    "TrainingConfig",
    "TrainingOptions",
    "TrainingPlan",
    "VllmMemoryReport",
    "ZeroStage",
    "analyze",
    "detect_cluster",
    "evaluate",
    "get_gpu",
    "list_gpus",
    "list_models",
    "load_model",
    "optimize",
    "pareto",
    "pareto_deployment",
    "parse_prices",
    "solve",
    "solve_fleet",
    "solve_top",
    "sweep",
    "training_memory",
    "vllm_memory",
    "with_benchmark",
]
