"""Does SGLang accept this `python -m sglang.launch_server` line? SGLang's own start-up arguments code,
run offline on a CPU.

Run with a Python that has SGLang 0.5.6 and the transformers it pins, 4.57.1, installed
($SGLANG_CHECK_PYTHON), not with the project's:

    $SGLANG_CHECK_PYTHON check_sglang_args.py < cases.json

Each case is {"line": ..., "config": config.json as a dict, "gpu_mem_mib": ..., "capability": [9, 0],
"vendor": "nvidia" or "amd"} (an AMD GPU runs as ROCm: torch reports a HIP version and no CUDA one;
some SGLang modules read that once, when first imported, so one process checks one vendor's cases),
and optionally "remote_config_as": the transformers `model_type` whose config class the checkpoint's
own config code is (Kimi-K2's `configuration_deepseek.DeepseekV3Config`: "deepseek_v3"). The
checkpoint's code is not here to run, so for a line with `--trust-remote-code` that class stands in
for it; without the flag nothing does, and transformers refuses the unknown `model_type` as it would.
For each it writes the config to a folder, points `--model-path` there, and builds `ServerArgs` from the
parsed line as `launch_server` does: `__post_init__` (the defaults SGLang derives from the GPU's memory,
the model-specific adjustments, attention backend, page size, data / pipeline / expert parallelism
handling and their asserts) and `check_server_args`. What a CPU lacks is faked, no more: the GPU's
memory (`get_device_memory_capacity`, nvidia-smi's value on a GPU), its compute capability and
device properties, a CUDA (or HIP) version, FlashInfer's presence, and the compiled kernel packages
the arguments code imports but never calls (`MISSING_ON_CPU`: modules whose attributes are mocks).
Checks SGLang makes later, while loading the model (`ModelRunner`: the pipeline-parallel model list,
the sm75 floor), are not run here.

Prints one JSON list: per case {"accepted", "error" (the exception's message), "resolved" (the values
SGLang settled on: mem_fraction_static, chunked_prefill_size, cuda_graph_max_bs, page_size,
kv_cache_dtype, attention backends, max_running_requests; and `profiled_cell_bytes`, the bytes a token
is counted at when the pool is sized, restated from `ModelRunner.profile_max_num_token` with SGLang's
own `ModelConfig` values)}.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.machinery
import io
import json
import shlex
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import torch

MISSING_ON_CPU = {"sgl_kernel", "compressed_tensors", "gguf", "aiter", "vllm"}
"""Packages of compiled kernels (or their optional helpers) SGLang's arguments code imports at module
level without calling them (`aiter`: AMD's, which SGLang's ROCm images run with `SGLANG_USE_AITER=1`; `vllm`:
whose kernels its ROCm code imports)."""


class _MockModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return MagicMock(name=f"{self.__name__}.{name}")


class _MockFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name.split(".")[0] in MISSING_ON_CPU:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _MockModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


_GPU: dict[str, Any] = {"capability": (9, 0), "mem": 81559.0}

sys.meta_path.append(_MockFinder())
torch.library.register_fake = lambda *a, **k: lambda f: f  # the kernels' fake impls
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 8
torch.cuda.get_device_capability = lambda *a, **k: _GPU["capability"]
torch.cuda.get_device_properties = lambda *a, **k: types.SimpleNamespace(
    major=_GPU["capability"][0],
    minor=_GPU["capability"][1],
    total_memory=int(_GPU["mem"] * 2**20),
    gcnArchName=_GPU.get("gcn", ""),  # AMD's ISA name (gfx942: MI300X, MI325X)
    name=_GPU.get("gcn") or "NVIDIA GPU",
    multi_processor_count=132,
)

import sglang.srt.server_args as server_args  # noqa: E402
import sglang.srt.utils.common as sglang_common  # noqa: E402
from transformers import AutoConfig  # noqa: E402
from transformers.models.auto.configuration_auto import CONFIG_MAPPING  # noqa: E402

# A CUDA version only after the imports: set earlier, it sends transformers' lazy imports looking for
# CUDA libraries. SGLang's device probes read it when called, through these caches.
torch.version.cuda = "12.9"  # type: ignore[misc]


def _forget_device_probes() -> None:
    """Clear SGLang's cached device probes (`is_cuda`, `is_sm90_supported`, ... are `lru_cache`d), so
    each case sees its own GPU."""
    for value in vars(sglang_common).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


server_args.get_device_memory_capacity = lambda device=None: _GPU["mem"]
# SGLang's CUDA install brings FlashInfer (a dependency of its wheel), which a CPU environment lacks.
server_args.is_flashinfer_available = lambda: True
server_args.ServerArgs.check_torch_2_9_1_cudnn_compatibility = lambda self: None

RESOLVED = (
    "mem_fraction_static",
    "chunked_prefill_size",
    "cuda_graph_max_bs",
    "page_size",
    "kv_cache_dtype",
    "attention_backend",
    "prefill_attention_backend",
    "decode_attention_backend",
    "nsa_prefill_backend",
    "nsa_decode_backend",
    "max_running_requests",
    "tp_size",
    "dp_size",
    "ep_size",
    "pp_size",
    "enable_dp_attention",
    "disable_cuda_graph",
    "moe_a2a_backend",
    "quantization",
)


@contextlib.contextmanager
def _remote_config(case: dict[str, Any], trusted: bool) -> Iterator[None]:
    """While one case runs: the stand-in for the checkpoint's own config class (module docstring)."""
    model_type, base = case["config"].get("model_type"), case.get("remote_config_as")
    if not (trusted and base):
        yield
        return
    parent = CONFIG_MAPPING[base]
    AutoConfig.register(model_type, type("RemoteConfig", (parent,), {"model_type": model_type}))
    try:
        yield
    finally:
        CONFIG_MAPPING._extra_content.pop(model_type, None)


def check(case: dict[str, Any], folder: Path) -> dict[str, Any]:
    words = shlex.split(case["line"])
    if words[:3] != ["python", "-m", "sglang.launch_server"]:
        return {"accepted": False, "error": "not a `python -m sglang.launch_server` line", "resolved": {}}
    (folder / "config.json").write_text(json.dumps(case["config"]), encoding="utf-8")
    _GPU["capability"] = tuple(case["capability"])
    _GPU["mem"] = float(case["gpu_mem_mib"])
    amd = case.get("vendor") == "amd"  # ROCm: torch reports HIP, not CUDA
    _GPU["gcn"] = "gfx942" if amd else ""
    torch.version.cuda, torch.version.hip = (None, "6.4") if amd else ("12.9", None)  # type: ignore[misc]
    _forget_device_probes()
    parser = argparse.ArgumentParser(exit_on_error=False)
    server_args.ServerArgs.add_cli_args(parser)
    try:
        ns = parser.parse_args(words[3:])
        ns.model_path = str(folder)
        ns.device = "cuda"
        with contextlib.redirect_stdout(io.StringIO()), _remote_config(case, ns.trust_remote_code):
            args = server_args.ServerArgs.from_cli_args(ns)
            args.check_server_args()
    except (Exception, SystemExit) as exc:  # SGLang's refusals are asserts, ValueErrors and the like
        return {"accepted": False, "error": f"{type(exc).__name__}: {exc}", "resolved": {}}
    resolved = {k: getattr(args, k, None) for k in RESOLVED}
    with contextlib.redirect_stdout(io.StringIO()), _remote_config(case, ns.trust_remote_code):
        resolved["profiled_cell_bytes"] = _profiled_cell_bytes(args)
    return {"accepted": True, "error": "", "resolved": resolved}


def _profiled_cell_bytes(args: Any) -> int | None:
    """Bytes per token `ModelRunner.profile_max_num_token` divides the KV budget by, on one rank of
    the pipeline stage with the most layers (`get_pp_indices`), from SGLang's own `ModelConfig`:
    (kv_lora_rank + qk_rope_head_dim) x element size per MLA layer, plus the indexer key
    (index_head_dim + 4 per 128) for DeepSeek Sparse Attention; KV heads at the attention TP size x
    head_dim x 2 x element size otherwise; layers are the full-attention ones of a linear-attention
    hybrid. None where `auto` defers to a KV dtype the checkpoint's quantization config declares
    (read at model load, not here)."""
    from sglang.srt.configs.model_config import AttentionArch, is_deepseek_nsa

    mc = args.get_model_config()
    hf = mc.hf_config
    if args.kv_cache_dtype == "auto":
        declared = getattr(hf, "quantization_config", None) or {}
        if isinstance(declared, dict) and declared.get("kv_cache_quant_algo"):
            return None
        element = mc.dtype.itemsize
    else:
        element = 1 if args.kv_cache_dtype.startswith("fp8") else 2
    from sglang.srt.distributed.utils import get_pp_indices

    text = mc.hf_text_config
    full = getattr(text, "full_attention_layer_ids", None) or getattr(hf, "full_attention_layer_ids", None)
    spans = (get_pp_indices(mc.num_hidden_layers, r, args.pp_size) for r in range(args.pp_size))
    layers = len(full) if full else max(end - start for start, end in spans)
    if mc.attention_arch == AttentionArch.MLA:
        cell = (mc.kv_lora_rank + mc.qk_rope_head_dim) * element
        if is_deepseek_nsa(hf):
            cell += hf.index_head_dim + hf.index_head_dim // 128 * 4
        return int(cell * layers)
    attention_tp = args.tp_size // (args.dp_size if args.enable_dp_attention else 1)
    return int(mc.get_num_kv_heads(attention_tp) * mc.head_dim * 2 * element * layers)


def main() -> int:
    cases = json.load(sys.stdin)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            out.append(check(case, folder))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
