"""The pipeline's model: a LLaMA-architecture ``LlamaForCausalLM`` built from params.

See :mod:`redrobe.model.llama` (``llama_config``, ``build_model``, ``parameter_counts``)
and :mod:`redrobe.model.variants` (FFN sharing, sliding-window attention, ``save_model``,
``load_model``).
"""

from redrobe.model.llama import build_model, llama_config, parameter_counts
from redrobe.model.variants import load_model, save_model

__all__ = ["build_model", "llama_config", "load_model", "parameter_counts", "save_model"]
