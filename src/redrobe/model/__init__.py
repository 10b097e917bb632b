"""The pipeline's model: a LLaMA-architecture ``LlamaForCausalLM`` built from params.

See :mod:`redrobe.model.llama` (``llama_config``, ``build_model``, ``parameter_counts``).
"""

from redrobe.model.llama import build_model, llama_config, parameter_counts

__all__ = ["build_model", "llama_config", "parameter_counts"]
