"""Per-family layer builders for the raw-config parser (`autoparallel.models.parse`).

Each module maps the model_type values it parses to a `Family` (builder + config-class defaults) in its
`FAMILIES` table: `llama_like` (dense llama-style), `moe` (MoE with GQA or linear attention), `mla`
(DeepSeek-style latent attention), `classic` (GPT-2 era MHA), `phi` (Phi-1/1.5/2), `mllama` (Llama 3.2
Vision: cross-attention text model and tiled ViT), `starcoder2` (StarCoder2: GQA, non-gated MLP, biases);
`vision` counts multimodal vision towers.
"""
