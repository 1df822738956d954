"""The public facade is small, exact and documented."""

from __future__ import annotations

import inspect

import autoparallel as ap
from autoparallel import configs, plan, workload
from autoparallel.models import spec


def test_all_is_sorted_and_complete() -> None:
    assert len(set(ap.__all__)) == len(ap.__all__)
    for name in ap.__all__:
        assert hasattr(ap, name), name


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, autoparallel; "
        "print(any(m.split('.')[0] in ('ortools', 'transformers', 'torch') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_public_field_is_documented() -> None:
    classes = [
        configs.ServingConfig,
        configs.TrainingConfig,
        workload.Serving,
        workload.Training,
        plan.ServingPlan,
        plan.TrainingPlan,
        spec.ModelSpec,
        spec.LayerSpec,
        spec.AttentionSpec,
        spec.MlpSpec,
        spec.ParamGroups,
        ap.Cluster,
        ap.GPU,
        ap.VllmMemoryReport,
    ]
    missing = []
    for cls in classes:
        source = inspect.getsource(cls)
        for name in cls.model_fields:
            # a docstring directly under the field: `name: type ...` followed by a line starting with """
            lines = source.splitlines()
            idx = next((i for i, line in enumerate(lines) if line.strip().startswith(f"{name}:")), None)
            if idx is None:
                continue  # inherited from a documented base
            if not lines[idx + 1].strip().startswith('"""'):
                missing.append(f"{cls.__name__}.{name}")
    assert not missing, f"fields without a docstring: {missing}"
