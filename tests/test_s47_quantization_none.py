"""A front or sweep row writes `quantization: none` and `--quantization none` means no weight
quantization, but `ServingConfig(quantization="none")` was kept as a method named "none":
`evaluate` then refused it as "quantization 'none' needs a checkpoint quantized that way". The
configuration and the planner's options read `none` (any case) as None, as the commands do."""

from __future__ import annotations

import autoparallel as ap


def test_none_is_no_weight_quantization_in_configs_and_options() -> None:
    assert ap.ServingConfig(tp=1, quantization="none").quantization is None
    assert ap.ServingConfig(tp=1, quantization=" None ").quantization is None
    assert ap.ServingConfig(tp=1, quantization="fp8_per_tensor").quantization == "fp8"
    assert ap.ServingOptions(quantizations=("none", "fp8")).quantizations == (None, "fp8")


def test_a_front_rows_config_evaluates() -> None:
    config = ap.ServingConfig(tp=2, max_num_seqs=64, quantization="none")
    plan = ap.evaluate("meta-llama/Llama-3.1-8B-Instruct", "1x2xH100", config, "chatbot", compare=False)
    assert plan.config.quantization is None and plan.fits
