"""Run a benchmark where an engine is installed: the checker environments' Pythons (vLLM's, SGLang's)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys


def rerun_in_checker(module: str, env_var: str, script: str) -> int | None:
    """None where `module` imports (the benchmark runs on here); else the exit status of `script` re-run,
    with this command's arguments, by the Python `env_var` names (2, with a message, when it names none)."""
    try:
        importlib.import_module(module)
    except ImportError:
        python = os.environ.get(env_var)
        if not python:
            print(f"needs {module}: set {env_var} to the {module} checker's Python", file=sys.stderr)
            return 2
        return subprocess.run([python, script, *sys.argv[1:]], check=False).returncode
    return None
