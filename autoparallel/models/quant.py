"""Weight quantization formats and the bytes they cost per parameter.

Each format stores packed low-bit weights plus scales (and zeros) per group or block:

- GPTQ / AWQ (Frantar et al. 2022; Lin et al. 2023): `bits` per weight, one fp16 scale and one
  packed `bits`-wide zero point per group of `group_size` input elements.
- FP8 (E4M3): 1 byte per weight; fp32 scales per tensor, per output channel, or per
  `block_n × block_k` block (DeepSeek-V3, Qwen3-FP8: 128×128).
- MXFP4 (OCP Microscaling v1.0; gpt-oss): 4 bits per weight and one 8-bit E8M0 scale per 32.
- NVFP4 (NVIDIA ModelOpt `quant_algo` NVFP4, also compressed-tensors `nvfp4-pack-quantized`): 4-bit
  E2M1 weights packed two per byte, one FP8 E4M3 scale per 16 input elements, and two fp32 scalars
  per tensor (`weight_scale_2`, `input_scale`), left out as negligible.
- bitsandbytes NF4 (Dettmers et al. 2023): 4 bits, one absmax per 64 weights, stored as 8 bits
  with double quantization (plus one fp32 per 256 absmax blocks), or fp32 without it.
- INT8 weight-only / W8A8: 1 byte plus an fp32 scale per output channel.

Only the linear layers of decoder blocks are quantized; embeddings, the LM head, norms and the
MoE router stay in the checkpoint dtype, as in the published checkpoints. MXFP4 in gpt-oss
quantizes only the routed experts.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

if TYPE_CHECKING:
    from autoparallel.models.spec import ParamGroups


class QuantMethod(str, Enum):
    """Quantization formats understood by the planner (names follow vLLM's `--quantization`)."""

    GPTQ = "gptq"
    AWQ = "awq"
    FP8 = "fp8"
    MXFP4 = "mxfp4"
    NVFP4 = "modelopt_fp4"
    BITSANDBYTES = "bitsandbytes"
    INT8 = "int8"


_LINEAR_GROUPS = ("attention", "dense_mlp", "routed_experts", "shared_experts", "mtp")


class QuantSpec(BaseModel):
    """How a checkpoint's weights are quantized."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: QuantMethod
    """The format."""
    bits: int = 4
    """Bits per quantized weight (GPTQ/AWQ: 2, 3, 4, 8; FP8 and INT8: 8; MXFP4, NVFP4 and NF4: 4)."""
    group_size: int = 128
    """GPTQ/AWQ, NVFP4: input elements per scale group (-1: one group per row, i.e. per channel)."""
    block_n: int = 0
    """FP8 block quantization: block rows (0: not block-quantized)."""
    block_k: int = 0
    """FP8 block quantization: block columns."""
    per_channel: bool = False
    """FP8/INT8: one scale per output channel rather than per tensor."""
    double_quant: bool = True
    """bitsandbytes NF4: absmax scales themselves quantized to 8 bits."""
    weight_only: bool = False
    """INT8: the activations stay 16-bit (W8A16: compressed-tensors without `input_activations`), so
    the GEMMs run at the 16-bit peak, not on INT8 tensor cores."""
    symmetric: bool = True
    """GPTQ: weights without a zero point (`sym`); vLLM's Marlin GPTQ kernels take symmetric ones only."""
    act_order: bool = False
    """GPTQ: group activation ordering (`desc_act` with a `group_size` other than -1, in the config or
    one of its `dynamic` rules): the weights carry a g_idx column order, which vLLM 0.32 no longer
    loads (`engine_support._vllm_gptq_problem`)."""
    kv_cache_dtype: str | None = None
    """The KV-cache dtype the checkpoint declares (ModelOpt `kv_cache_quant_algo` FP8 or an 8-bit float
    `kv_cache_scheme`, compressed-tensors `kv_cache_scheme`: `fp8_e4m3`), which vLLM takes for
    `--kv-cache-dtype auto` (`parse_quant`); None: the model's dtype."""
    quantized_groups: tuple[str, ...] = _LINEAR_GROUPS
    """Parameter groups stored quantized; the rest stay in the checkpoint dtype."""
    source: str = ""
    """Where in the config this came from (e.g. `quantization_config.quant_method=gptq`)."""
    group_schemes: tuple[tuple[str, QuantSpec], ...] = ()
    """Linear groups stored in another scheme than this one (a mixed layout: compressed-tensors
    `config_groups` targeting attention and MLP apart, a GPTQ `dynamic` override), each priced by its
    own spec's `bytes_per_weight`; this spec's method, bits and groups are the primary group's
    (`parse_quant._mixed`). Empty for a uniform layout (and then left out of `model_dump`)."""
    group_layer_mix: tuple[tuple[str, tuple[tuple[int, float | None, float], ...]], ...] = ()
    """Linear groups whose decoder layers are stored differently (a rule naming layers by index:
    compressed-tensors targets or `ignore` entries, GPTQ `dynamic` rules), each with its layers as
    (vLLM's layer index, bytes per weight or None for the checkpoint dtype, the group's parameters in
    that layer). This prices the group (`group_bytes`: the parameter-weighted mean over the layers
    asked for) before `group_schemes` and `quantized_groups`, which still name its most common scheme
    (method and kernels). Empty when every layer of every group is stored alike (and then left out of
    `model_dump`)."""

    @model_serializer(mode="wrap")
    def _drop_uniform(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if not self.group_schemes:
            data.pop("group_schemes", None)
        if not self.group_layer_mix:
            data.pop("group_layer_mix", None)
        return data

    @property
    def bytes_per_weight(self) -> float:
        """Average bytes per quantized weight, scales and zeros included."""
        m = self.method
        if m in (QuantMethod.GPTQ, QuantMethod.AWQ):
            group = self.group_size if self.group_size > 0 else 4096
            return self.bits / 8 + (2 + self.bits / 8) / group
        if m is QuantMethod.FP8:
            if self.block_n and self.block_k:
                return 1 + 4 / (self.block_n * self.block_k)
            return 1.0 + (4 / 4096 if self.per_channel else 0.0)
        if m is QuantMethod.MXFP4:
            return 0.5 + 1 / 32
        if m is QuantMethod.NVFP4:
            return 0.5 + 1 / self.group_size
        if m is QuantMethod.BITSANDBYTES:
            if self.bits == 8:
                return 1 + 4 / 4096
            return 0.5 + (1 / 64 + 4 / (64 * 256) if self.double_quant else 4 / 64)
        return 1 + 4 / 4096  # INT8 per-channel

    def group_bytes(
        self, groups: ParamGroups, dtype_bytes: int, layers: Collection[int] | None = None
    ) -> float:
        """Bytes to hold `groups`: quantized groups at `bytes_per_weight`, the rest at `dtype_bytes`; a
        group whose layers differ (`group_layer_mix`) at the parameter-weighted mean over `layers` (the
        decoder layers `groups` were summed from: a pipeline stage's, one layer's; None: all)."""
        own = dict(self.group_schemes)
        mix = dict(self.group_layer_mix)
        total = 0.0
        for name in type(groups).model_fields:
            count = getattr(groups, name)
            if name in mix:
                rows = [r for r in mix[name] if layers is None or r[0] in layers] or list(mix[name])
                weight = sum(w for _, _, w in rows)
                per = sum(w * (dtype_bytes if b is None else b) for _, b, w in rows) / weight
            elif name in own:
                per = own[name].bytes_per_weight
            else:
                per = self.bytes_per_weight if name in self.quantized_groups else dtype_bytes
            total += count * per
        return total
