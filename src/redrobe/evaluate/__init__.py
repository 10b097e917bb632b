"""Evaluation: held-out perplexity / bits per byte per slice, and generation speed.

    report = evaluate_model(model, tokenizer, {"books": val_array, ...}, seq_len=256,
                            max_tokens=32768, batch_size=8, prompt="The", gen_tokens=64)

See :mod:`redrobe.evaluate.perplexity` and :mod:`redrobe.evaluate.generation`.
"""

from redrobe.evaluate.generation import generation_speed
from redrobe.evaluate.perplexity import SliceScore, eval_spans, score_tokens, window_nll
from redrobe.evaluate.report import deltas, evaluate_model

__all__ = ["SliceScore", "deltas", "eval_spans", "evaluate_model", "generation_speed",
           "score_tokens", "window_nll"]
