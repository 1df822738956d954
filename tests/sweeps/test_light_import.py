"""The sweep and front libraries load only when a sweep, a table or a plot needs them."""

from __future__ import annotations

import subprocess
import sys


def test_import_and_the_cli_parser_stay_light() -> None:
    code = (
        "import sys, autoparallel; from autoparallel.cli import build_parser; build_parser(); "
        "import autoparallel.sweeps, autoparallel.sweeps.results; "
        "heavy = ('pandas', 'pyarrow', 'matplotlib', 'dask', 'distributed', 'tqdm', 'ortools'); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
