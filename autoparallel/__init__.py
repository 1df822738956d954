"""autoparallel: parallelism, memory and deployment plans for LLMs on GPU clusters, proved with CP-SAT.

Usage:
    >>> import autoparallel as ap
    >>> plan = ap.solve("meta-llama/Llama-3.1-70B-Instruct", "1x8xH100", workload="chatbot")  # doctest: +SKIP
    >>> print(plan.explain())                                                                # doctest: +SKIP
"""

from autoparallel.api import (
    Analysis,
    AutoParallel,
    SolverSettings,
    analyze,
    evaluate,
    optimize,
    pareto,
    solve,
    sweep,
)
from autoparallel.configs import Recompute, ServingConfig, TrainingConfig, ZeroStage
from autoparallel.errors import (
    AutoParallelError,
    InfeasibleError,
    InputError,
    InternalError,
    SolverTimeoutError,
)
from autoparallel.hardware import GPU, Cluster, detect_cluster, get_gpu, list_gpus
from autoparallel.memory.serving import VllmMemoryReport, vllm_memory
from autoparallel.memory.training import training_memory
from autoparallel.models import ModelSpec, list_models, load_model
from autoparallel.plan import ServingPlan, TrainingPlan
from autoparallel.sweeps.results import SweepResult
from autoparallel.workload import Serving, Training

__all__ = [
    "GPU",
    "Analysis",
    "AutoParallel",
    "AutoParallelError",
    "Cluster",
    "InfeasibleError",
    "InputError",
    "InternalError",
    "ModelSpec",
    "Recompute",
    "Serving",
    "ServingConfig",
    "ServingPlan",
    "SolverSettings",
    "SolverTimeoutError",
    "SweepResult",
    "Training",
    "TrainingConfig",
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
    "solve",
    "sweep",
    "training_memory",
    "vllm_memory",
]
